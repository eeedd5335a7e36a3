package channel

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A text message that is not valid UTF-8 closes the connection with 1007
// (RFC 6455 8.1, as Bandit does) before anything handles it: the join
// never reaches the router, and the connection counts as malformed. Other
// connections go on.
func TestInvalidUTF8TextCloses1007(t *testing.T) {
	joined := make(chan *Socket, 1)
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), OnJoin: func(s *Socket) { joined <- s }})
	other := e.dial(t, "vsn=2.0.0", nil)
	for _, tc := range []struct{ vsn, frame string }{
		{"vsn=2.0.0", "[\"1\",\"1\",\"room:\xff\",\"phx_join\",{}]"},
		{"vsn=2.0.0", "[\"1\",\"1\",\"room:a\",\"phx_join\",{\"k\":\"\xc3\"}]"},
		{"vsn=1.0.0", "{\"topic\":\"room:\xed\xa0\x80\",\"event\":\"phx_join\",\"payload\":{},\"ref\":\"1\"}"},
	} {
		c := e.dialRaw(t, tc.vsn, "")
		c.sendText(tc.frame)
		assert.Equal(t, CloseInvalidPayload, c.closeCode(), "%q", tc.frame)
	}
	assert.Empty(t, joined, "a join with invalid UTF-8 reached the channel")
	assert.Equal(t, uint64(3), e.srv.Stats().Malformed)
	other.send(`[null,"1","phoenix","heartbeat",{}]`)
	other.expectNext(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

// Binary frames are opaque: their bytes are not checked for UTF-8.
func TestBinaryFramesAreNotCheckedForUTF8(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	// A binary push of event "echo_bin"... any event: an unknown one is
	// answered by the room; what matters is that the connection stays.
	c.sendBinary(append([]byte{0, 1, 1, 6, 4, '1', '2', 'r', 'o', 'o', 'm', ':', 'a', 'n', 'o', 'p', 'e'}, 0xff, 0xfe))
	c.send(`[null,"3","phoenix","heartbeat",{}]`)
	c.expect(`[null,"3","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	assert.Zero(t, e.srv.Stats().Malformed)
}

// A LongPoll line is a text frame: invalid UTF-8 in it closes the session
// as a malformed line does (the POST is answered 400), through the same
// decoding path.
func TestLongPollInvalidUTF8LineClosesSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		term := make(chan error, 1)
		srv := newLPServer(t, &Options{Router: roomRouter(term)})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)
		a := c.post("[\"1\",\"2\",\"room:a\",\"echo\",{\"x\":\"\xff\"}]")
		assert.Equal(t, `{"status":400}`, a.Body)
		require.ErrorIs(t, <-term, ErrConnClosed)
		assert.Equal(t, uint64(1), srv.Stats().Malformed)
	})
}
