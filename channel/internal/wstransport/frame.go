package wstransport

// WebSocket framing of outbound messages: a server frame is unmasked, so
// the bytes of a broadcast's frame (header and payload) are the same for
// every subscriber of a serializer and are built once per broadcast
// (package channel caches them on the shared frame), and a connection's
// writer only copies queued frames into one socket write. Control frames
// (pong, close) are written by the reader and the closer (sock.writeControl)
// in one Write each, under the same lock as queued frames, so frames never
// interleave.

// MaxHeader is the longest server frame header: 2 bytes, plus 8 for a
// 64-bit length (no masking key). FinishFrame expects this much room
// before the payload.
const MaxHeader = 10

// headerLen returns the header length for a payload of n bytes.
func headerLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// putHeader writes a FIN frame header for a text or binary payload of n
// bytes into h, which is exactly headerLen(n) long.
func putHeader(h []byte, binary bool, n int) {
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

// FinishFrame turns buf, MaxHeader bytes of room followed by a message
// payload, into one complete unmasked FIN frame (text, or binary) and
// returns it: a suffix of buf, the header written just before the payload.
func FinishFrame(buf []byte, binary bool) []byte {
	n := len(buf) - MaxHeader
	start := MaxHeader - headerLen(n)
	putHeader(buf[start:MaxHeader], binary, n)
	return buf[start:]
}
