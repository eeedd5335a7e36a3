package wstransport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Close codes the transport itself sends; the values are RFC 6455's, and
// package channel exports the same ones.
const (
	closeNormal         = 1000
	closeProtocolError  = 1002
	closeInvalidPayload = 1007
	closeTooBig         = 1009
)

// Config configures a Server. Package channel fills every field from its
// Options (with their defaults applied); the transport applies none.
type Config struct {
	// MaxFrameSize is the read limit of an uncompressed message, in bytes
	// (Options.MaxFrameSize).
	MaxFrameSize int64
	// MaxInflatedSize and MaxInflateRate bound compressed messages
	// (Options.MaxInflatedSize and MaxInflateRate; see inflate.go).
	MaxInflatedSize int64
	MaxInflateRate  int64
	// MaxQueueBytes bounds a connection's outbound queue: past it the peer
	// is told (Peer.SlowConsumer).
	MaxQueueBytes int
	// WriteDelay holds outbound frames this long before writing them
	// (Options.WriteDelay); replies are not held.
	WriteDelay time.Duration
	// MaxWriteDelay bounds the write pool's adaptive delay, used when
	// WriteDelay is 0 (Options.MaxWriteDelay; 0: no delay).
	MaxWriteDelay time.Duration
	// IdleTimeout: a connection that sent no frame for this long is closed
	// with 1002 through its peer (Peer.Disconnect).
	IdleTimeout time.Duration
	// Compression offers permessage-deflate without context takeover.
	Compression bool
	// NoRing makes the write pool write each connection with write(2)
	// instead of batching its sends through io_uring (Options.DisableIOUring).
	NoRing bool
	// Group counts every goroutine the transport starts (read loops,
	// write-pool workers, writers of blocked sockets, the idle sweeper). The
	// owner waits for it when it closes, after Server.Close and after
	// closing every connection.
	Group *sync.WaitGroup
	// Conns yields the open connections, for the idle sweeper. It may hold
	// a lock of the owner while it yields; the sweeper only reads each
	// connection's last activity meanwhile.
	Conns func(yield func(*Conn) bool)

	// portable reads every connection on a goroutine of its own, as where
	// there is no poller (tests of that path on Linux).
	portable bool
}

// Server is the state WebSocket connections of one endpoint share: the
// write pool, the idle sweeper and the counters.
type Server struct {
	cfg     Config
	writers writePool

	mu        sync.Mutex
	closed    bool
	sweepOnce sync.Once
	sweepStop chan struct{} // closed to stop the idle sweeper (idle.go)
	// poll watches idle connections' sockets (Linux, see poller); created
	// with the first connection, nil before and where there is none.
	poll     *poller
	pollOnce bool
	pollWG   sync.WaitGroup // the poller's goroutine

	// clock and pause are the time of the inflate rate bound (see
	// beforeInflate): time.Now and a sleep ended by ctx, unless SetClock
	// replaced them.
	clock func() int64
	pause func(ctx context.Context, d time.Duration)

	framesWritten atomic.Uint64
	writes        atomic.Uint64
	blockedWrites atomic.Uint64
}

// NewServer returns a Server for cfg.
func NewServer(cfg *Config) *Server {
	s := &Server{cfg: *cfg}
	s.writers.init(cfg, &s.framesWritten, &s.writes)
	s.clock = func() int64 { return time.Now().UnixNano() }
	s.pause = sleepCtx
	return s
}

// SetClock replaces the time of the inflate rate bound: clock returns unix
// nanoseconds, pause waits for d or until ctx is done. It is for tests and
// must be called before the first connection.
func (s *Server) SetClock(clock func() int64, pause func(ctx context.Context, d time.Duration)) {
	s.clock, s.pause = clock, pause
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Stats are the transport's counters.
type Stats struct {
	FramesWritten uint64 // frames written to connections
	Writes        uint64 // socket writes that carried them
	BlockedWrites uint64 // writes handed to a goroutine of their own (socket full, or a control frame being written)
	// WriteDelay is the write pool's current delay, and WriteDelayTotal
	// that delay integrated over time (delay per second, summed): its
	// difference between two snapshots over the seconds between them is
	// the mean delay.
	WriteDelay      time.Duration
	WriteDelayTotal time.Duration
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		FramesWritten: s.framesWritten.Load(),
		Writes:        s.writes.Load(),
		BlockedWrites: s.blockedWrites.Load(),

		WriteDelay:      s.writers.currentDelay(),
		WriteDelayTotal: time.Duration(s.writers.delayTotal.Load()),
	}
}

// poller returns the server's poller, started with the first connection;
// nil where there is none (not Linux, the epoll set could not be created,
// or the server is closed).
func (s *Server) poller() *poller {
	if !pollReads || s.cfg.portable {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if !s.pollOnce {
		s.pollOnce = true
		p, err := newPoller()
		if err != nil {
			return nil
		}
		s.poll = p
		s.pollWG.Add(1)
		go func() {
			defer s.pollWG.Done()
			p.run()
		}()
	}
	return s.poll
}

// Close stops the idle sweeper and the poller, and waits for the poller's
// goroutine (and keeps both from starting). The owner closes the
// connections and waits for Config.Group; connections still open then are
// read by goroutines of their own.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.writers.close()
	stop := s.sweepStop
	s.sweepStop = nil
	p := s.poll
	s.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	if p != nil {
		p.close()
		s.pollWG.Wait()
	}
}
