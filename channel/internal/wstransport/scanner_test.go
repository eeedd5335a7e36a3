package wstransport

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
			if end < len(stream) {
				assert.Zero(t, s.answer.Load(), "chunk %d: close answered too early at %d", chunk, i)
			}
			s.feed(stream[i:end])
		}
		assert.EqualValues(t, closeNormal, s.answer.Load(), "chunk %d", chunk)
	}
	var s frameScanner
	s.feed(text)
	s.feed(ping)
	assert.Zero(t, s.answer.Load())
}

// The scanner answers the client's first close frame only; a second one
// (read ahead) does not change the answer.
func TestFrameScannerAnswersFirstCloseOnly(t *testing.T) {
	var s frameScanner
	s.feed([]byte{0x88, 0x81, 0, 0, 0, 0, 0x03}) // 1-byte payload
	assert.EqualValues(t, closeProtocolError, s.answer.Load())
	s.feed([]byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8})
	assert.EqualValues(t, closeProtocolError, s.answer.Load())
}

func TestCloseAnswerTable(t *testing.T) {
	for _, tc := range []struct {
		payload []byte
		want    int32
	}{
		{nil, closeProtocolError},
		{[]byte{0x03}, closeProtocolError},
		{[]byte{0x03, 0xE7}, closeProtocolError}, // 999
		{[]byte{0x03, 0xE8}, closeNormal},        // 1000
		{[]byte{0x03, 0xEB}, closeNormal},        // 1003
		{[]byte{0x03, 0xEC}, closeProtocolError}, // 1004
		{[]byte{0x03, 0xED}, closeProtocolError}, // 1005
		{[]byte{0x03, 0xEE}, closeProtocolError}, // 1006
		{[]byte{0x03, 0xEF}, closeNormal},        // 1007
		{[]byte{0x03, 0xF3}, closeNormal},        // 1011
		{[]byte{0x03, 0xF4}, closeProtocolError}, // 1012
		{[]byte{0x03, 0xF7}, closeProtocolError}, // 1015
		{[]byte{0x0B, 0xB7}, closeProtocolError}, // 2999
		{[]byte{0x0B, 0xB8}, closeNormal},        // 3000
		{[]byte{0x13, 0x87}, closeNormal},        // 4999
		{[]byte{0x13, 0x88}, closeProtocolError}, // 5000
		{[]byte{0xFF, 0xFF}, closeProtocolError}, // 65535
		{[]byte{0x03, 0xE8, 'o', 'k', 0xC3, 0xA9}, closeNormal},
		{[]byte{0x03, 0xE8, 'o', 0xFF}, closeInvalidPayload},
		{[]byte{0x13, 0x88, 0xFF}, closeProtocolError}, // the code is checked first
	} {
		assert.Equal(t, tc.want, closeAnswer(tc.payload), "%x", tc.payload)
	}
}
