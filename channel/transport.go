package channel

// For transport authors. A transport carries one connection's frames: it
// implements Transport, registers the connection with Server.Attach (which
// runs Options.Connect), feeds inbound messages to Conn.Receive from one
// goroutine and calls Conn.Finish when the peer is gone. Outbound frames
// arrive through Transport.Send as *Frame values, to encode with
// Frame.Encode. The WebSocket and LongPoll transports of the Server are
// built this way, and so is package channeltest's in-process one. The
// options meant for harnesses that follow channels (Options.OnJoin,
// Options.OnTerminate) and Conn.PushRaw are part of this seam too.

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/pyre-go/pyre/correlation"
	"github.com/pyre-go/pyre/pubsub"
)

// WebSocket close codes pyre uses, named after RFC 6455 and the codes
// Phoenix (under Bandit) sends.
const (
	CloseNormal         = 1000 // client-requested close answered normally
	CloseGoingAway      = 1001 // "disconnect" broadcast to the socket id
	CloseProtocolError  = 1002 // idle timeout, or a client close without a valid code (Bandit's answer)
	CloseInvalidPayload = 1007 // a text message or close reason that is not valid UTF-8
	CloseTooBig         = 1009 // inbound message larger than MaxFrameSize (or MaxInflatedSize inflated)
	CloseInternalError  = 1011 // malformed frame from the client
	CloseServiceRestart = 1012 // graceful shutdown: clients reconnect elsewhere
	// CloseSlowConsumer closes a connection whose outbound queue overflowed
	// (see Options.MaxQueueBytes). The code is in the range RFC 6455 reserves
	// for libraries; phoenix.js reconnects after it like after any other close.
	CloseSlowConsumer = 3008
)

// Transport carries one connection's frames to and from its peer. The
// WebSocket endpoint is one; package channeltest has an in-process one, and
// LongPoll plugs in the same way. A transport feeds inbound messages to
// Conn.Receive from a single goroutine, in order, and calls Conn.Finish once
// when the peer is gone.
type Transport interface {
	// Send queues one outbound frame, in order. It must not block; a
	// transport applies its own bound and slow-consumer policy and may close
	// the connection instead of queueing. Frames are immutable and may be
	// shared between connections.
	Send(f *Frame)
	// Close starts closing the connection with a WebSocket close code and a
	// short reason. It must not block. The transport then calls Conn.Finish.
	Close(code int, reason string)
}

// immediateCloser is implemented by transports that can drop a
// connection at once, without a close handshake (the WebSocket transport
// closes the socket). Server.Close uses it; other transports get Close
// with 1012.
type immediateCloser interface {
	closeNow()
}

// connBinder is implemented by transports that need their Conn before
// Attach registers it (and so before the server, its idle sweeper or a
// disconnect broadcast may reach the transport through it).
type connBinder interface {
	bind(c *Conn)
}

// Attach runs the connect step for a transport that has decoded its
// request into info (params, header, serializer...): it fills in the
// correlation id, calls Options.Connect and registers the connection. The
// transport then feeds Conn.Receive and calls Conn.Finish at the end. A
// refused connection returns the Connect error (or ErrServerClosed).
func (s *Server) Attach(ctx context.Context, info *ConnectInfo, t Transport) (*Conn, error) {
	if s.isClosed() {
		return nil, ErrServerClosed
	}
	if info.Serializer == 0 {
		info.Serializer = V2
	}
	if info.CorrelationID == "" {
		info.CorrelationID = offeredCorrelationID(info)
	}
	if info.CorrelationID == "" {
		info.CorrelationID = correlation.NewN(s.opts.CorrelationIDLength)
	}
	if s.opts.Connect != nil {
		if err := s.callConnect(ctx, info); err != nil {
			s.stats.refused.Add(1)
			s.log.LogAttrs(ctx, slog.LevelInfo, "connection refused",
				slog.String("correlation_id", info.CorrelationID), slog.String("remote_addr", info.RemoteAddr), slog.Any("error", err))
			return nil, err
		}
	}
	c := &Conn{srv: s, t: t, info: *info}
	if b, ok := t.(connBinder); ok {
		b.bind(c)
	}
	c.info.Header, c.info.Request = nil, nil
	if c.info.rawQuery != "" {
		c.info.Params = nil // Params decodes rawQuery again when asked
	}
	c.ctx, c.stop = connContext(c.info.CorrelationID)
	c.log = newConnLogger(s.log, &c.info)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.stop()
		return nil, ErrServerClosed
	}
	s.conns[c] = struct{}{}
	s.stats.connections.Add(1)
	s.countTransport(t, 1)
	s.mu.Unlock()
	s.stats.accepted.Add(1)
	if c.info.ID != "" {
		c.idSub = &connIDSub{c: c}
		if err := s.hub.add(c.ctx, c.info.ID, c.idSub); err != nil {
			c.log.LogAttrs(c.ctx, slog.LevelError, "subscribe to socket id failed", slog.Any("error", err))
		}
	}
	return c, nil
}

// countTransport adds d to the connection count of t's transport.
func (s *Server) countTransport(t Transport, d int64) {
	switch t.(type) {
	case *wsTransport:
		s.stats.wsConns.Add(d)
	case *lpTransport:
		s.stats.lpConns.Add(d)
	}
}

func (s *Server) callConnect(ctx context.Context, info *ConnectInfo) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Op: "channel: Connect", Value: v, Stack: debug.Stack()}
		}
	}()
	return s.opts.Connect(ctx, info)
}

// offeredCorrelationID returns a valid id the client offered.
func offeredCorrelationID(info *ConnectInfo) string {
	if v, ok := info.Params["correlation_id"].(string); ok && correlation.Valid(v) {
		return v
	}
	if v := info.Header.Get(correlation.Header); correlation.Valid(v) {
		return v
	}
	return ""
}

// Receive handles one inbound message. A transport calls it from a single
// goroutine in arrival order. Joins run synchronously, as in Phoenix: the
// join reply is queued before Receive returns. Other events are handed to
// the channel's mailbox; when the mailbox is full Receive waits, which
// pushes back on the client that floods it.
func (c *Conn) Receive(m *Message) {
	if m.Topic == TopicPhoenix && m.Event == EventHeartbeat {
		c.reply("", m.Ref, TopicPhoenix, "ok", emptyObject, false)
		return
	}
	switch m.Event {
	case EventJoin:
		c.join(m)
	case EventLeave:
		c.leave(m)
	default:
		c.push(m)
	}
}

// Finish ends the connection after its transport is done: every channel
// terminates (reason ErrConnClosed, no frames sent), and Finish waits for
// the channels' goroutines. The transport calls it once; later calls are
// no-ops.
func (c *Conn) Finish() {
	c.finishOnce.Do(func() {
		c.closing.Store(true)
		c.mu.Lock()
		c.closed = true
		procs := c.chans.take()
		c.mu.Unlock()
		if c.idSub != nil {
			c.srv.hub.remove(c.ctx, c.info.ID, c.idSub)
		}
		for _, p := range procs {
			p.detach()
			p.stop(ErrConnClosed, stopSilent, "")
		}
		c.stop()
		for _, p := range c.liveProcs() {
			p.ctx.cancel()
		}
		c.wg.Wait()
		c.srv.removeConn(c)
	})
}

// PushRaw sends a frame [joinRef, null, topic, event, payload] as it is,
// without checking that the topic is joined or the join_ref current. It is
// a low-level tool for tests and protocol experiments; channels use
// Socket.Push.
func (c *Conn) PushRaw(joinRef, topic, event string, payload any) error {
	b, bin, err := encodePayload(payload)
	if err != nil {
		return err
	}
	c.send(&Frame{f: frame{kind: kindPush, binary: bin, joinRef: joinRef, topic: topic, event: event, payload: b}})
	return nil
}

// CloseSlowConsumer closes the connection with CloseSlowConsumer and counts
// it in Stats.SlowClosed: the policy transports apply when their outbound
// queue overflows.
func (c *Conn) CloseSlowConsumer() {
	c.srv.stats.slowClosed.Add(1)
	c.log.LogAttrs(c.ctx, slog.LevelWarn, "slow consumer: outbound queue full, closing connection")
	c.Close(CloseSlowConsumer, "slow consumer")
}

// Frame is one outbound message as handed to a Transport. Broadcast frames
// are shared by every subscriber of a node and encode once per serializer.
type Frame struct {
	f     frame
	cache *encodeCache // non-nil for shared broadcast frames
}

type encodeCache struct {
	once [2]sync.Once
	b    [2][]byte
	bin  [2]bool
	err  [2]error

	// Complete WebSocket frames (see wsframe.go): V1, V2, then both
	// compressed.
	wsOnce [4]sync.Once
	ws     [4][]byte
	wsErr  [4]error
}

// FrameKind tells what a Frame is.
type FrameKind uint8

// Frame kinds.
const (
	FramePush      FrameKind = FrameKind(kindPush)      // a push from a channel (also phx_close / phx_error)
	FrameReply     FrameKind = FrameKind(kindReply)     // a phx_reply
	FrameBroadcast FrameKind = FrameKind(kindBroadcast) // a fastlane broadcast (join_ref and ref null)
)

// Kind returns the frame's kind.
func (f *Frame) Kind() FrameKind { return FrameKind(f.f.kind) }

// JoinRef returns the join_ref ("" for null).
func (f *Frame) JoinRef() string { return f.f.joinRef }

// Ref returns the ref ("" for null).
func (f *Frame) Ref() string { return f.f.ref }

// Topic returns the topic.
func (f *Frame) Topic() string { return f.f.topic }

// Event returns the event; "phx_reply" for replies.
func (f *Frame) Event() string {
	if f.f.kind == kindReply {
		return EventReply
	}
	return f.f.event
}

// Status returns the reply status ("" unless Kind is FrameReply).
func (f *Frame) Status() string { return f.f.status }

// Payload returns the encoded payload; for replies, the response.
func (f *Frame) Payload() Payload {
	if len(f.f.payload) == 0 && !f.f.binary {
		return Payload{raw: emptyObject}
	}
	return Payload{raw: f.f.payload, binary: f.f.binary}
}

// Encode returns the frame's wire form for serializer s and whether it is a
// binary WebSocket message. Shared broadcast frames are encoded once per
// serializer and the same bytes are returned to every caller: they must not
// be modified.
func (f *Frame) Encode(s Serializer) ([]byte, bool, error) {
	if f.cache == nil {
		return s.encode(nil, &f.f)
	}
	i := 0
	if s == V2 {
		i = 1
	}
	c := f.cache
	c.once[i].Do(func() { c.b[i], c.bin[i], c.err[i] = s.encode(nil, &f.f) })
	return c.b[i], c.bin[i], c.err[i]
}

// String renders the frame in V2 form for logs and test failures.
func (f *Frame) String() string {
	b, bin, err := f.Encode(V2)
	if err != nil {
		return "<unencodable frame: " + err.Error() + ">"
	}
	if bin {
		return "<binary frame " + f.f.topic + " " + f.Event() + ">"
	}
	return string(b)
}

func newBroadcastFrame(msg *pubsub.Message) *Frame {
	return &Frame{
		f: frame{
			kind:    kindBroadcast,
			binary:  msg.Binary,
			topic:   msg.Topic,
			event:   msg.Event,
			payload: msg.Payload,
		},
		cache: &encodeCache{},
	}
}
