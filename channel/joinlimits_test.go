package channel

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// countingRouter routes every topic to a room and counts the channels its
// factory made.
func countingRouter(made *atomic.Int32) *Router {
	r := NewRouter()
	r.Handle("*", func() Channel { made.Add(1); return &testRoom{} })
	return r
}

// Over-long topics and oversized join params are refused with a join
// reply before the router sees them; nothing is kept (no channel, no
// subscription), and the connection goes on. Messages that are not joins
// on an over-long topic find no channel.
func TestJoinBoundsRefuseLongTopicsAndLargeParams(t *testing.T) {
	var made atomic.Int32
	e := newTestEndpoint(t, &Options{Router: countingRouter(&made), MaxTopicLength: 64, MaxJoinParamsBytes: 100})
	c := e.dial(t, "vsn=2.0.0", nil)

	long := "room:" + strings.Repeat("x", 60) // 65 bytes
	for i := range 3 {
		ref := fmt.Sprint(i + 1)
		c.send(fmt.Sprintf(`[%q,%q,%q,"phx_join",{}]`, ref, ref, long))
		c.expectNext(fmt.Sprintf(`[%q,%q,%q,"phx_reply",{"response":{"reason":"topic too long"},"status":"error"}]`, ref, ref, long))
	}
	c.send(fmt.Sprintf(`["1","4",%q,"event",{}]`, long))
	c.expectNext(fmt.Sprintf(`[null,"4",%q,"phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`, long))
	c.send(fmt.Sprintf(`["1","5",%q,"phx_leave",{}]`, long))
	c.expectNext(fmt.Sprintf(`["1","5",%q,"phx_reply",{"response":{},"status":"ok"}]`, long))

	params := `{"p":"` + strings.Repeat("y", 100) + `"}`
	c.send(`["6","6","room:a","phx_join",` + params + `]`)
	c.expectNext(`["6","6","room:a","phx_reply",{"response":{"reason":"join params too large"},"status":"error"}]`)

	assert.Zero(t, made.Load(), "the router made a channel for a refused join")
	assert.Zero(t, e.srv.Subscribers(long))
	assert.Zero(t, e.srv.Subscribers("room:a"))

	// At the bounds a join succeeds.
	exact := "room:" + strings.Repeat("x", 59)                // 64 bytes
	c.join("7", exact, `{"p":"`+strings.Repeat("y", 92)+`"}`) // 100 bytes
	assert.Equal(t, int32(1), made.Load())
	assert.Equal(t, 1, e.srv.Subscribers(exact))
}

// A refused rejoin leaves the joined channel of the topic as it was.
func TestRefusedRejoinKeepsTheChannel(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), MaxJoinParamsBytes: 10})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	c.send(`["2","2","room:a","phx_join",{"too":"large"}]`)
	c.expectNext(`["2","2","room:a","phx_reply",{"response":{"reason":"join params too large"},"status":"error"}]`)
	assert.Equal(t, 1, e.srv.Subscribers("room:a"))
}

// The defaults: 1024-byte topics and 64 KiB join params.
func TestJoinBoundsDefaults(t *testing.T) {
	o := (&Options{}).withDefaults()
	assert.Equal(t, 1024, o.MaxTopicLength)
	assert.Equal(t, 64<<10, o.MaxJoinParamsBytes)
}
