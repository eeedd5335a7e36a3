package wstransport

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readers counts the goroutines reading a connection (readPolled, or
// readLoop and its workers).
func readers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("wstransport.(*Conn).read"))
}

// settled waits until no goroutine reads a connection and returns the
// number of goroutines then. (It polls on the test's goroutine: testify's
// Eventually runs its condition on goroutines of its own.)
func settled(t *testing.T) int {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); readers() > 0; time.Sleep(time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "a connection is still being read")
	}
	return runtime.NumGoroutine()
}

// goroutinesDownTo waits (boundedly) for the number of goroutines to fall
// to want and returns the last count: readers that handled the last
// messages are ending.
func goroutinesDownTo(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(testTimeout); n > want && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(time.Millisecond)
	}
	return n
}

// Idle connections hold no goroutine: the poller watches their sockets,
// and a reader runs only while a message is read and handled. Messages,
// pings and closes still work after the connections went idle, from
// either side.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	if !pollReads {
		t.Skip("the poller is Linux-only")
	}
	ts := newTestServer(t, Config{})
	first, p := ts.dial(t, "")
	first.write(frame(0x81, []byte("start"))) // starts the poller and the idle sweeper
	p.wait(t)
	base := settled(t)

	const n = 40
	clients := make([]*rawClient, n)
	peers := make([]*testPeer, n)
	for i := range n {
		clients[i], peers[i] = ts.dial(t, "")
		clients[i].write(frame(0x81, []byte("join")))
		peers[i].wait(t)
	}
	got := goroutinesDownTo(base)
	require.LessOrEqual(t, got, base, "%d idle connections hold goroutines", n)

	// After idling, a message and a ping each still get through (the pong
	// comes back), many times over.
	for round := range 3 {
		for i, c := range clients {
			c.write(frame(0x89, []byte("p")), frame(0x81, []byte("beat")))
			first, payload := readFrame(t, c.br)
			assert.Equal(t, byte(0x8A), first, "conn %d round %d", i, round)
			assert.Equal(t, "p", string(payload))
			peers[i].wait(t)
		}
		assert.LessOrEqual(t, goroutinesDownTo(base), base, "readers end")
	}

	// The clients close half of them (the reader sees the end of input),
	// the server drops the rest (their sockets' close takes them out of
	// the epoll set; the closer starts the reader that ends them).
	for i := range n / 2 {
		require.NoError(t, clients[i].nc.Close())
	}
	for i := n / 2; i < n; i++ {
		peers[i].c.CloseNow()
	}
	for _, p := range peers {
		p.waitFinished(t)
	}
}

// A closed server's poller hands the connections it watched to goroutines
// of their own, which go on reading them.
func TestCloseHandsPolledConnectionsToGoroutines(t *testing.T) {
	ts := newTestServer(t, Config{})
	c, p := ts.dial(t, "")
	c.write(frame(0x81, []byte("one")))
	p.wait(t)
	settled(t)
	ts.srv.Close()
	c.write(frame(0x81, []byte("two")))
	p.wait(t)
	p.mu.Lock()
	assert.Equal(t, []string{"one", "two"}, p.msgs)
	p.mu.Unlock()
	p.c.CloseNow()
	p.waitFinished(t)
}

// The portable path (no poller: not Linux, or a connection that is not a
// plain socket) reads each connection on a goroutine of its own, and
// behaves the same.
func TestPortableReadsKeepAGoroutinePerConnection(t *testing.T) {
	ts := newTestServer(t, Config{portable: true})
	base := settled(t)
	const n = 3
	clients := make([]*rawClient, n)
	peers := make([]*testPeer, n)
	for i := range n {
		clients[i], peers[i] = ts.dial(t, "")
		clients[i].write(frame(0x89, []byte("p")), frame(0x81, []byte("m")))
		first, _ := readFrame(t, clients[i].br)
		assert.Equal(t, byte(0x8A), first)
		peers[i].wait(t)
	}
	assert.GreaterOrEqual(t, runtime.NumGoroutine(), base+n)
	require.NoError(t, clients[0].nc.Close())
	peers[0].waitFinished(t)
	for _, p := range peers[1:] {
		p.c.CloseNow()
		p.waitFinished(t)
	}
}
