package channel

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pyre-go/pyre/fallback"
)

// Reserved event names of the Phoenix protocol.
const (
	EventJoin      = "phx_join"
	EventLeave     = "phx_leave"
	EventReply     = "phx_reply"
	EventClose     = "phx_close"
	EventError     = "phx_error"
	EventHeartbeat = "heartbeat"
	// TopicPhoenix is the reserved topic of socket-level messages (heartbeats).
	TopicPhoenix = "phoenix"
)

// Message is an inbound message: a client push (including phx_join) or, in
// HandleOut, an intercepted broadcast.
type Message struct {
	// JoinRef is the join_ref the client sent, "" when null.
	JoinRef string
	// Ref is the client's request id, "" when null (broadcasts have none).
	Ref string
	// Topic is the channel topic, e.g. "room:lobby".
	Topic string
	// Event is the event name.
	Event string
	// Payload is the message payload, JSON or binary.
	Payload Payload

	// unhandled: LogUnhandled turned the handler's ErrUnhandled into a
	// logged no-reply; Observer.Event still reports "unhandled".
	unhandled bool
}

// Payload is a message payload as it came off the wire: JSON text, or opaque
// bytes for binary frames.
type Payload struct {
	raw    []byte
	binary bool
}

// JSONPayload returns a payload holding the JSON text b. The text is not
// validated.
func JSONPayload(b []byte) Payload { return Payload{raw: b} }

// BinaryPayload returns a payload holding opaque bytes.
func BinaryPayload(b []byte) Payload { return Payload{raw: b, binary: true} }

// IsBinary reports whether the payload came in a binary frame.
func (p Payload) IsBinary() bool { return p.binary }

// Bytes returns the raw JSON text or the binary data. The slice must not be
// modified.
func (p Payload) Bytes() []byte { return p.raw }

// Decode unmarshals a JSON payload into v. It returns ErrBinaryPayload for
// binary payloads. An empty payload decodes as JSON null.
func (p Payload) Decode(v any) error {
	if p.binary {
		return ErrBinaryPayload
	}
	if len(p.raw) == 0 {
		return json.Unmarshal([]byte("null"), v)
	}
	return json.Unmarshal(p.raw, v)
}

// Map decodes a JSON object payload into a map. Non-objects (and binary
// payloads) yield an empty, non-nil map, which is what most handlers want
// for optional parameters.
func (p Payload) Map() map[string]any {
	m := map[string]any{}
	if p.binary || len(p.raw) == 0 || p.raw[0] != '{' {
		return m
	}
	if err := json.Unmarshal(p.raw, &m); err != nil {
		return map[string]any{}
	}
	return m
}

// MarshalJSON lets a JSON payload be embedded as is in an outgoing payload;
// a binary payload becomes a base64 string.
func (p Payload) MarshalJSON() ([]byte, error) {
	if p.binary {
		return json.Marshal(p.raw)
	}
	if len(p.raw) == 0 {
		return []byte("null"), nil
	}
	return p.raw, nil
}

// String returns the payload for logs: JSON text, or a byte count for binary.
func (p Payload) String() string {
	if p.binary {
		return fmt.Sprintf("<binary %d bytes>", len(p.raw))
	}
	return string(p.raw)
}

// Binary is an outgoing binary payload. Passing a Binary to Push, Broadcast
// or a Reply sends a V2 binary frame instead of JSON.
type Binary []byte

// Reply is what a handler answers to a client push. The zero value, NoReply,
// sends nothing (the client push then times out, as with Phoenix :noreply).
type Reply struct {
	// Status is the reply status ("ok", "error" or any other word). Empty means no reply.
	Status string
	// Response is encoded as the "response" field; nil encodes as {}. A Binary
	// response produces a binary reply frame.
	Response any
}

// NoReply is the zero Reply: nothing is sent.
var NoReply = Reply{}

// OK returns a reply with status "ok".
func OK(response any) Reply { return Reply{Status: "ok", Response: response} }

// ErrorReply returns a reply with status "error".
func ErrorReply(response any) Reply { return Reply{Status: "error", Response: response} }

// IsZero reports whether r is NoReply.
func (r Reply) IsZero() bool { return r.Status == "" }

// Errors a handler returns to steer the channel, and errors the package
// returns to callers.
var (
	// ErrStop stops the channel normally: the client gets phx_close and does
	// not rejoin. Wrap it to give a reason (fmt.Errorf("done: %w", ErrStop)).
	ErrStop = errors.New("channel: stop")
	// ErrUnhandled tells the runtime that a handler does not know an event.
	// Nothing is replied; the LogUnhandled hook logs it as a warning.
	ErrUnhandled = errors.New("channel: unhandled event")
	// ErrBinaryPayload is returned when decoding a binary payload as JSON.
	ErrBinaryPayload = errors.New("channel: payload is binary")
	// ErrClosed is returned when pushing to a channel or connection that has
	// terminated.
	ErrClosed = errors.New("channel: closed")
	// ErrServerClosed is returned after Shutdown or Close.
	ErrServerClosed = errors.New("channel: server closed")
	// ErrLeft is the terminate reason of a channel the client left.
	ErrLeft = errors.New("channel: left")
	// ErrDuplicateJoin is the terminate reason of a channel replaced by a new
	// join of the same topic on the same connection.
	ErrDuplicateJoin = errors.New("channel: duplicate join")
	// ErrConnClosed is the terminate reason of channels whose connection closed.
	ErrConnClosed = errors.New("channel: connection closed")
	// ErrPanic is matched by every *PanicError (see there). It is
	// fallback.ErrPanic: one sentinel for a recovered panic in any pyre
	// package.
	ErrPanic = fallback.ErrPanic
	// ErrSlowConsumer is the close reason of connections whose outbound queue
	// overflowed.
	ErrSlowConsumer = errors.New("channel: slow consumer")
)

// PanicError is the terminate reason of a channel whose handler panicked
// (Op "channel: handler"; its Error is "channel: handler panicked: <value>")
// and the error a panicking Connect callback is turned into. It is
// fallback.PanicError, so a single errors.As target matches a panic recovered
// by either package. errors.Is(err, ErrPanic) is true for it, and so is
// errors.Is(err, v) when the panic value v is an error; a handler that
// panics with ErrStop or ErrUnhandled still crashes its channel.
type PanicError = fallback.PanicError

// opHandler is the Op of the PanicErrors of channel handlers.
const opHandler = "channel: handler"

// JoinError refuses a join with a response sent to the client as
// {"status":"error","response":Response}, like Phoenix's {:error, reply}.
type JoinError struct{ Response any }

// Error implements error.
func (e *JoinError) Error() string { return fmt.Sprintf("channel: join refused: %v", e.Response) }

// Refuse returns a *JoinError: Join returns it to refuse the join with the
// given response, e.g. Refuse(map[string]string{"reason": "unauthorized"}).
func Refuse(response any) error { return &JoinError{Response: response} }

// HTTPError refuses a connection in the Connect callback with a status code
// other than the default 403.
type HTTPError struct {
	Status int    // HTTP status code, e.g. 429
	Body   string // optional response body
}

// Error implements error.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("channel: connect refused with HTTP %d", e.Status)
}
