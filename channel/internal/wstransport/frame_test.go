package wstransport

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWSHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		bin  bool
		want []byte
	}{
		{0, false, []byte{0x81, 0}},
		{125, false, []byte{0x81, 125}},
		{126, true, []byte{0x82, 126, 0, 126}},
		{65535, false, []byte{0x81, 126, 0xff, 0xff}},
		{65536, false, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		h := make([]byte, headerLen(tc.n))
		putHeader(h, tc.bin, tc.n)
		assert.Equal(t, tc.want, h, "n=%d", tc.n)
	}
	buf := append(make([]byte, MaxHeader), `[null,null,"t","e",{}]`...)
	assert.Equal(t, append([]byte{0x81, 22}, `[null,null,"t","e",{}]`...), FinishFrame(buf, false))
}
