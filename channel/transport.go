package channel

import (
	"sync"

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
