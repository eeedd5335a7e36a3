package channel

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFrameScannerFindsCloseAcrossSplits(t *testing.T) {
	text := append([]byte{0x81, 0x80 | 126, 0x01, 0x00, 1, 2, 3, 4}, make([]byte, 256)...) // masked 256-byte text
	ping := []byte{0x89, 0x80, 9, 9, 9, 9}                                                 // masked empty ping
	closeFrame := []byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2}                       // masked close 1000
	stream := append(append(append([]byte{}, text...), ping...), closeFrame...)
	for _, chunk := range []int{1, 3, 7, len(stream)} {
		var s frameScanner
		for i := 0; i < len(stream); i += chunk {
			end := min(i+chunk, len(stream))
			if i < len(text)+len(ping) {
				assert.False(t, s.peerClosed.Load(), "chunk %d: close seen too early at %d", chunk, i)
			}
			s.feed(stream[i:end])
		}
		assert.True(t, s.peerClosed.Load(), "chunk %d", chunk)
	}
	var s frameScanner
	s.feed(text)
	s.feed(ping)
	assert.False(t, s.peerClosed.Load())
}
