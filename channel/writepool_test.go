package channel

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bothWritePaths runs test with the write pool's io_uring sends (where the
// kernel has io_uring) and with its write(2) path (Options.DisableIOUring).
func bothWritePaths(t *testing.T, test func(t *testing.T, noRing bool)) {
	t.Run("io_uring", func(t *testing.T) { test(t, false) })
	t.Run("write", func(t *testing.T) { test(t, true) })
}

// joinSilent dials a client that reads nothing by itself (dialSilent),
// joins room:a and reads the join reply.
func (e *testEndpoint) joinSilent(t *testing.T) *websocket.Conn {
	t.Helper()
	c := e.dialSilent(t, "vsn=2.0.0")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`["1","1","room:a","phx_join",{}]`)))
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	require.Contains(t, string(b), `"phx_reply"`)
	return c
}

// A client that stops reading makes the pool's non-blocking write come up
// short; the rest goes out from a goroutine of the connection's own, ahead
// of everything else, including the pong the reader writes meanwhile.
// The client must then read every frame whole and in order.
func TestBlockedWritesKeepFramesWholeAndInOrder(t *testing.T) {
	bothWritePaths(t, testBlockedWritesKeepFramesWholeAndInOrder)
}

func testBlockedWritesKeepFramesWholeAndInOrder(t *testing.T, noRing bool) {
	e := newTestEndpoint(t, &Options{DisableIOUring: noRing, Router: roomRouter(nil), MaxQueueBytes: 64 << 20})
	c := e.joinSilent(t)
	ctx := context.Background()

	// Sizes cover the three header lengths (7-bit, 16-bit, 64-bit).
	sizes := []int{10, 200, 5000, 70000, 1}
	n := 0
	broadcast := func() {
		pad := strings.Repeat("y", sizes[n%len(sizes)])
		require.NoError(t, e.srv.Broadcast(ctx, "room:a", "n", map[string]any{"i": n, "pad": pad}))
		n++
	}
	for e.srv.Stats().BlockedWrites == 0 {
		require.Less(t, n, 100_000, "the socket never filled")
		broadcast()
	}
	// A ping now: the server's pong must wait for the blocked write.
	pong := make(chan error, 1)
	go func() {
		pctx, cancel := context.WithTimeout(ctx, testTimeout)
		defer cancel()
		pong <- c.Ping(pctx) // answered through the Read loop below
	}()
	for range 20 {
		broadcast()
	}
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`["1","2","room:a","echo",{"last":true}]`)))

	rctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	for i := 0; i < n; i++ {
		_, b, err := c.Read(rctx)
		require.NoError(t, err, "frame %d", i)
		var f []json.RawMessage
		require.NoError(t, json.Unmarshal(b, &f), "frame %d is not whole", i)
		require.Len(t, f, 5)
		var p struct {
			I   int    `json:"i"`
			Pad string `json:"pad"`
		}
		require.NoError(t, json.Unmarshal(f[4], &p))
		require.Equal(t, i, p.I, "frames out of order")
		require.Len(t, p.Pad, sizes[i%len(sizes)])
	}
	_, b, err := c.Read(rctx)
	require.NoError(t, err)
	assert.Equal(t, `["1","2","room:a","phx_reply",{"response":{"last":true},"status":"ok"}]`, string(b))
	// The ping was answered once the client read what came before its pong.
	go func() { _, _, _ = c.Read(context.Background()) }() // keeps processing control frames
	require.NoError(t, <-pong)
	st := e.srv.Stats()
	assert.Less(t, st.Writes, st.FramesWritten, "a blocked connection's frames queue up and share writes")
}

// Close ends a write blocked on a client that never reads: the goroutine
// that finishes it returns (goleak checks) and Close does not hang.
func TestCloseEndsBlockedWrite(t *testing.T) { bothWritePaths(t, testCloseEndsBlockedWrite) }

func testCloseEndsBlockedWrite(t *testing.T, noRing bool) {
	e := newTestEndpoint(t, &Options{DisableIOUring: noRing, Router: roomRouter(nil), MaxQueueBytes: 64 << 20})
	e.joinSilent(t)
	ctx := context.Background()
	big := strings.Repeat("z", 64<<10)
	for i := 0; e.srv.Stats().BlockedWrites == 0; i++ {
		require.Less(t, i, 10_000, "the socket never filled")
		require.NoError(t, e.srv.Broadcast(ctx, "room:a", "big", map[string]string{"x": big}))
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		t.Fatal("Close hung on a blocked write")
	}
}

// A connection the pool cannot write without blocking (TLS) gets a writer
// goroutine of its own, with the same ordering and batching.
func TestTLSConnectionsAreWrittenInOrder(t *testing.T) {
	srv := NewServer(&Options{Router: roomRouter(nil)})
	mux := http.NewServeMux()
	mux.Handle("/socket/", srv)
	hs := httptest.NewTLSServer(mux)
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		hs.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := "wss" + strings.TrimPrefix(hs.URL, "https") + "/socket/websocket?vsn=2.0.0"
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hs.Client()})
	require.NoError(t, err)
	c := newWSClient(t, conn, nil)
	t.Cleanup(func() {
		_ = conn.CloseNow()
		for range c.frames {
		}
	})
	c.join("1", "room:a", "{}")
	for i := range 200 {
		require.NoError(t, srv.Broadcast(ctx, "room:a", "n", map[string]int{"i": i}))
	}
	for i := range 200 {
		c.expectNext(fmt.Sprintf(`[null,null,"room:a","n",{"i":%d}]`, i))
	}
	st := srv.Stats()
	assert.Zero(t, st.BlockedWrites)
	assert.LessOrEqual(t, st.Writes, st.FramesWritten)
}

// A client's close frame with the longest reason (123 bytes) is answered
// whole, Bandit-style (1000 without a reason), not echoed.
func TestLongestCloseFrameIsAnsweredWhole(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	err := c.c.Close(4000, strings.Repeat("r", 123))
	require.Error(t, err, "the server echoed 4000 instead of answering 1000")
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err))
}

// Many connections, several concurrent publishers and clients leaving
// mid-stream: every connection that stays sees each publisher's messages
// complete and in order, and nothing is left running (goleak).
func TestWritePoolConcurrentPublishersAndLeavers(t *testing.T) {
	bothWritePaths(t, testWritePoolConcurrentPublishersAndLeavers)
}

func testWritePoolConcurrentPublishersAndLeavers(t *testing.T, noRing bool) {
	e := newTestEndpoint(t, &Options{DisableIOUring: noRing, Router: roomRouter(nil)})
	const conns, pubs, msgs = 40, 4, 150
	clients := make([]*wsClient, conns)
	for i := range clients {
		clients[i] = e.dial(t, "vsn=2.0.0", nil)
		clients[i].join("1", "room:a", "{}")
	}
	ctx := context.Background()
	done := make(chan error, pubs)
	for p := range pubs {
		go func() {
			for i := range msgs {
				if err := e.srv.Broadcast(ctx, "room:a", "m", map[string]int{"p": p, "i": i}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	// Every fourth client leaves while the publishers run.
	for i := 0; i < conns; i += 4 {
		_ = clients[i].c.CloseNow()
	}
	for range pubs {
		require.NoError(t, <-done)
	}
	for i, c := range clients {
		if i%4 == 0 {
			continue
		}
		next := make([]int, pubs)
		for next[0] < msgs || next[1] < msgs || next[2] < msgs || next[3] < msgs {
			s, err := c.tryRead(testTimeout)
			require.NoError(t, err, "client %d after %v", i, next)
			var f []json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(s), &f))
			var m struct{ P, I int }
			require.NoError(t, json.Unmarshal(f[4], &m))
			require.Equal(t, next[m.P], m.I, "client %d: publisher %d out of order", i, m.P)
			next[m.P]++
		}
	}
}

// A control frame being written (a pong or close, which may wait on a
// full socket) holds the connection's write lock; the pool
// must not wait for it, or one slow client would stall every connection.
// The test holds that lock itself: the other client still gets every
// broadcast, and the held connection gets its frames, in order, once the
// lock is free.
func TestWritePoolDoesNotWaitBehindControlFrames(t *testing.T) {
	bothWritePaths(t, testWritePoolDoesNotWaitBehindControlFrames)
}

func testWritePoolDoesNotWaitBehindControlFrames(t *testing.T, noRing bool) {
	e := newTestEndpoint(t, &Options{DisableIOUring: noRing, Router: roomRouter(nil)})
	held := e.dial(t, "vsn=2.0.0", nil)
	held.join("1", "room:a", "{}")
	other := e.dial(t, "vsn=2.0.0", nil)
	other.join("1", "room:a", "{}")

	e.srv.mu.Lock()
	var tr *wsTransport
	for c := range e.srv.conns {
		if c.t != nil {
			if w := c.t.(*wsTransport); tr == nil || w.ws.LastActivity() < tr.ws.LastActivity() {
				tr = w // the first client: it joined first, so the pool meets it first
			}
		}
	}
	e.srv.mu.Unlock()
	require.NotNil(t, tr)
	release := tr.ws.HoldWrites()
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			release()
		}
	}
	defer unlock()

	ctx := context.Background()
	for i := range 20 {
		require.NoError(t, e.srv.Broadcast(ctx, "room:a", "n", map[string]int{"i": i}))
	}
	for i := range 20 {
		other.expectNext(fmt.Sprintf(`[null,null,"room:a","n",{"i":%d}]`, i))
	}
	// The pool may reach the held connection after the other one: wait for
	// it to hand the held write to a goroutine (it must, frames are queued).
	require.Eventually(t, func() bool { return e.srv.Stats().BlockedWrites > 0 }, testTimeout, time.Millisecond,
		"the held connection's write was handed to a goroutine")
	unlock()
	for i := range 20 {
		held.expectNext(fmt.Sprintf(`[null,null,"room:a","n",{"i":%d}]`, i))
	}
}
