package channel

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const authTokenPrefix = "base64url.bearer.phx."

// serveWebSocket performs the handshake in Phoenix's order (method, origin,
// auth token, serializer, connect) and then runs the connection's read loop
// on the request's goroutine.
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

	mode := websocket.CompressionDisabled
	if s.opts.Compression {
		mode = websocket.CompressionContextTakeover
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

func (s *Server) checkOrigin(r *http.Request) bool {
	if s.opts.CheckOrigin != nil {
		return s.opts.CheckOrigin(r)
	}
	return s.origins.allow(r)
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
// by a writer goroutine that exists only while there is something to write
// and that writes everything queued with a single flush (corked socket).
type wsTransport struct {
	srv  *Server
	conn *Conn
	ws   *websocket.Conn
	nc   *corkConn
	br   *bufio.Reader // coder/websocket's read buffer, ours to inspect
	brMu sync.Mutex    // orders inspecting br with a close handshake
	ser  Serializer
	max  int
	// framed: pyre frames outbound messages itself (compression off; see
	// wsframe.go) instead of writing them through coder/websocket.
	framed bool

	lastRead atomic.Int64 // unix nanos of the last inbound frame (see idle.go)
	burst    sync.Mutex   // held by readLoop's worker while it reads (see readLoop)
	burstOK  bool         // the worker's verdict: the connection goes on

	mu        sync.Mutex
	queue     []outMsg
	spare     []outMsg
	bytes     int
	writing   bool
	closing   bool
	finished  bool
	closeCode int // a close requested before the upgrade completed
	closeWhy  string
	closeMu   sync.Once
	wg        sync.WaitGroup // writer and closer goroutines
}

type outMsg struct {
	b   []byte
	bin bool
}

func newWSTransport(s *Server, ser Serializer) *wsTransport {
	t := &wsTransport{srv: s, ser: ser, max: s.opts.MaxQueueBytes, framed: !s.opts.Compression}
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
		t.writing = true
		t.wg.Add(1)
		go t.writeLoop()
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
	var b []byte
	var bin bool
	var err error
	if t.framed {
		b, err = f.wireWS(t.ser)
	} else {
		b, bin, err = f.Encode(t.ser)
	}
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
	t.queue = append(t.queue, outMsg{b: b, bin: bin})
	t.bytes += len(b)
	if !t.writing && t.ws != nil {
		t.writing = true
		t.wg.Add(1)
		go t.writeLoop()
	}
	t.mu.Unlock()
}

func (t *wsTransport) writeLoop() {
	defer t.wg.Done()
	ctx := context.Background() // a blocked write is ended by closing the socket
	for {
		t.mu.Lock()
		if len(t.queue) == 0 || t.closing {
			t.writing = false
			t.mu.Unlock()
			return
		}
		batch := t.queue
		t.queue, t.spare = t.spare[:0], nil
		t.mu.Unlock()

		n := 0
		var err error
		if t.framed {
			for i := range batch {
				n += len(batch[i].b)
			}
			err = t.nc.writeFrames(batch)
			clear(batch)
		} else {
			n, err = t.writeCoder(ctx, batch)
		}
		t.mu.Lock()
		t.bytes -= n
		if cap(batch) <= 1024 {
			t.spare = batch[:0]
		}
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

// writeCoder writes a batch through coder/websocket (compression on),
// corked so that the batch costs one socket write.
func (t *wsTransport) writeCoder(ctx context.Context, batch []outMsg) (int, error) {
	n := 0
	t.nc.cork()
	var err error
	for i := range batch {
		typ := websocket.MessageText
		if batch[i].bin {
			typ = websocket.MessageBinary
		}
		if err == nil {
			err = t.ws.Write(ctx, typ, batch[i].b)
		}
		n += len(batch[i].b)
		batch[i] = outMsg{}
	}
	if ferr := t.nc.uncork(); err == nil {
		err = ferr
	}
	return n, err
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
	t.finished = true
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
	typ, data, err := t.ws.Read(context.Background())
	if err != nil {
		t.readEnded(err)
		return false
	}
	t.lastRead.Store(time.Now().UnixNano())
	c := t.conn
	m, err := t.ser.decode(typ == websocket.MessageBinary, data)
	if err != nil {
		t.srv.stats.malformed.Add(1)
		c.log.LogAttrs(c.ctx, slog.LevelWarn, "malformed frame, closing connection", slog.Any("error", err))
		c.Close(CloseInternalError, "malformed frame")
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
		c.log.LogAttrs(c.ctx, slog.LevelWarn, "frame too large, connection closed", slog.Int64("limit", t.srv.opts.MaxFrameSize))
	case code != -1:
		c.log.LogAttrs(c.ctx, slog.LevelDebug, "connection closed by client", slog.Int("code", int(code)))
	default:
		c.log.LogAttrs(c.ctx, slog.LevelDebug, "connection ended", slog.Any("error", err))
	}
}

func (t *wsTransport) lastActivity() int64 { return t.lastRead.Load() }

// connBufSize is the size of the bufio buffers coder/websocket reads frame
// headers through and writes frames through. Small is enough: payloads
// larger than the buffer bypass it, and writes are collected by the
// corkConn anyway, so a bigger buffer would only cost idle memory.
const connBufSize = 256

// hijackWriter wraps the ResponseWriter so that the hijacked connection is
// a corkConn, and replaces net/http's 4 KiB buffers with small ones.
type hijackWriter struct {
	http.ResponseWriter
	t *wsTransport
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("channel: ResponseWriter does not implement http.Hijacker")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	cc := &corkConn{Conn: nc}
	cc.rcond = sync.NewCond(&cc.rmu)
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		cc.pending = append([]byte(nil), b...)
	}
	h.t.nc = cc
	h.t.br = bufio.NewReaderSize(cc, connBufSize)
	rw := bufio.NewReadWriter(h.t.br, bufio.NewWriterSize(cc, connBufSize))
	return cc, rw, nil
}

func (h *hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// corkConn is the hijacked net.Conn. While corked, writes collect in a
// pooled buffer and go out in one syscall at uncork, so a batch of queued
// frames costs one send. It also rewrites the echo of a client close frame
// without a status code to 1002, as Bandit (Phoenix's default server) does.
type corkConn struct {
	net.Conn

	// Reads: one goroutine reads the socket at a time; bytes read by
	// waitReadable (or by net/http before the hijack) wait in pending for
	// whichever reader comes next.
	rmu     sync.Mutex
	rcond   *sync.Cond
	reading bool
	pending []byte
	peek    [64]byte

	serverClose atomic.Bool // the server started the close handshake
	scan        frameScanner

	mu     sync.Mutex
	corked bool
	buf    *[]byte
}

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (c *corkConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	for len(c.pending) == 0 && c.reading {
		c.rcond.Wait()
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.rmu.Unlock()
		c.scan.feed(p[:n])
		return n, nil
	}
	c.reading = true
	c.rmu.Unlock()
	n, err := c.Conn.Read(p)
	c.rmu.Lock()
	c.reading = false
	c.rcond.Broadcast()
	c.rmu.Unlock()
	c.scan.feed(p[:n])
	return n, err
}

// hasPending reports whether bytes read ahead wait for the next Read.
func (c *corkConn) hasPending() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return len(c.pending) > 0
}

// waitReadable blocks until the peer sent something (or the connection
// failed), keeping what it read for the next Read. It returns at once if
// bytes are pending or another goroutine is reading.
func (c *corkConn) waitReadable() {
	c.rmu.Lock()
	if len(c.pending) > 0 || c.reading {
		c.rmu.Unlock()
		return
	}
	c.reading = true
	c.rmu.Unlock()
	n, _ := c.Conn.Read(c.peek[:]) // an error shows again at the next Read
	c.rmu.Lock()
	c.pending = c.peek[:n]
	c.reading = false
	c.rcond.Broadcast()
	c.rmu.Unlock()
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

func (c *corkConn) uncork() error {
	c.mu.Lock()
	c.corked = false
	b := c.takeLocked()
	c.mu.Unlock()
	return c.writeOut(b)
}

// takeLocked removes the collected bytes; nil when there are none. The
// socket write happens outside mu, so that a write blocked on a full
// socket never holds up Close or another goroutine's control frame.
func (c *corkConn) takeLocked() *[]byte {
	b := c.buf
	c.buf = nil
	return b
}

// writeOut writes collected bytes and returns the buffer to the pool.
func (c *corkConn) writeOut(b *[]byte) error {
	if b == nil {
		return nil
	}
	_, err := c.Conn.Write(*b)
	if cap(*b) <= 256<<10 {
		*b = (*b)[:0]
		corkPool.Put(b)
	}
	return err
}

// writeFrames writes complete frames in one socket write (with anything
// collected while corked before them).
func (c *corkConn) writeFrames(batch []outMsg) error {
	c.mu.Lock()
	if c.buf == nil {
		c.buf = corkPool.Get().(*[]byte)
	}
	for i := range batch {
		*c.buf = append(*c.buf, batch[i].b...)
	}
	b := c.takeLocked()
	c.mu.Unlock()
	return c.writeOut(b)
}

// Close writes what is still collected (a close frame written while
// another goroutine had the connection corked, say), within a second,
// then closes the socket.
func (c *corkConn) Close() error {
	c.mu.Lock()
	c.corked = false
	b := c.takeLocked()
	c.mu.Unlock()
	if b != nil {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.writeOut(b)
	}
	return c.Conn.Close()
}

// Write answers a client's close frame the way Bandit (Phoenix's default
// server) does rather than echoing it as coder/websocket does: 1000 when the
// client's code is 1000-1003, 1007-1011 or >= 3000, otherwise (including no
// code) 1002. Close frames the server starts itself pass unchanged.
func (c *corkConn) Write(p []byte) (int, error) {
	if len(p) >= 2 && p[0] == 0x88 && int(p[1]&0x7f)+2 == len(p) && c.scan.peerClosed.Load() && !c.serverClose.Load() {
		code := 0
		if len(p) >= 4 {
			code = int(p[2])<<8 | int(p[3])
		}
		answer := CloseProtocolError
		if (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || code >= 3000 {
			answer = CloseNormal
		}
		if _, err := c.write([]byte{0x88, 0x02, byte(answer >> 8), byte(answer)}); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.write(p)
}

// frameScanner follows the frame headers of the inbound byte stream, only
// to notice the client's close frame (coder/websocket answers it before the
// application hears of it).
type frameScanner struct {
	hdr        [14]byte
	hn, need   int
	skip       uint64
	peerClosed atomic.Bool
}

func (s *frameScanner) feed(p []byte) {
	if s.need == 0 {
		s.need = 2
	}
	for len(p) > 0 {
		if s.skip > 0 {
			n := uint64(len(p))
			if n > s.skip {
				n = s.skip
			}
			s.skip -= n
			p = p[n:]
			continue
		}
		s.hdr[s.hn] = p[0]
		s.hn++
		p = p[1:]
		if s.hn == 2 {
			switch s.hdr[1] & 0x7f {
			case 126:
				s.need += 2
			case 127:
				s.need += 8
			}
			if s.hdr[1]&0x80 != 0 {
				s.need += 4
			}
		}
		if s.hn < 2 || s.hn < s.need {
			continue
		}
		var n uint64
		switch l := s.hdr[1] & 0x7f; l {
		case 126:
			n = uint64(s.hdr[2])<<8 | uint64(s.hdr[3])
		case 127:
			for _, b := range s.hdr[2:10] {
				n = n<<8 | uint64(b)
			}
		default:
			n = uint64(l)
		}
		if s.hdr[0]&0x0f == 0x8 {
			s.peerClosed.Store(true)
		}
		s.skip, s.hn, s.need = n, 0, 2
	}
}

func (c *corkConn) write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.corked {
		b := c.takeLocked()
		c.mu.Unlock()
		if err := c.writeOut(b); err != nil {
			return 0, err
		}
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkPool.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	var full *[]byte
	if len(*c.buf) >= 64<<10 {
		full = c.takeLocked()
	}
	c.mu.Unlock()
	if err := c.writeOut(full); err != nil {
		return 0, err
	}
	return len(p), nil
}
