package channel

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const authTokenPrefix = "base64url.bearer.phx."

// serveWebSocket performs the handshake in Phoenix's order (method, origin,
// auth token, serializer, connect), upgrades, and starts the connection's
// read loop on a goroutine of its own (owned by the Server's WaitGroup).
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if s.isClosed() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	// The handshake runs on the request's goroutine; the connection then
	// gets a goroutine of its own (see below).

	info := &ConnectInfo{
		Params:     decodeParams(r.URL.RawQuery),
		rawQuery:   r.URL.RawQuery,
		Header:     r.Header,
		RemoteAddr: r.RemoteAddr,
		Request:    r,
	}
	if !s.checkOrigin(r) {
		s.refuse(w, r, http.StatusForbidden, "origin not allowed", slog.String("origin", r.Header.Get("Origin")))
		return
	}
	info.AuthToken = authToken(r.Header)
	if !acceptableSubprotocols(r.Header) {
		s.refuse(w, r, http.StatusForbidden, "no acceptable subprotocol", slog.String("offered", r.Header.Get("Sec-WebSocket-Protocol")))
		return
	}
	ser, ok := negotiateSerializer(info.Params)
	if !ok {
		s.refuse(w, r, http.StatusForbidden, "unsupported vsn", slog.Any("vsn", info.Params["vsn"]))
		return
	}
	info.Serializer = ser

	t := newWSTransport(s, ser)
	conn, err := s.Attach(r.Context(), info, t)
	if err != nil {
		var he *HTTPError
		switch {
		case errors.As(err, &he):
			w.WriteHeader(he.Status)
			_, _ = io.WriteString(w, he.Body)
		case errors.Is(err, ErrServerClosed):
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusForbidden)
		}
		return
	}
	info.Request = nil
	t.conn = conn

	// Compression without context takeover: each message is compressed on
	// its own, so a broadcast is compressed once for every subscriber (see
	// deflate.go) and a connection keeps no compressor between messages.
	mode := websocket.CompressionDisabled
	if s.opts.Compression {
		mode = websocket.CompressionNoContextTakeover
	}
	ws, err := websocket.Accept(&hijackWriter{ResponseWriter: w, t: t}, r, &websocket.AcceptOptions{
		Subprotocols:       []string{"phoenix"},
		InsecureSkipVerify: true, // the origin was checked above, Phoenix-style
		CompressionMode:    mode,
	})
	if err != nil {
		conn.log.LogAttrs(conn.ctx, slog.LevelInfo, "websocket upgrade failed", slog.Any("error", err))
		conn.Finish()
		return
	}
	ws.SetReadLimit(s.opts.MaxFrameSize)
	// coder/websocket made the read buffer read through an io.MultiReader
	// of the bytes buffered before the hijack and the socket (golang/go
	// #32314). Our buffer was new and empty, and Hijack kept those bytes
	// in hijackedConn.pending, so read the socket directly: the wrapper
	// would stay allocated for the connection's life.
	t.br.Reset(t.nc)
	t.deflate = strings.Contains(w.Header().Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	if t.deflate {
		t.inf = &inflateState{limit: s.opts.MaxFrameSize, credit: s.opts.MaxInflatedSize, at: s.clock()}
	}
	t.attach(ws)
	conn.log.LogAttrs(conn.ctx, slog.LevelDebug, "websocket connected",
		slog.String("remote_addr", info.RemoteAddr), slog.String("serializer", ser.String()))
	// The read loop runs on a fresh goroutine and ServeHTTP returns: net/http
	// then drops its per-connection state (4 KiB read buffer, the serving
	// goroutine's deep stack), and the reader's stack stays small.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t.readLoop()
	}()
}

// checkOrigin runs Options.CheckOrigin, else the AllowedOrigins policy, on
// a WebSocket handshake.
func (s *Server) checkOrigin(r *http.Request) bool {
	if s.opts.CheckOrigin != nil {
		return s.opts.CheckOrigin(r)
	}
	return s.origins.allow(r, false)
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, why string, attrs ...slog.Attr) {
	s.stats.refused.Add(1)
	attrs = append(attrs, slog.String("remote_addr", r.RemoteAddr), slog.Int("status", status))
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "connection refused: "+why, attrs...)
	w.WriteHeader(status)
}

// authToken extracts the Phoenix 1.8 auth token from Sec-WebSocket-Protocol:
// the single entry "base64url.bearer.phx.<standard base64, unpadded>".
func authToken(h http.Header) string {
	var found []string
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if strings.HasPrefix(p, authTokenPrefix) {
				found = append(found, p[len(authTokenPrefix):])
			}
		}
	}
	if len(found) != 1 {
		return ""
	}
	enc := strings.TrimRight(found[0], "=")
	b, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		if b, err = base64.RawURLEncoding.DecodeString(enc); err != nil {
			return ""
		}
	}
	return string(b)
}

// acceptableSubprotocols applies Phoenix's subprotocol check with auth tokens
// on: a client that offers protocols (besides the auth token) must offer
// "phoenix", the one this server speaks and echoes.
func acceptableSubprotocols(h http.Header) bool {
	offered := false
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			switch {
			case p == "" || strings.HasPrefix(p, authTokenPrefix):
			case p == "phoenix":
				return true
			default:
				offered = true
			}
		}
	}
	return !offered
}

// wsTransport is the WebSocket Transport: a bounded outbound queue drained
// by the server's write pool (writepool.go), which writes everything queued
// with one socket write.
type wsTransport struct {
	srv  *Server
	conn *Conn
	ws   *websocket.Conn
	nc   *hijackedConn
	br   *bufio.Reader // coder/websocket's read buffer, ours to inspect
	brMu sync.Mutex    // orders inspecting br with a close handshake
	ser  Serializer
	max  int
	// deflate: permessage-deflate was negotiated; frames of large payloads
	// are sent compressed (deflate.go).
	deflate  bool
	inf      *inflateState // non-nil with deflate: the inflation bounds' state
	lastRead atomic.Int64  // unix nanos of the last inbound frame (see idle.go)
	burst    sync.Mutex    // held by readLoop's worker while it reads (see readLoop)
	burstOK  bool          // the worker's verdict: the connection goes on

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

// outMsg is one queued, complete WebSocket frame (see wsframe.go).
type outMsg struct {
	b []byte
}

func newWSTransport(s *Server, ser Serializer) *wsTransport {
	t := &wsTransport{srv: s, ser: ser, max: s.opts.MaxQueueBytes}
	// Activity starts now: the idle sweeper sees the connection from Attach
	// on, while the upgrade is still under way.
	t.lastRead.Store(time.Now().UnixNano())
	return t
}

// attach completes the upgrade: frames queued and a close requested while
// the handshake ran are acted on now.
func (t *wsTransport) attach(ws *websocket.Conn) {
	t.mu.Lock()
	t.ws = ws
	code, why := t.closeCode, t.closeWhy
	if code == 0 && len(t.queue) > 0 && !t.writing {
		t.startWriting()
	}
	t.mu.Unlock()
	if code != 0 {
		t.nc.serverClose.Store(true)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.closeHandshake(ws, code, why)
		}()
	}
}

// Send implements Transport.
func (t *wsTransport) Send(f *Frame) {
	b, err := f.wireWS(t.ser, t.deflate)
	if err != nil {
		t.conn.log.LogAttrs(t.conn.ctx, slog.LevelError, "frame not sent", slog.String("topic", f.f.topic), slog.Any("error", err))
		return
	}
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return
	}
	if t.bytes > 0 && t.bytes+len(b) > t.max {
		queued := t.bytes
		t.mu.Unlock()
		t.conn.log.LogAttrs(t.conn.ctx, slog.LevelDebug, "outbound queue full",
			slog.Int("queued_bytes", queued), slog.Int("limit", t.max))
		t.conn.CloseSlowConsumer()
		return
	}
	t.queue = append(t.queue, outMsg{b: b})
	t.bytes += len(b)
	if !t.writing && t.ws != nil {
		t.startWriting()
	}
	t.mu.Unlock()
}

// startWriting hands the queue to a writer: the server's write pool, or,
// for a connection it cannot write without blocking (not a plain socket,
// e.g. TLS), a goroutine of the connection's own. Called with mu held and
// writing false; writing stays true (and wg counts the writer) until the
// queue is empty.
func (t *wsTransport) startWriting() {
	t.writing = true
	t.wg.Add(1)
	if t.nc.canWriteNoBlock() {
		t.srv.writers.schedule(t)
		return
	}
	go t.writeLoop()
}

// flush is the write pool's turn of the connection: everything queued goes
// out in one non-blocking write. If frames arrived meanwhile the connection
// goes back on the ready list; if the socket could not take the whole
// write, a goroutine finishes it (see finishFlush).
//
// buf is the worker's gather buffer.
func (t *wsTransport) flush(buf *[]byte) {
	batch, n, ok := t.takeBatch()
	if !ok {
		t.wg.Done()
		return
	}
	done, rest, held, err := t.nc.tryWriteFrames(batch, buf)
	clear(batch)
	if !done {
		t.srv.stats.blockedWrites.Add(1)
		go t.finishFlush(batch, n, rest, held)
		return
	}
	t.flushed(batch, n, err)
}

// finishFlush writes what tryWriteFrames could not, blocking until the slow
// peer takes it (or the connection is closed), then continues as flush.
func (t *wsTransport) finishFlush(batch []outMsg, n int, rest []byte, held bool) {
	err := t.nc.finishWrite(rest, held)
	t.flushed(batch, n, err)
}

// flushed accounts for a written batch of n bytes and decides what comes
// next: close on a write error, back on the ready list when more is
// queued, otherwise the writer's turn ends.
func (t *wsTransport) flushed(batch []outMsg, n int, err error) {
	t.mu.Lock()
	t.release(batch, n)
	if err == nil && len(t.queue) > 0 && !t.closing {
		t.mu.Unlock()
		t.srv.writers.schedule(t)
		return
	}
	t.writing = false
	t.mu.Unlock()
	if err != nil {
		t.closeNow()
	}
	t.wg.Done()
}

// takeBatch takes everything queued, n bytes in all, for one write. When
// nothing is queued or the connection is closing it ends the writer's turn
// (writing false) and returns ok false.
func (t *wsTransport) takeBatch() (batch []outMsg, n int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) == 0 || t.closing {
		t.writing = false
		return nil, 0, false
	}
	batch = t.queue
	t.queue, t.spare = t.spare[:0], nil
	for i := range batch {
		n += len(batch[i].b)
	}
	t.srv.stats.writes.Add(1)
	t.srv.stats.framesWritten.Add(uint64(len(batch)))
	return batch, n, true
}

// release accounts for a written batch of n bytes and keeps its slice for
// the next queue. Called with mu held.
func (t *wsTransport) release(batch []outMsg, n int) {
	t.bytes -= n
	if cap(batch) <= 1024 {
		t.spare = batch[:0]
	}
}

// writeLoop writes what is queued until the queue is empty, blocking: the
// writer of a connection the pool cannot write without blocking (TLS). A
// write blocked on a full socket is ended by closing the socket.
func (t *wsTransport) writeLoop() {
	defer t.wg.Done()
	if d := t.srv.opts.WriteDelay; d > 0 {
		time.Sleep(d) // let more frames join this write (Options.WriteDelay)
	}
	for {
		batch, n, ok := t.takeBatch()
		if !ok {
			return
		}
		err := t.nc.writeFrames(batch)
		clear(batch)
		t.mu.Lock()
		t.release(batch, n)
		t.mu.Unlock()
		if err != nil {
			t.closeNow()
			t.mu.Lock()
			t.writing = false
			t.mu.Unlock()
			return
		}
	}
}

// Close implements Transport: queued frames are dropped, the close frame is
// sent on a goroutine owned by the transport.
func (t *wsTransport) Close(code int, reason string) {
	t.closeMu.Do(func() {
		t.mu.Lock()
		t.closing = true
		t.queue = nil
		ws := t.ws
		if ws == nil {
			t.closeCode, t.closeWhy = code, reason
		}
		t.mu.Unlock()
		if ws == nil {
			return
		}
		t.nc.serverClose.Store(true)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.closeHandshake(ws, code, reason)
		}()
	})
}

// closeNow drops the TCP connection without a close handshake.
func (t *wsTransport) closeNow() {
	t.mu.Lock()
	t.closing = true
	t.queue = nil
	ws := t.ws
	t.mu.Unlock()
	if ws != nil {
		_ = ws.CloseNow()
	}
}

// readLoop reads frames until the connection ends, then finishes the Conn.
func (t *wsTransport) readLoop() {
	t.lastRead.Store(time.Now().UnixNano())
	t.srv.startIdleSweeper()
	// The connection's goroutine only waits: for the socket to become
	// readable, then for a short-lived worker that reads and handles what
	// arrived. Deep work (coder/websocket's Read, decoding, joins, hooks)
	// grows a goroutine's stack, and a grown stack is never given back
	// while the goroutine lives; this way the long-lived goroutine keeps
	// the 2 KiB minimum, most of an idle connection's cost, and a burst of
	// messages costs one goroutine start.
	for {
		if t.bufferedInput() == 0 {
			t.nc.waitReadable()
		}
		// Hand over to a worker and wait for it: the worker unlocks burst
		// (a mutex may be unlocked by another goroutine), which costs no
		// allocation per connection, unlike a channel.
		t.burst.Lock()
		go t.readBurst()
		t.burst.Lock()
		ok := t.burstOK
		t.burst.Unlock()
		if !ok {
			break
		}
	}
	t.endRead()
}

// readBurst handles messages while input is buffered, records whether the
// connection goes on, and unlocks burst.
func (t *wsTransport) readBurst() {
	defer t.burst.Unlock()
	for {
		if !t.readOne() {
			t.burstOK = false
			return
		}
		if t.bufferedInput() == 0 && !t.nc.hasPending() {
			t.burstOK = true
			return
		}
	}
}

// bufferedInput returns the bytes coder/websocket has buffered but not
// consumed. brMu keeps it from racing with a close handshake, the only
// other reader of the buffer.
func (t *wsTransport) bufferedInput() int {
	t.brMu.Lock()
	defer t.brMu.Unlock()
	return t.br.Buffered()
}

// closeHandshake runs coder/websocket's Close, which reads the peer's
// close frame through the read buffer.
func (t *wsTransport) closeHandshake(ws *websocket.Conn, code int, reason string) {
	t.brMu.Lock()
	defer t.brMu.Unlock()
	_ = ws.Close(websocket.StatusCode(code), reason)
}

//go:noinline
func (t *wsTransport) endRead() {
	t.mu.Lock()
	t.mu.Unlock()
	t.closeMu.Do(func() {}) // no close frame after the read side ended
	t.closeNow()
	t.conn.Finish()
	t.wg.Wait()
}

// readOne reads the next message and handles it; false ends the loop. It
// is not inlined so that its large frame is not part of readLoop's, which
// stays on the stack while the connection idles.
//
//go:noinline
func (t *wsTransport) readOne() bool {
	compressed := false
	if t.inf != nil {
		compressed = t.beforeInflate()
	}
	typ, data, err := t.ws.Read(context.Background())
	if err != nil {
		t.readEnded(err)
		return false
	}
	t.lastRead.Store(time.Now().UnixNano())
	if compressed {
		t.inf.credit -= int64(len(data))
	}
	c := t.conn
	m, err := t.ser.decode(typ == websocket.MessageBinary, data)
	if err != nil {
		t.srv.stats.malformed.Add(1)
		c.log.LogAttrs(c.ctx, slog.LevelWarn, "malformed frame, closing connection", slog.Any("error", err))
		if errors.Is(err, errInvalidUTF8) {
			c.Close(CloseInvalidPayload, "invalid UTF-8")
		} else {
			c.Close(CloseInternalError, "malformed frame")
		}
		return true // keep reading so the close handshake completes
	}
	t.mu.Lock()
	closing := t.closing
	t.mu.Unlock()
	if !closing {
		c.Receive(&m)
	}
	return true
}

func (t *wsTransport) readEnded(err error) {
	c := t.conn
	code := websocket.CloseStatus(err)
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		limit := t.srv.opts.MaxFrameSize
		if t.inf != nil {
			limit = t.inf.limit
		}
		c.log.LogAttrs(c.ctx, slog.LevelWarn, "message too large, connection closed", slog.Int64("limit", limit))
	case code != -1:
		c.log.LogAttrs(c.ctx, slog.LevelDebug, "connection closed by client", slog.Int("code", int(code)))
	default:
		c.log.LogAttrs(c.ctx, slog.LevelDebug, "connection ended", slog.Any("error", err))
	}
}

func (t *wsTransport) lastActivity() int64 { return t.lastRead.Load() }

// Inflation bounds (Options.MaxInflatedSize and MaxInflateRate).
//
// coder/websocket inflates a compressed message inside Read, through the
// read limit (SetReadLimit), which counts inflated bytes for a compressed
// message and wire bytes for an uncompressed one. The limit is read when a
// message starts, so before each read the transport looks at the next
// frame's header in the read buffer: a compressed message gets
// MaxInflatedSize, an uncompressed one MaxFrameSize. A compressed message
// past its limit stops inflating there and coder/websocket closes the
// connection with 1009.

// inflateState is a compressed connection's inflation state: the read
// limit in force and a token bucket of inflated bytes. Only the reading
// goroutine uses it.
type inflateState struct {
	limit  int64 // the read limit set on the connection
	credit int64 // bytes the connection may inflate; negative in debt
	at     int64 // clock reading of the last refill, nanoseconds
}

// refill adds what rate bytes per second earned since the last refill, up
// to burst.
func (inf *inflateState) refill(now, rate, burst int64) {
	if el := now - inf.at; el > 0 {
		earned := float64(el) * float64(rate) / 1e9
		if earned >= float64(burst-inf.credit) {
			inf.credit = burst
		} else {
			inf.credit += int64(earned)
		}
	}
	inf.at = now
}

// beforeInflate prepares the next read of a compressed connection: it
// pauses while the connection's inflation is in debt (the token bucket
// refills at MaxInflateRate), then sets the read limit for the next
// message. It reports whether that message is (or may be) compressed, so
// that its inflated size is charged.
func (t *wsTransport) beforeInflate() bool {
	inf, o := t.inf, &t.srv.opts
	inf.refill(t.srv.clock(), o.MaxInflateRate, o.MaxInflatedSize)
	if inf.credit < 0 {
		d := time.Duration(float64(-inf.credit) / float64(o.MaxInflateRate) * 1e9)
		t.conn.log.LogAttrs(t.conn.ctx, slog.LevelDebug, "inflate rate exceeded, pausing reads",
			slog.Duration("pause", d), slog.Int64("rate", o.MaxInflateRate))
		t.srv.pause(t.conn.ctx, d)
		inf.refill(t.srv.clock(), o.MaxInflateRate, o.MaxInflatedSize)
	}
	compressed, known := t.nextCompressed()
	compressed = compressed || !known
	limit := o.MaxFrameSize
	if compressed {
		limit = o.MaxInflatedSize
	}
	if limit != inf.limit {
		t.ws.SetReadLimit(limit)
		inf.limit = limit
	}
	return compressed
}

// nextCompressed looks at the frames buffered for the next read (without
// reading the socket): it skips control frames and reports the RSV1 bit
// (compressed) of the first data frame, if it is buffered (known).
func (t *wsTransport) nextCompressed() (compressed, known bool) {
	t.brMu.Lock()
	defer t.brMu.Unlock()
	if t.br.Buffered() == 0 {
		if !t.nc.hasPending() {
			return false, false
		}
		_, _ = t.br.Peek(1) // takes the pending bytes without blocking
	}
	b, _ := t.br.Peek(t.br.Buffered())
	for off := 0; off < len(b); {
		h := b[off]
		if op := h & 0x0f; op < 0x8 {
			// A data frame (or a protocol error coder/websocket refuses).
			return h&0x40 != 0, true
		}
		if off+2 > len(b) {
			return false, false
		}
		n := int(b[off+1] & 0x7f)
		if n > 125 {
			return false, true // an invalid control frame: the read fails
		}
		hl := 2
		if b[off+1]&0x80 != 0 {
			hl += 4 // masking key
		}
		off += hl + n
	}
	return false, false
}
