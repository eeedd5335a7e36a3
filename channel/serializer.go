package channel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Serializer names a wire format, chosen per connection from the vsn param.
type Serializer uint8

const (
	// V1 is the legacy JSON object format (vsn absent or ~> 1.0.0).
	V1 Serializer = 1
	// V2 is the JSON array format with binary frames (vsn ~> 2.0.0), what
	// phoenix.js speaks.
	V2 Serializer = 2
)

// String returns "v1" or "v2".
func (s Serializer) String() string {
	switch s {
	case V1:
		return "v1"
	case V2:
		return "v2"
	}
	return fmt.Sprintf("Serializer(%d)", uint8(s))
}

// ErrMalformed wraps every decoding error of an inbound frame. The
// connection that sent it is closed with 1011 (1007 for invalid UTF-8).
var ErrMalformed = errors.New("channel: malformed frame")

// errInvalidUTF8 is the decoding error of a text message that is not valid
// UTF-8 (RFC 6455 8.1); the WebSocket transport closes with 1007 for it.
var errInvalidUTF8 = fmt.Errorf("%w: text message is not valid UTF-8", ErrMalformed)

// frameKind distinguishes the three outbound frame layouts.
type frameKind uint8

const (
	kindPush      frameKind = iota // [J, R, T, E, P]; binary kind 0
	kindReply                      // [J, R, T, "phx_reply", {"response":P,"status":S}]; binary kind 1
	kindBroadcast                  // [null, null, T, E, P]; binary kind 2
)

// frame is one outbound message before serialization. payload holds encoded
// JSON, or raw bytes when binary.
type frame struct {
	kind    frameKind
	binary  bool
	joinRef string
	ref     string
	topic   string
	event   string
	status  string
	payload []byte
}

var emptyObject = []byte("{}")

// encode appends the wire form of f to dst. It reports whether the result
// is a binary WebSocket message.
func (s Serializer) encode(dst []byte, f *frame) ([]byte, bool, error) {
	payload := f.payload
	if !f.binary && len(payload) == 0 {
		payload = emptyObject
	}
	if f.binary {
		if s != V2 {
			return dst, false, fmt.Errorf("channel: binary payloads need the V2 serializer")
		}
		b, err := appendBinary(dst, f)
		return b, true, err
	}
	if s == V1 {
		return appendV1(dst, f, payload), false, nil
	}
	return appendV2(dst, f, payload), false, nil
}

func appendV2(dst []byte, f *frame, payload []byte) []byte {
	dst = append(dst, '[')
	switch f.kind {
	case kindBroadcast:
		dst = append(dst, "null,null,"...)
	default:
		dst = appendRef(dst, f.joinRef)
		dst = append(dst, ',')
		dst = appendRef(dst, f.ref)
		dst = append(dst, ',')
	}
	dst = appendString(dst, f.topic)
	dst = append(dst, ',')
	if f.kind == kindReply {
		dst = append(dst, `"phx_reply",{"response":`...)
		dst = append(dst, payload...)
		dst = append(dst, `,"status":`...)
		dst = appendString(dst, f.status)
		dst = append(dst, "}]"...)
		return dst
	}
	dst = appendString(dst, f.event)
	dst = append(dst, ',')
	dst = append(dst, payload...)
	return append(dst, ']')
}

// appendV1 writes {"event":E,"payload":P,"ref":R,"topic":T}: keys sorted, as
// Phoenix emits them, and never a join_ref.
func appendV1(dst []byte, f *frame, payload []byte) []byte {
	dst = append(dst, `{"event":`...)
	if f.kind == kindReply {
		dst = append(dst, `"phx_reply","payload":{"response":`...)
		dst = append(dst, payload...)
		dst = append(dst, `,"status":`...)
		dst = appendString(dst, f.status)
		dst = append(dst, '}')
	} else {
		dst = appendString(dst, f.event)
		dst = append(dst, `,"payload":`...)
		dst = append(dst, payload...)
	}
	dst = append(dst, `,"ref":`...)
	if f.kind == kindBroadcast {
		dst = append(dst, "null"...)
	} else {
		dst = appendRef(dst, f.ref)
	}
	dst = append(dst, `,"topic":`...)
	dst = appendString(dst, f.topic)
	return append(dst, '}')
}

func appendBinary(dst []byte, f *frame) ([]byte, error) {
	var fields [4]string
	var n int
	var kind byte
	switch f.kind {
	case kindPush:
		kind, fields, n = 0, [4]string{f.joinRef, f.topic, f.event}, 3
	case kindReply:
		kind, fields, n = 1, [4]string{f.joinRef, f.ref, f.topic, f.status}, 4
	default:
		kind, fields, n = 2, [4]string{f.topic, f.event}, 2
	}
	dst = append(dst, kind)
	for _, s := range fields[:n] {
		if len(s) > 255 {
			return dst, fmt.Errorf("channel: binary frame field %q longer than 255 bytes", s[:32])
		}
		dst = append(dst, byte(len(s)))
	}
	for _, s := range fields[:n] {
		dst = append(dst, s...)
	}
	return append(dst, f.payload...), nil
}

func appendRef(dst []byte, ref string) []byte {
	if ref == "" {
		return append(dst, "null"...)
	}
	return appendString(dst, ref)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// decode parses one inbound WebSocket message. A text message must be
// valid UTF-8 (RFC 6455 8.1), checked once for the whole message; binary
// messages are not checked. The Message keeps nothing of data, which the
// transport reuses once its Peer.Deliver returns.
func (s Serializer) decode(binary bool, data []byte) (Message, error) {
	if !binary && !utf8.Valid(data) {
		return Message{}, errInvalidUTF8
	}
	if binary {
		if s != V2 {
			return Message{}, fmt.Errorf("%w: binary frame on a V1 connection", ErrMalformed)
		}
		return decodeBinary(data)
	}
	if s == V1 {
		return decodeV1(data)
	}
	return decodeV2(data)
}

// decodeV2 parses [join_ref, ref, topic, event, payload]. Like Phoenix it
// ignores elements past the fifth.
func decodeV2(data []byte) (Message, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(data, &arr); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(arr) < 5 {
		return Message{}, fmt.Errorf("%w: array of %d elements, want 5", ErrMalformed, len(arr))
	}
	var m Message
	var err error
	if m.JoinRef, err = refField(arr[0], "join_ref"); err != nil {
		return Message{}, err
	}
	if m.Ref, err = refField(arr[1], "ref"); err != nil {
		return Message{}, err
	}
	if m.Topic, err = stringField(arr[2], "topic"); err != nil {
		return Message{}, err
	}
	if m.Event, err = stringField(arr[3], "event"); err != nil {
		return Message{}, err
	}
	m.Payload = Payload{raw: arr[4]}
	return m, nil
}

// decodeV1 parses {"topic","event","payload","ref"[,"join_ref"]}.
func decodeV1(data []byte) (Message, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for _, k := range [...]string{"topic", "event", "payload", "ref"} {
		if _, ok := obj[k]; !ok {
			return Message{}, fmt.Errorf("%w: missing key %q", ErrMalformed, k)
		}
	}
	var m Message
	var err error
	if m.Topic, err = stringField(obj["topic"], "topic"); err != nil {
		return Message{}, err
	}
	if m.Event, err = stringField(obj["event"], "event"); err != nil {
		return Message{}, err
	}
	if m.Ref, err = refField(obj["ref"], "ref"); err != nil {
		return Message{}, err
	}
	if jr, ok := obj["join_ref"]; ok {
		if m.JoinRef, err = refField(jr, "join_ref"); err != nil {
			return Message{}, err
		}
	}
	m.Payload = Payload{raw: obj["payload"]}
	return m, nil
}

// decodeBinary parses a client push of kind 0:
// 0, len(J), len(R), len(T), len(E), J, R, T, E, data.
func decodeBinary(data []byte) (Message, error) {
	if len(data) < 5 {
		return Message{}, fmt.Errorf("%w: binary frame of %d bytes", ErrMalformed, len(data))
	}
	if data[0] != 0 {
		return Message{}, fmt.Errorf("%w: binary frame of kind %d from a client", ErrMalformed, data[0])
	}
	off := 5
	var fields [4]string
	for i := range fields {
		n := int(data[1+i])
		if off+n > len(data) {
			return Message{}, fmt.Errorf("%w: binary frame truncated", ErrMalformed)
		}
		fields[i] = string(data[off : off+n])
		off += n
	}
	return Message{
		JoinRef: fields[0],
		Ref:     fields[1],
		Topic:   fields[2],
		Event:   fields[3],
		// A copy: the transport reuses data once decode returns.
		Payload: Payload{raw: append([]byte(nil), data[off:]...), binary: true},
	}, nil
}

// refField decodes a string-or-null ref. Phoenix treats refs as opaque
// strings; a JSON number is accepted and kept as its text, anything else is
// malformed.
func refField(raw json.RawMessage, name string) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", fmt.Errorf("%w: empty %s", ErrMalformed, name)
	}
	switch raw[0] {
	case 'n':
		if string(raw) == "null" {
			return "", nil
		}
	case '"':
		return stringField(raw, name)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(raw), nil
	}
	return "", fmt.Errorf("%w: %s must be a string or null", ErrMalformed, name)
}

func stringField(raw json.RawMessage, name string) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' {
		return "", fmt.Errorf("%w: %s must be a string", ErrMalformed, name)
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrMalformed, name, err)
	}
	return s, nil
}

// encodePayload turns a handler's payload value into wire bytes.
// nil becomes {}; json.RawMessage and Payload are used as they are; Binary
// is sent as binary; everything else goes through encoding/json.
func encodePayload(v any) ([]byte, bool, error) {
	switch p := v.(type) {
	case nil:
		return emptyObject, false, nil
	case Binary:
		return []byte(p), true, nil
	case jsonRaw:
		return []byte(p), false, nil
	case json.RawMessage:
		if len(p) == 0 {
			return emptyObject, false, nil
		}
		return p, false, nil
	case Payload:
		if len(p.raw) == 0 && !p.binary {
			return emptyObject, false, nil
		}
		return p.raw, p.binary, nil
	case *Payload:
		return encodePayload(*p)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("channel: encode payload: %w", err)
	}
	return b, false, nil
}
