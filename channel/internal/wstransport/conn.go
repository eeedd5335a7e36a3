package wstransport

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Peer is what a connection reports to: package channel's side of one
// connection. Its methods are called from the transport's goroutines.
type Peer interface {
	// Deliver handles one inbound data message, binary or text, in
	// arrival order, from the connection's reading goroutine. data is valid
	// only during the call. A peer that finds the message malformed closes
	// the connection (Disconnect) and returns.
	Deliver(binary bool, data []byte)
	// Disconnect closes the connection on the transport's initiative (idle
	// timeout) with a close code and reason: the peer ends its side and
	// calls Conn.Close. It must not block.
	Disconnect(code int, reason string)
	// SlowConsumer closes the connection whose outbound queue overflowed
	// (Config.MaxQueueBytes). It must not block.
	SlowConsumer()
	// Finish ends the peer once the connection is gone; called once, from
	// the reading goroutine.
	Finish()
	// Context and Logger are the connection's, for the transport's logs.
	Context() context.Context
	Logger() *slog.Logger
}

// Conn is one WebSocket connection: a bounded outbound queue of complete
// frames drained by the server's write pool (writepool.go), which writes
// everything queued with one socket write, and a reader that hands each
// inbound message to the Peer.
//
// A Conn is embedded in the owner's per-connection value (no allocation of
// its own) and set up with Init before use.
type Conn struct {
	srv  *Server
	peer Peer
	nc   *sock // the hijacked socket; nil before the upgrade
	// deflate: permessage-deflate was negotiated; frames of large payloads
	// are sent compressed (Compress).
	deflate  bool
	inf      *inflateState // non-nil with deflate: the inflation bounds' state
	lastRead atomic.Int64  // unix nanos of the last inbound frame (see idle.go)

	// Reading (read.go): the pooled buffer and its unread part while input
	// is read, and input read before it (net/http's buffer at the hijack,
	// the portable reader's wait). Only the reader touches them.
	rbuf       *[]byte
	rpos, rend int
	pending    []byte
	// rstate is the reading state of a connection watched by the poller
	// (readIdle otherwise): readArmed while the poller watches its socket,
	// readRunning while a goroutine reads it. Whoever moves it from
	// readArmed to readRunning (the poller, or the socket's Close) starts
	// the reader.
	rstate  atomic.Int32
	ptok    uint32     // the poller's token for the connection
	inPoll  bool       // the socket was added to the epoll set (reader only)
	burstMu sync.Mutex // held by readLoop's worker while it reads (portable path)
	burstOK bool       // the worker's verdict: the connection goes on

	mu      sync.Mutex
	up      bool // the upgrade completed: nc is set
	queue   []outMsg
	spare   []outMsg
	bytes   int
	writing bool
	// The write pool's view (writepool.go): gen counts the connection's
	// schedulings (a list entry of an older one is stale); listed is set
	// while an entry of generation gen waits on a list, urgentListed when
	// that list is the urgent one; urgent while a reply is queued.
	gen          atomic.Uint32 // written with mu held; the pool reads it without
	listed       bool
	urgentListed bool
	urgent       bool
	closing      bool
	closeCode    int // a close requested before the upgrade completed
	closeWhy     string
	closeTimer   *time.Timer    // ends a close handshake the client does not answer
	closeMu      sync.Once      // one close frame per connection: the server's, or the answer to the client's
	closeWrite   sync.Mutex     // held while the server's close frame is written (startCloseHandshake)
	wg           sync.WaitGroup // writer and closer goroutines
}

// outMsg is one queued, complete WebSocket frame (see frame.go).
type outMsg struct {
	b []byte
}

// Init sets the connection up for srv and peer before the upgrade, so that
// frames can be queued (and a close requested) while the handshake runs.
// Activity starts now: the idle sweeper may see the connection from here
// on.
func (c *Conn) Init(srv *Server, peer Peer) {
	c.srv, c.peer = srv, peer
	c.lastRead.Store(time.Now().UnixNano())
}

// Upgrade completes the WebSocket handshake the owner has validated (origin,
// subprotocols, connect): the client's request is checked (RFC 6455 4.2.1),
// the connection hijacked and answered 101, and frames queued and a close
// requested meanwhile are acted on. On error the response was written (or
// the connection is unusable); the caller finishes its peer. Then Serve
// starts reading.
func (c *Conn) Upgrade(w http.ResponseWriter, r *http.Request) error {
	if err := checkHandshake(r, w.Header()); err != nil {
		he := err.(*handshakeError)
		http.Error(w, he.msg, he.status)
		return err
	}
	// Compression without context takeover: each message is compressed on
	// its own, so a broadcast is compressed once for every subscriber (see
	// deflate.go) and a connection keeps no compressor between messages.
	deflate := c.srv.cfg.Compression && acceptDeflate(r.Header)
	answer := switchingProtocols(r, w.Header(), deflate)
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return err
	}
	// Input the client sent right after its request (read ahead by
	// net/http) is read first; net/http's buffers are dropped with brw.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		c.pending = bytes.Clone(b)
	}
	if _, err := nc.Write(answer); err != nil {
		_ = nc.Close()
		return err
	}
	s := &sock{Conn: nc, owner: c, fd: -1}
	if sc, ok := nc.(syscall.Conn); ok && rawWrites {
		if raw, err := sc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) { s.fd = int(fd) })
		}
	}
	c.deflate = deflate
	if deflate {
		c.inf = &inflateState{credit: c.srv.cfg.MaxInflatedSize, at: c.srv.clock()}
	}
	c.attach(s)
	return nil
}

// Reading states of a connection (Conn.rstate).
const (
	readIdle    = iota // not watched by the poller
	readArmed          // the poller watches the socket; nobody reads
	readRunning        // a goroutine reads the connection
)

// Serve starts reading the connection; Peer.Finish is called at the end.
// On Linux the server's poller watches the socket and a goroutine runs
// only while input is read and handled (readPolled); elsewhere, and for a
// connection that is not a plain socket (TLS), the connection gets a
// goroutine of its own (readLoop). The connection's reading counts once in
// Config.Group until it ends. The caller must hold its own count in
// Config.Group (its request does) so that the owner's Wait cannot miss
// this one.
func (c *Conn) Serve() {
	c.srv.cfg.Group.Add(1)
	c.lastRead.Store(time.Now().UnixNano())
	c.srv.startIdleSweeper()
	if p := c.srv.poller(); p != nil && c.nc.fd >= 0 && p.register(c) {
		c.rstate.Store(readRunning)
		if len(c.pending) > 0 || !p.arm(c) {
			c.srv.startReader(c, false)
		}
		return
	}
	go func() {
		defer c.srv.cfg.Group.Done()
		c.readLoop()
	}()
}

// readPolled is the reader of a connection watched by the poller: it
// reads and handles what arrived (reading the socket at least once when
// read is true: it is readable) until no input is buffered, then re-arms
// the socket and ends. A connection the poller cannot watch any more (its
// socket or the poller closed) is read on here until it ends.
func (c *Conn) readPolled(read bool) {
	for {
		if !c.burst(read) {
			c.endRead()
			c.srv.poll.unregister(c)
			c.srv.cfg.Group.Done()
			return
		}
		if c.srv.poll.arm(c) {
			return // from here on the connection is the poller's
		}
		read = true
	}
}

// socketClosed is called once the socket is closed: a connection the
// poller watched gets a reader, which ends it (the closed socket took it
// out of the epoll set, which will not report it).
func (c *Conn) socketClosed() {
	if c.rstate.CompareAndSwap(readArmed, readRunning) {
		c.srv.startReader(c, true)
	}
}

// Deflate reports whether permessage-deflate was negotiated: frames for
// this connection should go through Compress. It is false until Upgrade
// returned.
func (c *Conn) Deflate() bool { return c.deflate }

// LastActivity returns the unix nanos of the last frame received.
func (c *Conn) LastActivity() int64 { return c.lastRead.Load() }

// Closing reports whether the connection is closing: inbound messages from
// now on are not for the channels.
func (c *Conn) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// attach completes the upgrade: frames queued and a close requested while
// the handshake ran are acted on now.
func (c *Conn) attach(s *sock) {
	c.mu.Lock()
	c.nc, c.up = s, true
	code, why := c.closeCode, c.closeWhy
	// Closing without a close code: CloseNow ran during the handshake (the
	// server is closing), so the connection is dropped as soon as it is up;
	// reading then ends at once.
	drop := c.closing && code == 0
	if code == 0 && !drop && len(c.queue) > 0 && !c.writing {
		c.startWriting()
	}
	c.mu.Unlock()
	if drop {
		_ = s.Close()
		return
	}
	if code != 0 {
		c.startCloseHandshake(code, why)
	}
}

// Queue queues one complete frame (FinishFrame, Compress), in order. It
// does not block: past Config.MaxQueueBytes it tells the peer
// (Peer.SlowConsumer) instead of queueing. b is not modified and may be
// shared between connections. An urgent frame (a reply) is never held
// back by the write delay: the connection is written as soon as a worker
// is free, with everything queued before it.
func (c *Conn) Queue(b []byte, urgent bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if max := c.srv.cfg.MaxQueueBytes; c.bytes > 0 && c.bytes+len(b) > max {
		queued := c.bytes
		c.mu.Unlock()
		c.peer.Logger().LogAttrs(c.peer.Context(), slog.LevelDebug, "outbound queue full",
			slog.Int("queued_bytes", queued), slog.Int("limit", max))
		c.peer.SlowConsumer()
		return
	}
	c.queue = append(c.queue, outMsg{b: b})
	c.bytes += len(b)
	c.urgent = c.urgent || urgent
	switch {
	case !c.writing:
		if c.up {
			c.startWriting()
		}
	case urgent:
		c.hurry()
	}
	c.mu.Unlock()
}

// hurry moves a connection waiting on the write pool's delayed list to
// the urgent one: a reply is queued, or the connection is closing (its
// writer's turn then ends at once instead of after the delay). The entry
// left on the delayed list is stale. Called with mu held.
func (c *Conn) hurry() {
	if !c.writing || !c.listed || c.urgentListed {
		return
	}
	c.srv.writers.schedule(c, c.nextGenUrgent(), true)
}

// QueuedBytes returns the bytes queued and not yet written.
func (c *Conn) QueuedBytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// startWriting hands the queue to a writer: the server's write pool, or,
// for a connection it cannot write without blocking (not a plain socket,
// e.g. TLS), a goroutine of the connection's own. Called with mu held and
// writing false; writing stays true (and wg counts the writer) until the
// queue is empty.
func (c *Conn) startWriting() {
	c.writing = true
	c.wg.Add(1)
	if c.nc.canWriteNoBlock() {
		c.srv.writers.schedule(c, c.nextGen(), c.urgent)
		return
	}
	go c.writeLoop()
}

// nextGen starts a new scheduling of the connection on the write pool's
// lists and returns its generation. Called with mu held.
func (c *Conn) nextGen() uint32 {
	c.listed, c.urgentListed = true, c.urgent
	return c.gen.Add(1)
}

// nextGenUrgent is nextGen for the urgent list. Called with mu held.
func (c *Conn) nextGenUrgent() uint32 {
	c.listed, c.urgentListed = true, true
	return c.gen.Add(1)
}

// flush is the write pool's turn of the connection: everything queued goes
// out in one non-blocking write. If frames arrived meanwhile the connection
// goes back on the ready list; if the socket could not take the whole
// write, a goroutine finishes it (see finishFlush).
//
// gen is the generation of the list entry; buf is the worker's gather
// buffer.
func (c *Conn) flush(gen uint32, buf *[]byte) {
	batch, n, ok := c.takeBatch(gen)
	if !ok {
		return
	}
	done, rest, held, err := c.nc.tryWriteFrames(batch, buf)
	clear(batch)
	if !done {
		c.handOff(batch, n, rest, held)
		return
	}
	c.flushed(batch, n, err)
}

// handOff gives what a non-blocking write could not send to a goroutine of
// the connection's own (finishFlush), counted in Stats.BlockedWrites.
func (c *Conn) handOff(batch []outMsg, n int, rest []byte, held bool) {
	c.srv.blockedWrites.Add(1)
	go c.finishFlush(batch, n, rest, held)
}

// finishFlush writes what tryWriteFrames could not, blocking until the slow
// peer takes it (or the connection is closed), then continues as flush.
func (c *Conn) finishFlush(batch []outMsg, n int, rest []byte, held bool) {
	err := c.nc.finishWrite(rest, held)
	c.flushed(batch, n, err)
}

// flushed accounts for a written batch of n bytes and decides what comes
// next: close on a write error, back on the ready list when more is
// queued, otherwise the writer's turn ends.
func (c *Conn) flushed(batch []outMsg, n int, err error) {
	c.mu.Lock()
	c.release(batch, n)
	if err == nil && len(c.queue) > 0 && !c.closing {
		gen, urgent := c.nextGen(), c.urgent
		c.mu.Unlock()
		c.srv.writers.schedule(c, gen, urgent)
		return
	}
	c.writing = false
	c.mu.Unlock()
	if err != nil {
		c.CloseNow()
	}
	c.wg.Done()
}

// takeBatch takes everything queued, n bytes in all, for one write by the
// write pool's entry of generation gen. It returns ok false when the entry
// is stale (the connection was scheduled again since), and when nothing is
// queued or the connection is closing: then it ends the writer's turn
// (writing false, wg done).
func (c *Conn) takeBatch(gen uint32) (batch []outMsg, n int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen.Load() {
		return nil, 0, false
	}
	c.listed, c.urgentListed = false, false
	if len(c.queue) == 0 || c.closing {
		c.writing = false
		c.wg.Done()
		return nil, 0, false
	}
	batch = c.queue
	c.queue, c.spare = c.spare[:0], nil
	c.urgent = false
	for i := range batch {
		n += len(batch[i].b)
	}
	c.srv.writes.Add(1)
	c.srv.framesWritten.Add(uint64(len(batch)))
	return batch, n, true
}

// release accounts for a written batch of n bytes and keeps its slice for
// the next queue. Called with mu held.
func (c *Conn) release(batch []outMsg, n int) {
	c.bytes -= n
	if cap(batch) <= 1024 {
		c.spare = batch[:0]
	}
}

// writeLoop writes what is queued until the queue is empty, blocking: the
// writer of a connection the pool cannot write without blocking (TLS). A
// write blocked on a full socket is ended by closing the socket.
func (c *Conn) writeLoop() {
	// Not on the pool's lists, the connection keeps its generation.
	c.mu.Lock()
	gen, urgent := c.gen.Load(), c.urgent
	c.mu.Unlock()
	if d := c.srv.cfg.WriteDelay; d > 0 && !urgent {
		time.Sleep(d) // let more frames join this write (Config.WriteDelay)
	}
	for {
		batch, n, ok := c.takeBatch(gen)
		if !ok {
			return // takeBatch ended the turn
		}
		err := c.nc.writeFrames(batch)
		clear(batch)
		c.mu.Lock()
		c.release(batch, n)
		c.mu.Unlock()
		if err != nil {
			c.CloseNow()
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			c.wg.Done()
			return
		}
	}
}

// Close starts the close handshake with a close code and reason: queued
// frames are dropped, the close frame is sent on a goroutine owned by the
// connection, and the socket is closed when the client answers (or after
// closeTimeout). It does not block; later calls are no-ops, and so is a
// call after the client's close frame was answered.
func (c *Conn) Close(code int, reason string) {
	c.closeMu.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.queue = nil
		c.hurry()
		up := c.up
		if !up {
			c.closeCode, c.closeWhy = code, reason
		}
		c.mu.Unlock()
		if up {
			c.startCloseHandshake(code, reason)
		}
	})
}

// startCloseHandshake sends the server's close frame on a goroutine
// counted in wg; closeTimeout after it started, the socket is closed if
// the client did not answer.
func (c *Conn) startCloseHandshake(code int, reason string) {
	c.mu.Lock()
	c.closeTimer = time.AfterFunc(closeTimeout, c.CloseNow)
	c.mu.Unlock()
	c.closeWrite.Lock() // before the goroutine starts: see clientClose
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.closeWrite.Unlock()
		_ = c.nc.Conn.SetWriteDeadline(time.Now().Add(closeTimeout))
		if err := c.nc.writeControl(0x8, closePayload(code, reason)); err != nil {
			c.CloseNow()
		}
	}()
}

// stopQueue drops the queued frames: the connection is closing.
func (c *Conn) stopQueue() {
	c.mu.Lock()
	c.closing = true
	c.queue = nil
	c.hurry()
	c.mu.Unlock()
}

// CloseNow drops the TCP connection without a close handshake.
func (c *Conn) CloseNow() {
	c.mu.Lock()
	c.closing = true
	c.queue = nil
	c.hurry()
	nc := c.nc
	c.mu.Unlock()
	if nc != nil {
		_ = nc.Close()
	}
}

// readLoop is the reader of a connection the poller does not watch: it
// reads until the connection ends, then finishes the peer.
func (c *Conn) readLoop() {
	// The connection's goroutine only waits: for input, then for a
	// short-lived worker that reads and handles what arrived. Deep work
	// (decoding, joins, hooks) grows a goroutine's stack, and a grown
	// stack is never given back while the goroutine lives; this way the
	// long-lived goroutine keeps the minimum, and a burst of messages
	// costs one goroutine start.
	for {
		read := false
		if len(c.pending) == 0 {
			read = !c.waitInput()
		}
		// Hand over to a worker and wait for it: the worker unlocks
		// burstMu (a mutex may be unlocked by another goroutine), which
		// costs no allocation per connection, unlike a channel.
		c.burstMu.Lock()
		go c.readBurst(read)
		c.burstMu.Lock()
		ok := c.burstOK
		c.burstMu.Unlock()
		if !ok {
			break
		}
	}
	c.endRead()
}

// readBurst is readLoop's worker: it handles the input that arrived,
// records whether the connection goes on, and unlocks burstMu.
func (c *Conn) readBurst(read bool) {
	defer c.burstMu.Unlock()
	c.burstOK = c.burst(read)
}

// waitInput blocks until the client sent something, kept in pending for
// the next burst; false when nothing was read (the connection failed: the
// next read sees why).
//
//go:noinline
func (c *Conn) waitInput() bool {
	b := make([]byte, 64)
	n, _ := c.nc.Conn.Read(b)
	c.pending = b[:n]
	return n > 0
}

// endRead ends the connection once reading stopped: no close frame is
// started from now on (an in-flight one finishes first, so its goroutine
// is counted in wg before the Wait), the socket is dropped, the peer
// finishes, the connection's writer and closer goroutines are waited for
// and the read buffer is given back.
func (c *Conn) endRead() {
	c.closeMu.Do(func() {}) // no close frame after the read side ended
	c.CloseNow()
	c.peer.Finish()
	c.wg.Wait()
	c.mu.Lock()
	t := c.closeTimer
	c.closeTimer = nil
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	c.dropBuf(true)
}

// HoldWrites takes the lock that orders writes to the socket, as a control
// frame (pong, close) being written to a full socket holds it, until
// release is called. It exists for tests of the write pool (which must not
// wait behind it) from package channel.
func (c *Conn) HoldWrites() (release func()) {
	c.nc.wmu.Lock()
	return c.nc.wmu.Unlock
}
