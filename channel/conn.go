package channel

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pyre-go/pyre/correlation"
	"github.com/pyre-go/pyre/pubsub"
)

// ConnectInfo describes a connection attempt. The Connect callback reads it
// and may set ID, Assigns and CorrelationID; everything else is read-only.
type ConnectInfo struct {
	// Params are the connect params decoded Plug-style: nested keys
	// (user[id]=7) become nested maps, values are strings, "vsn" included.
	Params map[string]any
	// Header is the HTTP request header of the upgrade (or LongPoll) request.
	// It is not kept after Connect: copy what channels need into Assigns.
	Header http.Header
	// RemoteAddr is the peer's address as net/http reports it.
	RemoteAddr string
	// AuthToken is the Phoenix 1.8 auth token (from Sec-WebSocket-Protocol
	// "base64url.bearer.phx.<b64>"), "" when the client sent none.
	AuthToken string
	// Serializer is the wire format negotiated from vsn.
	Serializer Serializer
	// Request is the HTTP request, for anything else (cookies, TLS state). It
	// must not be used after Connect returns.
	Request *http.Request

	// ID is the socket id (Phoenix's id/1), "" for none. A broadcast of event
	// "disconnect" to the topic ID closes every connection with this id.
	ID string
	// Assigns are copied into every channel joined on the connection.
	Assigns map[string]any
	// rawQuery is the query string Params were decoded from: the connection
	// keeps it instead of the map and decodes again when asked.
	rawQuery string

	// CorrelationID identifies the connection in logs. It is pre-filled with
	// an id offered by the client (connect param "correlation_id" or header
	// X-Correlation-ID, if valid) or a fresh one; Connect may replace it.
	CorrelationID string
}

// Conn is one client connection, whatever its transport. It owns the
// connection's joined channels and the goroutines that run them.
type Conn struct {
	srv  *Server
	t    Transport
	info ConnectInfo
	ctx  context.Context
	stop context.CancelFunc
	log  *slog.Logger

	mu      sync.Mutex
	chans   chanSet
	live    []*proc     // procs whose context is not canceled yet (a slice: usually one or two)
	closed  bool        // Finish ran
	closing atomic.Bool // Close ran: the client is going away

	finishOnce sync.Once
	wg         sync.WaitGroup // channel mailbox goroutines
	idSub      *connIDSub
}

// Server returns the server the connection belongs to.
func (c *Conn) Server() *Server { return c.srv }

// ID returns the socket id set by Connect ("" for none).
func (c *Conn) ID() string { return c.info.ID }

// CorrelationID returns the connection's correlation id.
func (c *Conn) CorrelationID() string { return c.info.CorrelationID }

// Params returns the connect params, decoded as for Connect. Connections
// keep the query string rather than the map, so each call decodes anew:
// read them in Connect and keep what channels need in Assigns.
func (c *Conn) Params() map[string]any {
	if c.info.Params != nil || c.info.rawQuery == "" {
		return c.info.Params
	}
	return decodeParams(c.info.rawQuery)
}

// Assigns returns the assigns set by Connect. The map must not be modified.
func (c *Conn) Assigns() map[string]any { return c.info.Assigns }

// RemoteAddr returns the peer address.
func (c *Conn) RemoteAddr() string { return c.info.RemoteAddr }

// AuthToken returns the auth token the client sent, "" for none.
func (c *Conn) AuthToken() string { return c.info.AuthToken }

// Serializer returns the connection's wire format.
func (c *Conn) Serializer() Serializer { return c.info.Serializer }

// Context returns a context canceled when the connection ends. It carries
// the correlation id.
func (c *Conn) Context() context.Context { return c.ctx }

// Logger returns the connection's logger; records logged with
// Context() carry the correlation id.
func (c *Conn) Logger() *slog.Logger { return c.log }

// Close closes the connection with a WebSocket close code and reason. Its
// channels terminate without phx_close frames: their contexts are canceled
// at once, client messages still waiting for a full mailbox are dropped, and
// Terminate runs when the transport finishes. It does not block. Transports
// that close a connection on their own initiative call Close too.
func (c *Conn) Close(code int, reason string) {
	c.beginClose()
	c.t.Close(code, reason)
}

// closeNow closes the connection as Close does, but a transport that can
// drop it at once (immediateCloser) does so, without a close handshake:
// Server.Close.
func (c *Conn) closeNow(code int, reason string) {
	c.beginClose()
	if n, ok := c.t.(immediateCloser); ok {
		n.closeNow()
		return
	}
	c.t.Close(code, reason)
}

// beginClose marks the connection as closing, cancels its context and its
// channels' contexts, and wakes a reader waiting for mailbox room, once.
func (c *Conn) beginClose() {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.stop()
	for _, p := range c.liveProcs() {
		p.ctx.cancel()
		p.wake()
	}
}

func (c *Conn) addLive(p *proc) {
	c.mu.Lock()
	c.live = append(c.live, p)
	c.mu.Unlock()
}

func (c *Conn) removeLive(p *proc) {
	c.mu.Lock()
	if i := slices.Index(c.live, p); i >= 0 {
		last := len(c.live) - 1
		c.live[i] = c.live[last]
		c.live[last] = nil
		c.live = c.live[:last]
	}
	c.mu.Unlock()
}

func (c *Conn) liveProcs() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.live)
}

// Channels returns the number of joined channels.
func (c *Conn) Channels() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chans.len()
}

func (c *Conn) send(f *Frame) { c.t.Send(f) }

func (c *Conn) reply(joinRef, ref, topic, status string, response []byte, binary bool) {
	c.send(&Frame{f: frame{kind: kindReply, binary: binary, joinRef: joinRef, ref: ref, topic: topic, status: status, payload: response}})
}

var (
	respUnmatched   = []byte(`{"reason":"unmatched topic"}`)
	respTooMany     = []byte(`{"reason":"too many channels joined"}`)
	respJoinCrashed = []byte(`{"reason":"join crashed"}`)
	respTopicLong   = []byte(`{"reason":"topic too long"}`)
	respParamsLarge = []byte(`{"reason":"join params too large"}`)
)

func (c *Conn) join(m *Message) {
	// Bounds first, before the router or a channel sees the join: a refused
	// join keeps nothing (an existing channel of the topic stays joined).
	if n := len(m.Topic); n > c.srv.opts.MaxTopicLength {
		c.log.LogAttrs(c.ctx, slog.LevelInfo, "join refused: topic too long",
			slog.Int("topic_bytes", n), slog.Int("limit", c.srv.opts.MaxTopicLength))
		c.reply(m.JoinRef, m.Ref, m.Topic, "error", respTopicLong, false)
		c.observeRefusal(m, "", RefusedTopicTooLong)
		return
	}
	if n := len(m.Payload.raw); n > c.srv.opts.MaxJoinParamsBytes {
		c.log.LogAttrs(c.ctx, slog.LevelInfo, "join refused: join params too large",
			slog.String("topic", m.Topic), slog.Int("params_bytes", n), slog.Int("limit", c.srv.opts.MaxJoinParamsBytes))
		c.reply(m.JoinRef, m.Ref, m.Topic, "error", respParamsLarge, false)
		c.observeRefusal(m, "", RefusedParamsTooLarge)
		return
	}
	pattern, factory, ok := c.srv.router.Match(m.Topic)
	if !ok {
		c.reply("", m.Ref, m.Topic, "error", respUnmatched, false)
		c.observeRefusal(m, "", RefusedUnmatchedTopic)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	old := c.chans.get(m.Topic)
	if old != nil {
		c.chans.del(m.Topic)
	}
	n := c.chans.len()
	c.mu.Unlock()
	if old != nil {
		old.detach()
	}
	defer func() {
		if old != nil {
			old.stop(ErrDuplicateJoin, stopClose, "")
		}
	}()
	if n >= c.srv.opts.MaxChannels {
		c.reply(m.JoinRef, m.Ref, m.Topic, "error", respTooMany, false)
		c.observeRefusal(m, pattern, RefusedTooManyChannels)
		return
	}
	p := newProc(c, pattern, factory(), m)
	obs := c.srv.obs.cur.Load()
	start := obs.start()
	reply, crashed := p.join(m)
	took := since(start)
	if reply.Status != "ok" {
		p.abandon()
		c.sendReply(m.JoinRef, m.Ref, m.Topic, reply)
		if obs != nil {
			why := RefusedByChannel
			if crashed {
				why = RefusedCrashed
			}
			obs.join(JoinInfo{Pattern: pattern, Topic: m.Topic, Refusal: why, Duration: took})
		}
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		p.abandon()
		return
	}
	c.chans.set(p)
	c.mu.Unlock()
	p.attach()
	c.sendReply(m.JoinRef, m.Ref, m.Topic, reply)
	if hook := c.srv.opts.OnJoin; hook != nil {
		hook(p.sock)
	}
	if obs != nil {
		obs.join(JoinInfo{Pattern: pattern, Topic: m.Topic, OK: true, Duration: took})
	}
	p.activate()
}

// sendReply encodes a handler's Reply. An unencodable response is logged
// and answered with an error reply so the client is not left waiting.
func (c *Conn) sendReply(joinRef, ref, topic string, r Reply) {
	if r.IsZero() {
		return
	}
	b, bin, err := encodePayload(r.Response)
	if err != nil {
		c.log.LogAttrs(c.ctx, slog.LevelError, "cannot encode reply", slog.String("topic", topic), slog.Any("error", err))
		c.reply(joinRef, ref, topic, "error", []byte(`{"reason":"unencodable reply"}`), false)
		return
	}
	c.reply(joinRef, ref, topic, r.Status, b, bin)
}

func (c *Conn) leave(m *Message) {
	c.mu.Lock()
	p := c.chans.get(m.Topic)
	if p == nil {
		c.mu.Unlock()
		c.reply(m.JoinRef, m.Ref, m.Topic, "ok", emptyObject, false)
		return
	}
	if m.JoinRef != "" && m.JoinRef != p.joinRef {
		c.mu.Unlock()
		return
	}
	c.chans.del(m.Topic)
	c.mu.Unlock()
	p.detach()
	p.stop(ErrLeft, stopLeave, m.Ref)
}

func (c *Conn) push(m *Message) {
	c.mu.Lock()
	p := c.chans.get(m.Topic)
	c.mu.Unlock()
	if p == nil {
		c.reply("", m.Ref, m.Topic, "error", respUnmatched, false)
		return
	}
	if m.JoinRef != "" && m.JoinRef != p.joinRef {
		c.log.LogAttrs(c.ctx, slog.LevelDebug, "dropped message with stale join_ref",
			slog.String("topic", m.Topic), slog.String("event", m.Event), slog.String("join_ref", m.JoinRef))
		return
	}
	p.enqueueIn(m)
}

// unregister removes p from the table if it is still the registered
// channel of its topic.
func (c *Conn) unregister(p *proc) {
	c.mu.Lock()
	if c.chans.get(p.topic) == p {
		c.chans.del(p.topic)
	}
	c.mu.Unlock()
}

// isClosing reports whether the connection is closing or finished.
func (c *Conn) isClosing() bool { return c.closing.Load() }

// connIDSub receives broadcasts to the socket id: "disconnect" closes the
// connection with 1001; other events are ignored, as in Phoenix.
type connIDSub struct{ c *Conn }

func (s *connIDSub) deliver(_ *Frame, msg *pubsub.Message) {
	if msg.Event == "disconnect" {
		s.c.log.LogAttrs(s.c.ctx, slog.LevelInfo, "disconnect broadcast closes connection", slog.String("socket_id", s.c.info.ID))
		s.c.Close(CloseGoingAway, "disconnect")
	}
}

func (s *connIDSub) subID() string { return "" }

func newConnLogger(base *slog.Logger, info *ConnectInfo) *slog.Logger {
	return base.With(slog.String("correlation_id", info.CorrelationID))
}

// connContext returns the connection context: canceled when the connection
// ends, carrying the correlation id. It does not carry the values of the
// HTTP request's context (the request is over once the connection runs);
// Connect can copy what channels need into Assigns.
func connContext(id string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	return correlation.WithID(ctx, id), cancel
}
