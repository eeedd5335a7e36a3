package channel

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/pyre-go/pyre/channel/internal/wstransport"
)

// serveWebSocket performs the handshake in Phoenix's order (method, origin,
// auth token, serializer, connect), then hands the connection to the
// WebSocket transport (package wstransport), which upgrades it and reads it
// (counted in the Server's WaitGroup): on Linux with a goroutine only while
// input is read, elsewhere on a goroutine of its own.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if !s.hold() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	defer s.release()
	// The handshake runs on the request's goroutine; the transport then
	// reads the connection (Serve, below).

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
	info.AuthToken = wstransport.AuthToken(r.Header)
	if !wstransport.AcceptableSubprotocols(r.Header) {
		s.refuse(w, r, http.StatusForbidden, "no acceptable subprotocol", slog.String("offered", r.Header.Get("Sec-WebSocket-Protocol")))
		return
	}
	ser, ok := negotiateSerializer(info.Params)
	if !ok {
		s.refuse(w, r, http.StatusForbidden, "unsupported vsn", slog.Any("vsn", info.Params["vsn"]))
		return
	}
	info.Serializer = ser

	t := &wsTransport{ser: ser}
	t.ws.Init(s.ws, t)
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
	if err := t.ws.Upgrade(w, r); err != nil {
		conn.log.LogAttrs(conn.ctx, slog.LevelInfo, "websocket upgrade failed", slog.Any("error", err))
		conn.Finish()
		return
	}
	conn.log.LogAttrs(conn.ctx, slog.LevelDebug, "websocket connected",
		slog.String("remote_addr", info.RemoteAddr), slog.String("serializer", ser.String()))
	// Reading is the transport's from here and ServeHTTP returns: net/http
	// then drops its per-connection state (4 KiB read buffer, the serving
	// goroutine's deep stack).
	t.ws.Serve()
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

// wsTransport joins a Conn to its WebSocket connection: it is the Conn's
// Transport (frames out, encoded here once per broadcast and serializer)
// and the connection's wstransport.Peer (messages in, decoded here). One
// allocation per connection holds both sides.
type wsTransport struct {
	ws   wstransport.Conn
	conn *Conn
	ser  Serializer
}

// bind implements connBinder: the Conn exists before it is registered, so
// that the idle sweeper and the write path always find it.
func (t *wsTransport) bind(c *Conn) { t.conn = c }

// Send implements Transport: the frame goes out as one complete WebSocket
// frame, shared with every subscriber of a broadcast (Frame.wireWS).
func (t *wsTransport) Send(f *Frame) {
	b, err := f.wireWS(t.ser, t.ws.Deflate())
	if err != nil {
		t.conn.log.LogAttrs(t.conn.ctx, slog.LevelError, "frame not sent", slog.String("topic", f.f.topic), slog.Any("error", err))
		return
	}
	t.ws.Queue(b, f.f.kind == kindReply) // replies skip the write delay
}

// Close implements Transport.
func (t *wsTransport) Close(code int, reason string) { t.ws.Close(code, reason) }

// queuedBytes implements queuedByteser.
func (t *wsTransport) queuedBytes() int { return t.ws.QueuedBytes() }

// closeNow implements immediateCloser.
func (t *wsTransport) closeNow() { t.ws.CloseNow() }

// Deliver implements wstransport.Peer: a malformed message closes the
// connection (1007 for invalid UTF-8, else 1011); messages read while the
// connection closes are dropped.
func (t *wsTransport) Deliver(binary bool, data []byte) {
	c := t.conn
	m, err := t.ser.decode(binary, data)
	if err != nil {
		c.srv.stats.malformed.Add(1)
		c.log.LogAttrs(c.ctx, slog.LevelWarn, "malformed frame, closing connection", slog.Any("error", err))
		if errors.Is(err, errInvalidUTF8) {
			c.Close(CloseInvalidPayload, "invalid UTF-8")
		} else {
			c.Close(CloseInternalError, "malformed frame")
		}
		return
	}
	if !t.ws.Closing() {
		c.Receive(&m)
	}
}

// Disconnect implements wstransport.Peer.
func (t *wsTransport) Disconnect(code int, reason string) { t.conn.Close(code, reason) }

// SlowConsumer implements wstransport.Peer.
func (t *wsTransport) SlowConsumer() { t.conn.CloseSlowConsumer() }

// Finish implements wstransport.Peer.
func (t *wsTransport) Finish() { t.conn.Finish() }

// Context implements wstransport.Peer.
func (t *wsTransport) Context() context.Context { return t.conn.ctx }

// Logger implements wstransport.Peer.
func (t *wsTransport) Logger() *slog.Logger { return t.conn.log }

// wsConns yields the WebSocket connections, for the idle sweeper.
func (s *Server) wsConns(yield func(*wstransport.Conn) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if t, ok := c.t.(*wsTransport); ok && !yield(&t.ws) {
			return
		}
	}
}
