package wstransport

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// closeAnswer answers a client's close frame as Bandit does (RFC 6455 7.4).
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
