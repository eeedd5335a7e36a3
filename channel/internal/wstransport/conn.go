package wstransport

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
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
	ws   *websocket.Conn
	nc   *hijackedConn
	br   *bufio.Reader // coder/websocket's read buffer, ours to inspect
	brMu sync.Mutex    // orders inspecting br with a close handshake
	// deflate: permessage-deflate was negotiated; frames of large payloads
	// are sent compressed (Compress).
	deflate  bool
	inf      *inflateState // non-nil with deflate: the inflation bounds' state
	lastRead atomic.Int64  // unix nanos of the last inbound frame (see idle.go)
	burst    sync.Mutex    // held by readLoop's worker while it reads (see readLoop)
	burstOK  bool          // the worker's verdict: the connection goes on
	// rstate is the reading state of a connection watched by the poller
	// (readIdle otherwise): readArmed while the poller watches its socket,
	// readRunning while a goroutine reads it. Whoever moves it from
	// readArmed to readRunning (the poller, or the socket's Close) starts
	// the reader.
	rstate atomic.Int32
	ptok   uint32 // the poller's token for the connection
	inPoll bool   // the socket was added to the epoll set (reader only)

	mu        sync.Mutex
	queue     []outMsg
	spare     []outMsg
	bytes     int
	writing   bool
	closing   bool
	closeCode int // a close requested before the upgrade completed
	closeWhy  string
	closeMu   sync.Once
	wg        sync.WaitGroup // writer and closer goroutines
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
// subprotocols, connect): coder/websocket accepts it through our hijack
// wrapper, and frames queued and a close requested meanwhile are acted on.
// On error the response was written (or the connection is unusable); the
// caller finishes its peer. Then Serve starts reading.
func (c *Conn) Upgrade(w http.ResponseWriter, r *http.Request) error {
	// Compression without context takeover: each message is compressed on
	// its own, so a broadcast is compressed once for every subscriber (see
	// deflate.go) and a connection keeps no compressor between messages.
	mode := websocket.CompressionDisabled
	if c.srv.cfg.Compression {
		mode = websocket.CompressionNoContextTakeover
	}
	ws, err := websocket.Accept(&hijackWriter{ResponseWriter: w, c: c}, r, &websocket.AcceptOptions{
		Subprotocols:       []string{"phoenix"},
		InsecureSkipVerify: true, // the owner checked the origin, Phoenix-style
		CompressionMode:    mode,
	})
	if err != nil {
		return err
	}
	if c.nc == nil {
		// Accept must have hijacked through hijackWriter (see the package
		// doc); a coder/websocket that does not cannot be driven by us.
		_ = ws.CloseNow()
		return errors.New("wstransport: coder/websocket did not hijack through the wrapper")
	}
	cfg := &c.srv.cfg
	ws.SetReadLimit(cfg.MaxFrameSize)
	// coder/websocket made the read buffer read through an io.MultiReader
	// of the bytes buffered before the hijack and the socket (golang/go
	// #32314). Our buffer was new and empty, and Hijack kept those bytes
	// in hijackedConn.pending, so read the socket directly: the wrapper
	// would stay allocated for the connection's life.
	c.br.Reset(c.nc)
	c.deflate = strings.Contains(w.Header().Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	if c.deflate {
		c.inf = &inflateState{limit: cfg.MaxFrameSize, credit: cfg.MaxInflatedSize, at: c.srv.clock()}
	}
	c.attach(ws)
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
		if c.bufferedInput() > 0 || c.nc.hasPending() {
			go c.readPolled(false)
		} else if !p.arm(c) {
			go c.readPolled(true)
		}
		return
	}
	go func() {
		defer c.srv.cfg.Group.Done()
		c.readLoop()
	}()
}

// readPolled is the reader of a connection watched by the poller: it
// reads and handles the messages that arrived (at least one when read is
// true: the socket is readable) until no input is buffered, then re-arms
// the socket and ends. A connection the poller cannot watch any more
// (its socket or the poller closed) is read on here until it ends.
func (c *Conn) readPolled(read bool) {
	for {
		for read || c.bufferedInput() > 0 || c.nc.hasPending() {
			if read && c.inf != nil && c.bufferedInput() == 0 {
				// The inflation bound looks at the next frame's header
				// (beforeInflate): read what arrived first, as readLoop does.
				c.nc.waitReadable()
			}
			read = false
			if !c.readOne() {
				c.endRead()
				c.srv.poll.unregister(c)
				c.srv.cfg.Group.Done()
				return
			}
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
		go c.readPolled(true)
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
func (c *Conn) attach(ws *websocket.Conn) {
	c.mu.Lock()
	c.ws = ws
	code, why := c.closeCode, c.closeWhy
	// Closing without a close code: CloseNow ran during the handshake (the
	// server is closing), so the connection is dropped as soon as it is up;
	// the read loop then ends at once.
	drop := c.closing && code == 0
	if code == 0 && !drop && len(c.queue) > 0 && !c.writing {
		c.startWriting()
	}
	c.mu.Unlock()
	if drop {
		_ = ws.CloseNow()
		return
	}
	if code != 0 {
		c.nc.serverClose.Store(true)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.closeHandshake(ws, code, why)
		}()
	}
}

// Queue queues one complete frame (FinishFrame, Compress), in order. It
// does not block: past Config.MaxQueueBytes it tells the peer
// (Peer.SlowConsumer) instead of queueing. b is not modified and may be
// shared between connections.
func (c *Conn) Queue(b []byte) {
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
	if !c.writing && c.ws != nil {
		c.startWriting()
	}
	c.mu.Unlock()
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
		c.srv.writers.schedule(c)
		return
	}
	go c.writeLoop()
}

// flush is the write pool's turn of the connection: everything queued goes
// out in one non-blocking write. If frames arrived meanwhile the connection
// goes back on the ready list; if the socket could not take the whole
// write, a goroutine finishes it (see finishFlush).
//
// buf is the worker's gather buffer.
func (c *Conn) flush(buf *[]byte) {
	batch, n, ok := c.takeBatch()
	if !ok {
		c.wg.Done()
		return
	}
	done, rest, held, err := c.nc.tryWriteFrames(batch, buf)
	clear(batch)
	if !done {
		c.srv.blockedWrites.Add(1)
		go c.finishFlush(batch, n, rest, held)
		return
	}
	c.flushed(batch, n, err)
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
		c.mu.Unlock()
		c.srv.writers.schedule(c)
		return
	}
	c.writing = false
	c.mu.Unlock()
	if err != nil {
		c.CloseNow()
	}
	c.wg.Done()
}

// takeBatch takes everything queued, n bytes in all, for one write. When
// nothing is queued or the connection is closing it ends the writer's turn
// (writing false) and returns ok false.
func (c *Conn) takeBatch() (batch []outMsg, n int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 || c.closing {
		c.writing = false
		return nil, 0, false
	}
	batch = c.queue
	c.queue, c.spare = c.spare[:0], nil
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
	defer c.wg.Done()
	if d := c.srv.cfg.WriteDelay; d > 0 {
		time.Sleep(d) // let more frames join this write (Config.WriteDelay)
	}
	for {
		batch, n, ok := c.takeBatch()
		if !ok {
			return
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
			return
		}
	}
}

// Close starts the close handshake with a close code and reason: queued
// frames are dropped, the close frame is sent on a goroutine owned by the
// connection. It does not block; later calls are no-ops.
func (c *Conn) Close(code int, reason string) {
	c.closeMu.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.queue = nil
		ws := c.ws
		if ws == nil {
			c.closeCode, c.closeWhy = code, reason
		}
		c.mu.Unlock()
		if ws == nil {
			return
		}
		c.nc.serverClose.Store(true)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.closeHandshake(ws, code, reason)
		}()
	})
}

// CloseNow drops the TCP connection without a close handshake.
func (c *Conn) CloseNow() {
	c.mu.Lock()
	c.closing = true
	c.queue = nil
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		_ = ws.CloseNow()
	}
}

// readLoop reads frames until the connection ends, then finishes the peer.
func (c *Conn) readLoop() {
	// The connection's goroutine only waits: for the socket to become
	// readable, then for a short-lived worker that reads and handles what
	// arrived. Deep work (coder/websocket's Read, decoding, joins, hooks)
	// grows a goroutine's stack, and a grown stack is never given back
	// while the goroutine lives; this way the long-lived goroutine keeps
	// the 2 KiB minimum, most of an idle connection's cost, and a burst of
	// messages costs one goroutine start.
	for {
		if c.bufferedInput() == 0 {
			c.nc.waitReadable()
		}
		// Hand over to a worker and wait for it: the worker unlocks burst
		// (a mutex may be unlocked by another goroutine), which costs no
		// allocation per connection, unlike a channel.
		c.burst.Lock()
		go c.readBurst()
		c.burst.Lock()
		ok := c.burstOK
		c.burst.Unlock()
		if !ok {
			break
		}
	}
	c.endRead()
}

// readBurst handles messages while input is buffered, records whether the
// connection goes on, and unlocks burst.
func (c *Conn) readBurst() {
	defer c.burst.Unlock()
	for {
		if !c.readOne() {
			c.burstOK = false
			return
		}
		if c.bufferedInput() == 0 && !c.nc.hasPending() {
			c.burstOK = true
			return
		}
	}
}

// bufferedInput returns the bytes coder/websocket has buffered but not
// consumed. brMu keeps it from racing with a close handshake, the only
// other reader of the buffer.
func (c *Conn) bufferedInput() int {
	c.brMu.Lock()
	defer c.brMu.Unlock()
	return c.br.Buffered()
}

// closeHandshake runs coder/websocket's Close, which reads the peer's
// close frame through the read buffer.
func (c *Conn) closeHandshake(ws *websocket.Conn, code int, reason string) {
	c.brMu.Lock()
	defer c.brMu.Unlock()
	_ = ws.Close(websocket.StatusCode(code), reason)
}

// endRead ends the connection once reading stopped: no close frame is
// started from now on (an in-flight Close finishes first, so its goroutine
// is counted in wg before the Wait), the socket is dropped, the peer
// finishes and the connection's writer and closer goroutines are waited
// for. It is not inlined, like readOne, so that its frame is not part of
// readLoop's, which stays on the stack while the connection idles.
//
//go:noinline
func (c *Conn) endRead() {
	c.closeMu.Do(func() {}) // no close frame after the read side ended
	c.CloseNow()
	c.peer.Finish()
	c.wg.Wait()
}

// readOne reads the next message and hands it to the peer; false ends the
// loop. It is not inlined so that its large frame (coder/websocket's Read
// and the peer's decoding) is not part of readLoop's, which stays on the
// stack while the connection idles.
//
//go:noinline
func (c *Conn) readOne() bool {
	compressed := false
	if c.inf != nil {
		compressed = c.beforeInflate()
	}
	typ, data, err := c.ws.Read(context.Background())
	if err != nil {
		c.readEnded(err)
		return false
	}
	c.lastRead.Store(time.Now().UnixNano())
	if compressed {
		c.inf.credit -= int64(len(data))
	}
	// A malformed message makes the peer close the connection; reading
	// goes on so that the close handshake completes.
	c.peer.Deliver(typ == websocket.MessageBinary, data)
	return true
}

func (c *Conn) readEnded(err error) {
	log, ctx := c.peer.Logger(), c.peer.Context()
	code := websocket.CloseStatus(err)
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		limit := c.srv.cfg.MaxFrameSize
		if c.inf != nil {
			limit = c.inf.limit
		}
		log.LogAttrs(ctx, slog.LevelWarn, "message too large, connection closed", slog.Int64("limit", limit))
	case code != -1:
		log.LogAttrs(ctx, slog.LevelDebug, "connection closed by client", slog.Int("code", int(code)))
	default:
		log.LogAttrs(ctx, slog.LevelDebug, "connection ended", slog.Any("error", err))
	}
}

// HoldWrites takes the lock that orders writes to the socket, as
// coder/websocket writing a control frame to a full socket holds it, until
// release is called. It exists for tests of the write pool (which must not
// wait behind it) from package channel.
func (c *Conn) HoldWrites() (release func()) {
	c.nc.wmu.Lock()
	return c.nc.wmu.Unlock
}
