// Package wsframe builds and reads raw WebSocket frames (RFC 6455 §5) for
// tests that speak to a server below any client library: frames a
// conforming client refuses to send (invalid close codes, invalid UTF-8,
// hand-made compressed payloads), or cheap clients for churn tests. It is
// test support only; nothing in pyre's servers uses it.
package wsframe

import (
	"crypto/rand"
	"encoding/binary"
	"io"
)

// Client returns one masked client frame (clients must mask); first is the
// first header byte: FIN, RSV bits and opcode, e.g. 0x81 for a final text
// frame, 0xC1 for a compressed one, 0x88 for a close.
func Client(first byte, payload []byte) []byte {
	h := []byte{first, 0x80}
	switch n := len(payload); {
	case n < 126:
		h[1] |= byte(n)
	case n <= 0xFFFF:
		h[1] |= 126
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h[1] |= 127
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	h = append(h, key[:]...)
	b := append(h, payload...)
	for i := range payload {
		b[len(h)+i] ^= key[i&3]
	}
	return b
}

// Read reads one unmasked server frame and returns its first header byte
// and its payload.
func Read(r io.Reader) (first byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return h[0], payload, err
}
