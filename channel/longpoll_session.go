package channel

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// lpSession is one LongPoll session: the Transport of its Conn. Outbound
// frames wait in a bounded queue for the next poll; inbound lines are fed
// to Conn.Receive in order by a goroutine (feed) that runs only while POSTs
// are being handled, so that a session costs no goroutine until it is used
// and none while it is idle. A timer reaps the session when it goes idle;
// the session is finished (finish: its Conn ends, its share is given back)
// by feed when it runs at the close, else by a goroutine started then.
type lpSession struct {
	st     *lpState
	srv    *Server
	conn   *Conn // set right after Attach, before start
	ser    Serializer
	id     string
	token  string
	client string // the client key, for MaxSessionsPerClient

	in      chan *lpLine  // POSTed messages, handed to feed one at a time
	stop    chan struct{} // closed by Close
	posting chan struct{} // one POST at a time, so batches never interleave

	closeOnce sync.Once
	wg        sync.WaitGroup // forwarded requests served for other nodes

	mu        sync.Mutex
	closed    bool
	queue     [][]byte
	bytes     int
	wake      chan struct{} // closed to wake the held poll
	pollGen   uint64        // increments with every poll; a superseded poll sees a newer one
	polling   bool          // a poll is held
	lastPoll  time.Time     // end of the last poll (or creation)
	warnedBin bool          // a dropped binary frame was logged
	closeCode int           // the close code and reason, for the log
	closeWhy  string

	ready     bool          // start ran: conn is set, the idle timer armed
	feeding   bool          // feed runs
	posters   int           // POSTs handing lines to feed
	finishing bool          // finish has been claimed
	idle      *time.Timer   // reaps the session after IdleTimeout without a poll
	feedIdle  chan struct{} // (1) the last POST is done: feed may end
}

// lpLine is one decoded inbound message and the signal that feed handled it.
type lpLine struct {
	m    Message
	done chan struct{}
}

func (st *lpState) newLPSession(s *Server, ser Serializer, client string) *lpSession {
	id := randomID(16)
	return &lpSession{
		st:       st,
		srv:      s,
		ser:      ser,
		id:       id,
		token:    st.sign(id),
		client:   client,
		in:       make(chan *lpLine),
		stop:     make(chan struct{}),
		posting:  make(chan struct{}, 1),
		feedIdle: make(chan struct{}, 1),
		lastPoll: time.Now(),
	}
}

// Send implements Transport: the frame waits for the next poll.
func (ss *lpSession) Send(f *Frame) {
	b, bin, err := f.Encode(ss.ser)
	c := ss.conn
	if err != nil {
		c.log.LogAttrs(c.ctx, slog.LevelError, "frame not sent", slog.String("topic", f.f.topic), slog.Any("error", err))
		return
	}
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	if bin {
		warn := !ss.warnedBin
		ss.warnedBin = true
		ss.mu.Unlock()
		level := slog.LevelDebug
		if warn {
			level = slog.LevelWarn
		}
		c.log.LogAttrs(c.ctx, level, "binary frame dropped: LongPoll carries text frames only",
			slog.String("topic", f.f.topic), slog.String("event", f.Event()))
		return
	}
	max := ss.st.opts.MaxQueuedMessages
	if len(ss.queue) >= max || (ss.bytes > 0 && ss.bytes+len(b) > ss.srv.opts.MaxQueueBytes) {
		n, nb := len(ss.queue), ss.bytes
		ss.mu.Unlock()
		c.log.LogAttrs(c.ctx, slog.LevelDebug, "longpoll queue full",
			slog.Int("queued", n), slog.Int("queued_bytes", nb),
			slog.Int("max_messages", max), slog.Int("max_bytes", ss.srv.opts.MaxQueueBytes))
		c.CloseSlowConsumer()
		return
	}
	ss.queue = append(ss.queue, b)
	ss.bytes += len(b)
	ss.wakeLocked()
	ss.mu.Unlock()
}

func (ss *lpSession) wakeLocked() {
	if ss.wake != nil {
		close(ss.wake)
		ss.wake = nil
	}
}

// Close implements Transport: the queue is dropped, a held poll is
// answered 410 and the session is finished (by feed if it runs, else by a
// goroutine started here). It may run before newSession has set ss.conn (a
// "disconnect" broadcast right after Attach): it leaves ss.conn alone, and
// start then finishes the session.
func (ss *lpSession) Close(code int, reason string) {
	ss.closeOnce.Do(func() {
		ss.mu.Lock()
		ss.closed = true
		ss.closeCode, ss.closeWhy = code, reason
		ss.queue, ss.bytes = nil, 0
		ss.wakeLocked()
		fin := ss.claimFinishLocked()
		ss.mu.Unlock()
		close(ss.stop)
		if fin {
			go ss.finish()
		}
	})
}

// start arms the idle timer once newSession has set ss.conn; the Server's
// WaitGroup counts the session until finish.
func (ss *lpSession) start() {
	ss.mu.Lock()
	ss.ready = true
	ss.idle = time.AfterFunc(ss.st.opts.IdleTimeout, ss.checkIdle)
	fin := ss.claimFinishLocked()
	ss.mu.Unlock()
	if fin {
		go ss.finish() // closed before it started
	}
}

// claimFinishLocked reports whether the caller must finish the session: it
// is closed and started, feed is not running (feed finishes it then), and
// nobody claimed it before.
func (ss *lpSession) claimFinishLocked() bool {
	if !ss.closed || !ss.ready || ss.feeding || ss.finishing {
		return false
	}
	ss.finishing = true
	return true
}

// checkIdle runs on the idle timer: it closes the session when it has been
// without a poll for IdleTimeout, else sets the timer for the rest.
func (ss *lpSession) checkIdle() {
	idle := ss.st.opts.IdleTimeout
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	var d time.Duration
	if !ss.polling {
		d = time.Since(ss.lastPoll)
	}
	if d < idle {
		ss.idle.Reset(idle - d)
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	c := ss.conn
	c.log.LogAttrs(c.ctx, slog.LevelInfo, "longpoll session idle, closing", slog.Duration("idle_timeout", idle))
	c.Close(CloseProtocolError, "idle timeout")
}

// poll takes the queued messages, waiting up to Window for the first one.
// It returns 200 with messages, 204 without, or 410 when the session
// closed. Messages stay queued when ctx ends first (the client went away).
func (ss *lpSession) poll(ctx context.Context) (int, [][]byte) {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return lpGone, nil
	}
	ss.pollGen++
	gen := ss.pollGen
	ss.wakeLocked() // supersedes a held poll
	ss.polling = true
	if len(ss.queue) > 0 {
		return ss.endPollLocked()
	}
	wake := make(chan struct{})
	ss.wake = wake
	ss.mu.Unlock()

	t := time.NewTimer(ss.st.opts.Window)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
	}

	ss.mu.Lock()
	if ss.pollGen != gen {
		ss.mu.Unlock()
		return lpNoContent, nil // superseded by a newer poll
	}
	if ss.wake == wake {
		ss.wake = nil
	}
	if ss.closed {
		ss.polling = false
		ss.mu.Unlock()
		return lpGone, nil
	}
	if ctx.Err() != nil {
		ss.polling = false
		ss.lastPoll = time.Now()
		ss.mu.Unlock()
		return lpNoContent, nil
	}
	return ss.endPollLocked()
}

// endPollLocked ends the current poll, taking the queue, and unlocks ss.mu.
func (ss *lpSession) endPollLocked() (int, [][]byte) {
	msgs := ss.queue
	ss.queue, ss.bytes = nil, 0
	ss.polling = false
	ss.lastPoll = time.Now()
	ss.mu.Unlock()
	if len(msgs) == 0 {
		return lpNoContent, nil
	}
	return lpOK, msgs
}

// acquire counts a forwarded request served for another node in ss.wg,
// unless the session is closed; finish waits for them.
func (ss *lpSession) acquire() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	ss.wg.Add(1)
	return true
}

// post hands lines to feed in order, each within Window, and returns the
// logical status of the POST.
func (ss *lpSession) post(ctx context.Context, lines [][]byte) int {
	window := ss.st.opts.Window
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case ss.posting <- struct{}{}:
		defer func() { <-ss.posting }()
	case <-ss.stop:
		return lpGone
	case <-t.C:
		return lpTimeout
	case <-ctx.Done():
		return lpTimeout
	}
	if !ss.beginFeed() {
		return lpGone
	}
	defer ss.endFeed()
	c := ss.conn
	for _, raw := range lines {
		if len(raw) == 0 {
			continue
		}
		if int64(len(raw)) > ss.srv.opts.MaxFrameSize {
			c.log.LogAttrs(c.ctx, slog.LevelWarn, "longpoll line too large, closing session", slog.Int64("limit", ss.srv.opts.MaxFrameSize))
			c.Close(CloseTooBig, "frame too large")
			return lpTooLarge
		}
		m, err := decodeLPLine(ss.ser, raw)
		if err != nil {
			ss.srv.stats.malformed.Add(1)
			c.log.LogAttrs(c.ctx, slog.LevelWarn, "malformed longpoll line, closing session", slog.Any("error", err))
			c.Close(CloseInternalError, "malformed frame")
			return lpBadRequest
		}
		line := &lpLine{m: m, done: make(chan struct{})}
		t.Reset(window)
		select {
		case ss.in <- line:
		case <-ss.stop:
			return lpGone
		case <-t.C:
			return lpTimeout
		case <-ctx.Done():
			return lpTimeout
		}
		select {
		case <-line.done:
		case <-t.C:
			return lpTimeout
		case <-ctx.Done():
			return lpTimeout
		}
	}
	return lpOK
}

// decodeLPLine decodes one POSTed line like a WebSocket message: a text
// frame when it starts with "[" (V2) or "{" (V1), else a base64 binary
// frame.
func decodeLPLine(ser Serializer, raw []byte) (Message, error) {
	if raw[0] == '[' || raw[0] == '{' {
		return ser.decode(false, raw)
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(b, raw)
	if err != nil {
		if n, err = base64.RawStdEncoding.Decode(b, raw); err != nil {
			return Message{}, fmt.Errorf("%w: line is neither JSON nor base64", ErrMalformed)
		}
	}
	return ser.decode(true, b[:n])
}

// beginFeed counts a POST handing lines over and starts feed unless it
// runs; false when the session is closed.
func (ss *lpSession) beginFeed() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	ss.posters++
	if !ss.feeding {
		ss.feeding = true
		go ss.feed()
	}
	return true
}

// endFeed ends what beginFeed began; the last POST out tells feed it may
// end.
func (ss *lpSession) endFeed() {
	ss.mu.Lock()
	ss.posters--
	if ss.posters == 0 {
		select {
		case ss.feedIdle <- struct{}{}:
		default:
		}
	}
	ss.mu.Unlock()
}

// feed hands POSTed messages to the Conn one at a time, while POSTs are
// being handled. It ends when the last POST is done, or finishes the
// session when it is closed meanwhile.
func (ss *lpSession) feed() {
	c := ss.conn
	for {
		select {
		case line := <-ss.in:
			if !c.isClosing() {
				c.Receive(&line.m)
			}
			close(line.done)
		case <-ss.feedIdle:
			ss.mu.Lock()
			if ss.posters == 0 && !ss.closed {
				ss.feeding = false
				ss.mu.Unlock()
				return
			}
			ss.mu.Unlock()
		case <-ss.stop:
			ss.mu.Lock()
			ss.finishing = true // claimFinishLocked leaves it to feed
			ss.mu.Unlock()
			ss.finish()
			return
		}
	}
}

// finish ends a closed session: the idle timer stops, the session leaves
// the state (giving back its client's share), the Conn finishes and the
// requests served for other nodes end.
func (ss *lpSession) finish() {
	defer ss.srv.wg.Done()
	ss.mu.Lock()
	code, why := ss.closeCode, ss.closeWhy
	ss.mu.Unlock()
	ss.idle.Stop()
	c := ss.conn
	c.log.LogAttrs(c.ctx, slog.LevelDebug, "longpoll session closed", slog.Int("code", code), slog.String("reason", why))
	ss.st.remove(ss)
	c.Finish()
	ss.wg.Wait()
}
