package channel

// WebSocket framing of outbound messages, done by pyre rather than by
// coder/websocket when compression is off: a server frame is unmasked, so
// the bytes of a broadcast's frame (header and payload) are the same for
// every V2 subscriber and are built once per broadcast, and a connection's
// writer only copies queued frames into one socket write. coder/websocket
// still writes its control frames (pong, close) itself; each of those goes
// to the socket in one Write call (they are at most 127 bytes and its write
// buffer is larger), and queued frames are appended in one call too, so
// frames never interleave.

// maxWSHeader is the longest server frame header: 2 bytes, plus 8 for a
// 64-bit length (no masking key).
const maxWSHeader = 10

// wsHeaderLen returns the header length for a payload of n bytes.
func wsHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// putWSHeader writes a FIN frame header for a text or binary payload of n
// bytes into h, which is exactly wsHeaderLen(n) long.
func putWSHeader(h []byte, binary bool, n int) {
	h[0] = 0x81 // FIN + text
	if binary {
		h[0] = 0x82
	}
	switch len(h) {
	case 2:
		h[1] = byte(n)
	case 4:
		h[1] = 126
		h[2], h[3] = byte(n>>8), byte(n)
	default:
		h[1] = 127
		for i := 0; i < 8; i++ {
			h[9-i] = byte(n >> (8 * i))
		}
	}
}

// encodeWS returns f as one complete WebSocket frame for serializer s.
func (s Serializer) encodeWS(f *frame) ([]byte, bool, error) {
	buf := make([]byte, maxWSHeader, maxWSHeader+len(f.payload)+len(f.topic)+len(f.event)+len(f.joinRef)+len(f.ref)+48)
	buf, bin, err := s.encode(buf, f)
	if err != nil {
		return nil, false, err
	}
	n := len(buf) - maxWSHeader
	start := maxWSHeader - wsHeaderLen(n)
	putWSHeader(buf[start:maxWSHeader], bin, n)
	return buf[start:], bin, nil
}

// wireWS returns the frame as a complete WebSocket frame, built once per
// serializer (and compression) for shared broadcast frames. With deflate,
// payloads of at least deflateThreshold bytes are compressed.
func (f *Frame) wireWS(s Serializer, deflate bool) ([]byte, error) {
	build := func() ([]byte, error) {
		b, bin, err := s.encodeWS(&f.f)
		if err != nil || !deflate || len(b) < deflateThreshold {
			return b, err
		}
		return deflateFrame(b, bin)
	}
	if f.cache == nil {
		return build()
	}
	i := 0
	if s == V2 {
		i = 1
	}
	if deflate {
		i += 2
	}
	c := f.cache
	c.wsOnce[i].Do(func() { c.ws[i], c.wsErr[i] = build() })
	return c.ws[i], c.wsErr[i]
}
