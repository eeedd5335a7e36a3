package channel

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A client's close frame is answered as Bandit answers it (see
// closeAnswer): 1000 for a valid code, 1002 for a missing, malformed or
// invalid code, 1007 for a reason that is not UTF-8.
func TestClientCloseFramesAnsweredPerRFC6455(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	for _, tc := range []struct {
		name    string
		payload []byte
		want    int
	}{
		{"no code", nil, CloseProtocolError},
		{"1-byte body", []byte{0x03}, CloseProtocolError},
		{"999", closeBody(999, ""), CloseProtocolError},
		{"1000", closeBody(1000, "bye"), CloseNormal},
		{"1003", closeBody(1003, ""), CloseNormal},
		{"1004", closeBody(1004, ""), CloseProtocolError},
		{"1005", closeBody(1005, ""), CloseProtocolError},
		{"1006", closeBody(1006, ""), CloseProtocolError},
		{"1011", closeBody(1011, ""), CloseNormal},
		{"1012", closeBody(1012, ""), CloseProtocolError},
		{"1015", closeBody(1015, ""), CloseProtocolError},
		{"2999", closeBody(2999, ""), CloseProtocolError},
		{"3000", closeBody(3000, ""), CloseNormal},
		{"4999", closeBody(4999, "é"), CloseNormal},
		{"5000", closeBody(5000, ""), CloseProtocolError},
		{"invalid UTF-8 reason", closeBody(1000, "a\xffb"), CloseInvalidPayload},
		{"truncated UTF-8 reason", closeBody(4000, "\xc3"), CloseInvalidPayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dialRaw(t, "vsn=2.0.0", "")
			c.sendText(`[null,"1","phoenix","heartbeat",{}]`)
			assert.Equal(t, `[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`, c.readText())
			c.writeFrame(0x88, tc.payload)
			assert.Equal(t, tc.want, c.closeCode(), fmt.Sprintf("payload %x", tc.payload))
		})
	}
}
