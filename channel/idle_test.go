package channel

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// settledGoroutines waits, boundedly, until no goroutine reads a WebSocket
// connection or runs a channel's mailbox, and returns the number of
// goroutines then.
func settledGoroutines(t *testing.T) int {
	t.Helper()
	busy := func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return bytes.Contains(buf, []byte("wstransport.(*Conn).read")) || bytes.Contains(buf, []byte("channel.(*proc).run"))
	}
	for deadline := time.Now().Add(rawTimeout); busy(); time.Sleep(time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "connections still busy")
	}
	return runtime.NumGoroutine()
}

// goroutinesDownTo waits, boundedly, for the number of goroutines to fall
// to want (readers and mailbox goroutines that handled the last messages
// are ending) and returns the last count. It polls on the test's own
// goroutine: testify's Eventually would add goroutines of its own.
func goroutinesDownTo(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(rawTimeout); n > want && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(time.Millisecond)
	}
	return n
}

// Joined WebSocket connections that idle hold no goroutine (Linux: the
// transport's poller watches them), and heartbeats, pushes and broadcasts
// still flow afterwards, each leaving no goroutine behind.
func TestIdleJoinedConnectionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("idle connections keep a goroutine each outside Linux")
	}
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	join := func(c *rawClient) {
		c.sendText(`["1","1","room:a","phx_join",{}]`)
		require.Equal(t, `["1","1","room:a","phx_reply",{"response":{},"status":"ok"}]`, c.readText())
	}
	first := e.dialRaw(t, "vsn=2.0.0", "")
	join(first) // starts the poller and the idle sweeper
	base := settledGoroutines(t)

	const n = 30
	clients := make([]*rawClient, n)
	for i := range clients {
		clients[i] = e.dialRaw(t, "vsn=2.0.0", "")
		join(clients[i])
	}
	assert.LessOrEqual(t, goroutinesDownTo(base), base, "%d idle joined connections hold goroutines", n)

	for _, c := range clients {
		c.sendText(`[null,"2","phoenix","heartbeat",{}]`)
		assert.Equal(t, `[null,"2","phoenix","phx_reply",{"response":{},"status":"ok"}]`, c.readText())
		c.sendText(`["1","3","room:a","echo",{"n":1}]`)
		assert.Equal(t, `["1","3","room:a","phx_reply",{"response":{"n":1},"status":"ok"}]`, c.readText())
	}
	require.NoError(t, e.srv.Broadcast(context.Background(), "room:a", "news", map[string]int{"n": 2}))
	for _, c := range append(clients, first) {
		assert.Equal(t, `[null,null,"room:a","news",{"n":2}]`, c.readText())
	}
	assert.LessOrEqual(t, goroutinesDownTo(base), base, "goroutines left behind by heartbeats and pushes")
}
