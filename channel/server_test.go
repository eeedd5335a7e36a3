package channel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testRoom is the channel most end-to-end tests use.
type testRoom struct {
	Base
	terminated chan error
}

func (r *testRoom) Join(_ context.Context, s *Socket, p Payload) (any, error) {
	m := p.Map()
	switch {
	case m["reject"] == true:
		return nil, Refuse(map[string]string{"reason": "unauthorized"})
	case m["crash"] == true:
		panic("join crash")
	case m["fail"] == true:
		return nil, errors.New("database down")
	case m["push_in_join"] == true:
		_ = s.Push("early", map[string]int{"n": 1})
	}
	if m["reply"] != nil {
		return map[string]any{"welcome": m["reply"]}, nil
	}
	return nil, nil
}

func (r *testRoom) HandleIn(ctx context.Context, s *Socket, msg *Message) (Reply, error) {
	switch msg.Event {
	case "echo":
		return OK(msg.Payload), nil
	case "bcast":
		return OK(nil), s.Broadcast(ctx, "bcast", msg.Payload)
	case "bcast_from":
		return OK(nil), s.BroadcastFrom(ctx, "bcast_from", msg.Payload)
	case "bcast_then_push":
		_ = s.Broadcast(ctx, "b", nil)
		return NoReply, s.Push("p", nil)
	case "boom":
		panic("boom")
	case "stop":
		return OK(map[string]string{"bye": "now"}), ErrStop
	case "fail":
		return NoReply, errors.New("handler failed")
	case "bin":
		return OK(Binary(append(append([]byte(nil), msg.Payload.Bytes()...), 3, 4))), s.Push("bin", Binary{0, 1})
	case "async":
		ref := msg.Ref
		go func() {
			_ = s.Reply(ref, OK(map[string]int{"n": 1}))
			_ = s.Reply(ref, OK(map[string]int{"n": 2}))
		}()
		return NoReply, nil
	case "noreply":
		return NoReply, nil
	case "custom":
		return Reply{Status: "queued", Response: map[string]int{"pos": 3}}, nil
	case "block":
		<-ctx.Done()
		return NoReply, nil
	}
	return NoReply, ErrUnhandled
}

func (r *testRoom) Intercepts() []string { return []string{"filtered", "decorated"} }

func (r *testRoom) HandleOut(_ context.Context, s *Socket, msg *Message) error {
	if msg.Event == "filtered" {
		return nil
	}
	m := msg.Payload.Map()
	m["decorated"] = true
	return s.Push(msg.Event, m)
}

func (r *testRoom) Terminate(_ context.Context, _ *Socket, reason error) {
	if r.terminated != nil {
		r.terminated <- reason
	}
}

func roomRouter(terminated chan error) *Router {
	r := NewRouter()
	r.Handle("room:*", func() Channel { return &testRoom{terminated: terminated} })
	return r
}

func TestHeartbeat(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	c := e.dial(t, "vsn=2.0.0", nil)
	assert.Empty(t, c.resp.Header.Get("Sec-WebSocket-Protocol"))
	c.send(`["5","9","phoenix","heartbeat",{"x":1}]`)
	c.expectNext(`[null,"9","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestJoinReplies(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.send(`["1","1","nomatch:1","phx_join",{}]`)
	c.expectNext(`[null,"1","nomatch:1","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
	c.send(`["2","2","room:a","phx_join",{"reject":true}]`)
	c.expectNext(`["2","2","room:a","phx_reply",{"response":{"reason":"unauthorized"},"status":"error"}]`)
	c.send(`["3","3","room:a","phx_join",{"crash":true}]`)
	c.expectNext(`["3","3","room:a","phx_reply",{"response":{"reason":"join crashed"},"status":"error"}]`)
	c.send(`["4","4","room:a","phx_join",{"fail":true}]`)
	c.expectNext(`["4","4","room:a","phx_reply",{"response":{"reason":"join crashed"},"status":"error"}]`)
	c.send(`["5","5","room:a","phx_join",{"reply":"hi"}]`)
	c.expectNext(`["5","5","room:a","phx_reply",{"response":{"welcome":"hi"},"status":"ok"}]`)
	// A push to a topic never joined.
	c.send(`["9","10","room:zzz","echo",{}]`)
	c.expectNext(`[null,"10","room:zzz","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
}

func TestPushDuringJoinArrivesAfterReply(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.send(`["1","1","room:a","phx_join",{"push_in_join":true}]`)
	c.expectNext(`["1","1","room:a","phx_reply",{"response":{},"status":"ok"}]`)
	c.expectNext(`["1",null,"room:a","early",{"n":1}]`)
}

func TestRepliesAndStatuses(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	c.send(`["1","2","room:a","echo",{"b":2,"a":1}]`)
	c.expectNext(`["1","2","room:a","phx_reply",{"response":{"b":2,"a":1},"status":"ok"}]`)
	c.send(`["1","3","room:a","custom",{}]`)
	c.expectNext(`["1","3","room:a","phx_reply",{"response":{"pos":3},"status":"queued"}]`)
	c.send(`["1","4","room:a","async",{}]`)
	c.expectNext(`["1","4","room:a","phx_reply",{"response":{"n":1},"status":"ok"}]`)
	c.expectNext(`["1","4","room:a","phx_reply",{"response":{"n":2},"status":"ok"}]`)
	c.send(`[null,"5","room:a","echo",{}]`)
	c.expectNext(`["1","5","room:a","phx_reply",{"response":{},"status":"ok"}]`)
	// Stale join_ref: dropped without a reply; the next frame is the echo.
	c.send(`["old","6","room:a","echo",{}]`)
	c.send(`["1","7","room:a","noreply",{}]`)
	c.send(`["1","8","room:a","nope",{}]`)
	c.send(`["1","9","room:a","echo",{}]`)
	c.expectNext(`["1","9","room:a","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestBroadcastOrderingAndFrom(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	a := e.dial(t, "vsn=2.0.0", nil)
	b := e.dial(t, "vsn=2.0.0", nil)
	a.join("1", "room:a", "{}")
	b.join("7", "room:a", "{}")
	a.send(`["1","2","room:a","bcast",{"x":1}]`)
	a.expectNext(`[null,null,"room:a","bcast",{"x":1}]`)
	a.expectNext(`["1","2","room:a","phx_reply",{"response":{},"status":"ok"}]`)
	b.expectNext(`[null,null,"room:a","bcast",{"x":1}]`)

	a.send(`["1","3","room:a","bcast_from",{"y":2}]`)
	a.expectNext(`["1","3","room:a","phx_reply",{"response":{},"status":"ok"}]`)
	b.expectNext(`[null,null,"room:a","bcast_from",{"y":2}]`)

	a.send(`["1","4","room:a","bcast_then_push",{}]`)
	a.expectNext(`[null,null,"room:a","b",{}]`)
	a.expectNext(`["1",null,"room:a","p",{}]`)

	require.NoError(t, e.srv.Broadcast(context.Background(), "room:a", "filtered", map[string]int{"z": 1}))
	require.NoError(t, e.srv.Broadcast(context.Background(), "room:a", "decorated", map[string]int{"x": 1}))
	a.expectNext(`["1",null,"room:a","decorated",{"decorated":true,"x":1}]`)
	b.expectNext(`[null,null,"room:a","b",{}]`)
	b.expectNext(`["7",null,"room:a","decorated",{"decorated":true,"x":1}]`)
}

func TestBroadcastOrderOverManyMessages(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	a := e.dial(t, "vsn=2.0.0", nil)
	b := e.dial(t, "vsn=2.0.0", nil)
	a.join("1", "room:a", "{}")
	b.join("1", "room:a", "{}")
	const n = 1000
	go func() {
		for i := 0; i < n; i++ {
			_ = e.srv.Broadcast(context.Background(), "room:a", "n", map[string]int{"i": i})
		}
	}()
	for _, c := range []*wsClient{a, b} {
		for i := 0; i < n; i++ {
			c.expectNext(fmt.Sprintf(`[null,null,"room:a","n",{"i":%d}]`, i))
		}
	}
}

func TestLeaveAndDuplicateJoin(t *testing.T) {
	term := make(chan error, 10)
	e := newTestEndpoint(t, &Options{Router: roomRouter(term)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:dup", "{}")
	c.send(`["2","2","room:dup","phx_join",{}]`)
	c.expectNext(`["2","2","room:dup","phx_reply",{"response":{},"status":"ok"}]`)
	c.expectNext(`["1","1","room:dup","phx_close",{}]`)
	require.ErrorIs(t, <-term, ErrDuplicateJoin)

	c.send(`["1","3","room:dup","phx_leave",{}]`) // stale join_ref: nothing at all
	c.send(`["2","4","room:dup","phx_leave",{}]`)
	c.expectNext(`["2","4","room:dup","phx_reply",{"response":{},"status":"ok"}]`)
	c.expectNext(`["2","2","room:dup","phx_close",{}]`)
	require.ErrorIs(t, <-term, ErrLeft)
	c.send(`["2","5","room:dup","echo",{}]`)
	c.expectNext(`[null,"5","room:dup","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
	c.send(`["9","6","room:never","phx_leave",{}]`)
	c.expectNext(`["9","6","room:never","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestCrashIsContainedToOneChannel(t *testing.T) {
	term := make(chan error, 10)
	e := newTestEndpoint(t, &Options{Router: roomRouter(term)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	c.join("2", "room:b", "{}")
	c.send(`["1","3","room:a","boom",{}]`)
	c.expectNext(`["1","1","room:a","phx_error",{"reason":"channel_crash"}]`)
	var pe *PanicError
	require.ErrorAs(t, <-term, &pe)
	assert.Equal(t, "boom", pe.Value)
	c.send(`["2","4","room:b","echo",{"still":"alive"}]`)
	c.expectNext(`["2","4","room:b","phx_reply",{"response":{"still":"alive"},"status":"ok"}]`)
	c.send(`["1","5","room:a","echo",{}]`)
	c.expectNext(`[null,"5","room:a","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)

	c.send(`["2","6","room:b","fail",{}]`)
	c.expectNext(`["2","2","room:b","phx_error",{"reason":"channel_crash"}]`)
	assert.EqualError(t, <-term, "handler failed")

	c.join("7", "room:a", "{}")
	c.send(`["7","8","room:a","stop",{}]`)
	c.expectNext(`["7","8","room:a","phx_reply",{"response":{"bye":"now"},"status":"ok"}]`)
	c.expectNext(`["7","7","room:a","phx_close",{}]`)
	require.ErrorIs(t, <-term, ErrStop)
	c.send(`[null,"9","phoenix","heartbeat",{}]`)
	c.expectNext(`[null,"9","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestTooManyChannels(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), MaxChannels: 3})
	c := e.dial(t, "vsn=2.0.0", nil)
	for i := 1; i <= 3; i++ {
		c.join(fmt.Sprint(i), fmt.Sprintf("room:%d", i), "{}")
	}
	c.send(`["4","4","room:4","phx_join",{}]`)
	c.expectNext(`["4","4","room:4","phx_reply",{"response":{"reason":"too many channels joined"},"status":"error"}]`)
	// Rejoining a joined topic replaces it and is not refused.
	c.send(`["5","5","room:3","phx_join",{}]`)
	c.expectNext(`["5","5","room:3","phx_reply",{"response":{},"status":"ok"}]`)
	c.expectNext(`["3","3","room:3","phx_close",{}]`)
}

func TestBinaryFrames(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:1", "{}")
	// kind 0 push: join_ref "1", ref "2", topic "room:1", event "bin", data 01 02
	c.sendBinary(append([]byte{0, 1, 1, 6, 3}, append([]byte("12room:1bin"), 1, 2)...))
	c.expectNext("bin:" + fmt.Sprintf("%x", append(append([]byte{0, 1, 6, 3}, "1room:1bin"...), 0, 1)))
	c.expectNext("bin:" + fmt.Sprintf("%x", append(append([]byte{1, 1, 1, 6, 2}, "12room:1ok"...), 1, 2, 3, 4)))
	// A binary request answered with a map gets a text reply.
	c.sendBinary(append([]byte{0, 1, 1, 6, 6}, append([]byte("13room:1custom"), 9)...))
	c.expectNext(`["1","3","room:1","phx_reply",{"response":{"pos":3},"status":"queued"}]`)
	require.NoError(t, e.srv.Broadcast(context.Background(), "room:1", "blob", Binary{7}))
	c.expectNext("bin:" + fmt.Sprintf("%x", append(append([]byte{2, 6, 4}, "room:1blob"...), 7)))
}

func TestV1Serializer(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	c := e.dial(t, "", nil)
	c.send(`{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}`)
	c.expectNext(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:1"}`)
	c.send(`{"topic":"room:1","event":"bcast","payload":{"a":1},"ref":"2"}`)
	c.expectNext(`{"event":"bcast","payload":{"a":1},"ref":null,"topic":"room:1"}`)
	c.expectNext(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"2","topic":"room:1"}`)
}

func TestHandshakeRefusals(t *testing.T) {
	e := newTestEndpoint(t, &Options{
		Router:         roomRouter(nil),
		AllowedOrigins: []string{"http://good.example"},
		Connect: func(_ context.Context, info *ConnectInfo) error {
			switch info.Params["mode"] {
			case "refuse":
				return errors.New("no")
			case "busy":
				return &HTTPError{Status: http.StatusTooManyRequests, Body: "slow down"}
			case "panic":
				panic("connect panic")
			}
			return nil
		},
	})
	for _, vsn := range []string{"vsn=3.0.0", "vsn=2.1.0", "vsn=abc", "vsn%5B%5D=x"} {
		assert.Equal(t, http.StatusForbidden, e.dialStatus(t, vsn, nil), vsn)
	}
	evil := &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.example"}}}
	assert.Equal(t, http.StatusForbidden, e.dialStatus(t, "vsn=2.0.0", evil))
	assert.Equal(t, http.StatusForbidden, e.dialStatus(t, "vsn=2.0.0", &websocket.DialOptions{Subprotocols: []string{"foo"}}))
	assert.Equal(t, http.StatusSwitchingProtocols, e.dialStatus(t, "vsn=2.0.0", &websocket.DialOptions{Subprotocols: []string{"foo", "phoenix"}}))
	good := &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://good.example"}}}
	assert.Equal(t, http.StatusSwitchingProtocols, e.dialStatus(t, "vsn=2.0.0", good))
	assert.Equal(t, http.StatusForbidden, e.dialStatus(t, "vsn=2.0.0&mode=refuse", nil))
	assert.Equal(t, http.StatusTooManyRequests, e.dialStatus(t, "vsn=2.0.0&mode=busy", nil))
	assert.Equal(t, http.StatusForbidden, e.dialStatus(t, "vsn=2.0.0&mode=panic", nil))

	resp, err := http.Post(e.hs.URL+"/socket/websocket?vsn=2.0.0", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, err = http.Get(e.hs.URL + "/socket/longpoll")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, uint64(9), e.srv.Stats().Refused)
}

func TestConnectInfoAndAuthToken(t *testing.T) {
	got := make(chan ConnectInfo, 1)
	e := newTestEndpoint(t, &Options{
		Router: roomRouter(nil),
		Connect: func(_ context.Context, info *ConnectInfo) error {
			info.ID = "users:7"
			info.Assigns = map[string]any{"user": 7}
			got <- *info
			return nil
		},
	})
	c := e.dial(t, "token=abc&user%5Bid%5D=7&vsn=2.0.0", &websocket.DialOptions{
		Subprotocols: []string{"phoenix", "base64url.bearer.phx.czNjcmV0Ky89Pw"},
	})
	assert.Equal(t, "phoenix", c.resp.Header.Get("Sec-WebSocket-Protocol"))
	info := <-got
	assert.Equal(t, map[string]any{"token": "abc", "user": map[string]any{"id": "7"}, "vsn": "2.0.0"}, info.Params)
	assert.Equal(t, "s3cret+/=?", info.AuthToken)
	assert.Equal(t, V2, info.Serializer)
	assert.Len(t, info.CorrelationID, 16)
	assert.NotEmpty(t, info.RemoteAddr)

	// A valid client-offered correlation id is kept; an invalid one replaced.
	e.dial(t, "vsn=2.0.0&correlation_id=abc-123", nil)
	assert.Equal(t, "abc-123", (<-got).CorrelationID)
	e.dial(t, "vsn=2.0.0&correlation_id=bad%20id", nil)
	assert.NotEqual(t, "bad id", (<-got).CorrelationID)
}

func TestDisconnectBroadcastClosesSocketsOfID(t *testing.T) {
	term := make(chan error, 4)
	e := newTestEndpoint(t, &Options{
		Router: roomRouter(term),
		Connect: func(_ context.Context, info *ConnectInfo) error {
			if id, _ := info.Params["user_id"].(string); id != "" {
				info.ID = "users:" + id
			}
			return nil
		},
	})
	c7 := e.dial(t, "vsn=2.0.0&user_id=7", nil)
	c8 := e.dial(t, "vsn=2.0.0&user_id=8", nil)
	c7.join("1", "room:a", "{}")
	c8.join("1", "room:a", "{}")
	ctx := context.Background()
	require.NoError(t, e.srv.Broadcast(ctx, "users:7", "something_else", nil))
	require.NoError(t, e.srv.Broadcast(ctx, "users:7", "disconnect", nil))
	assert.Equal(t, websocket.StatusGoingAway, c7.closeCode())
	require.ErrorIs(t, <-term, ErrConnClosed)
	c8.send(`[null,"2","phoenix","heartbeat",{}]`)
	c8.expectNext(`[null,"2","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestMalformedFramesClose1011(t *testing.T) {
	for _, bad := range []string{`not json`, `["1","1","t","e"]`, `{"a":1}`, "bin:01"} {
		t.Run(bad, func(t *testing.T) {
			e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
			c := e.dial(t, "vsn=2.0.0", nil)
			other := e.dial(t, "vsn=2.0.0", nil)
			if strings.HasPrefix(bad, "bin:") {
				c.sendBinary([]byte{1, 0, 0, 0, 0})
			} else {
				c.send(bad)
			}
			assert.Equal(t, websocket.StatusInternalError, c.closeCode())
			other.send(`[null,"1","phoenix","heartbeat",{}]`)
			other.expectNext(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
			assert.Equal(t, uint64(1), e.srv.Stats().Malformed)
		})
	}
}

func TestMaxFrameSizeCloses1009(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), MaxFrameSize: 1000})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.send(`["1","1","room:a","echo",{"x":"` + strings.Repeat("x", 2000) + `"}]`)
	assert.Equal(t, websocket.StatusMessageTooBig, c.closeCode())
}

func TestIdleTimeoutCloses1002(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), IdleTimeout: 100 * time.Millisecond})
	c := e.dial(t, "vsn=2.0.0", nil)
	assert.Equal(t, websocket.StatusProtocolError, c.closeCode())
}

func TestClientCloseAnsweredLikeBandit(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	for _, tc := range []struct {
		send websocket.StatusCode
		want websocket.StatusCode
	}{
		{websocket.StatusNormalClosure, websocket.StatusNormalClosure},
		{websocket.StatusNoStatusRcvd, websocket.StatusProtocolError},
		{websocket.StatusGoingAway, websocket.StatusNormalClosure},
		{websocket.StatusInternalError, websocket.StatusNormalClosure},
		{3000, websocket.StatusNormalClosure},
		{4000, websocket.StatusNormalClosure},
		{websocket.StatusServiceRestart, websocket.StatusProtocolError},
	} {
		c := e.dial(t, "vsn=2.0.0", nil)
		var got websocket.StatusCode = -1
		// coder/websocket reports the peer's answer as the close error of Close.
		err := c.c.Close(tc.send, "")
		if err != nil {
			got = websocket.CloseStatus(err)
		} else {
			got = tc.send // Close returns nil when the peer echoed the same code
		}
		assert.Equal(t, tc.want, got, "client sent %v", tc.send)
	}
}

func TestShutdownCloses1012(t *testing.T) {
	term := make(chan error, 1)
	e := newTestEndpoint(t, &Options{Router: roomRouter(term)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	assert.Equal(t, websocket.StatusServiceRestart, c.closeCode())
	require.NoError(t, <-done)
	require.ErrorIs(t, <-term, ErrConnClosed)
	assert.Equal(t, http.StatusServiceUnavailable, e.dialStatus(t, "vsn=2.0.0", nil))
}

func TestSlowConsumerClosed3008(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), MaxQueueBytes: 256 << 10})
	slow := e.dialSilent(t, "vsn=2.0.0")
	fast := e.dial(t, "vsn=2.0.0", nil)
	ctx := context.Background()
	require.NoError(t, slow.Write(ctx, websocket.MessageText, []byte(`["1","1","room:a","phx_join",{}]`)))
	fast.join("1", "room:a", "{}")
	for e.srv.Subscribers("room:a") < 2 { // the silent client cannot read its join reply yet
		runtime.Gosched()
	}
	big := strings.Repeat("x", 32<<10)
	// The slow client reads nothing until the server gives up on it: the
	// loopback socket buffers fill first, then its queue. The fast client
	// receives every broadcast before the next one is sent.
	for i := 0; e.srv.Stats().SlowClosed == 0; i++ {
		require.Less(t, i, 10_000, "slow consumer never detected")
		require.NoError(t, e.srv.Broadcast(ctx, "room:a", "big", map[string]string{"x": big}))
		fast.expect(fmt.Sprintf(`[null,null,"room:a","big",{"x":"%s"}]`, big))
	}
	// Reading now, the slow client gets what was written before the queue
	// overflowed, then the close frame.
	var code websocket.StatusCode = -1
	for code == -1 {
		_, _, err := slow.Read(ctx)
		if err != nil {
			code = websocket.CloseStatus(err)
			require.NotEqual(t, websocket.StatusCode(-1), code, "read error without a close frame: %v", err)
		}
	}
	assert.Equal(t, websocket.StatusCode(CloseSlowConsumer), code)
	require.NoError(t, e.srv.Broadcast(ctx, "room:a", "after", nil))
	fast.expect(`[null,null,"room:a","after",{}]`)
	assert.Equal(t, uint64(1), e.srv.Stats().SlowClosed)
}

func TestCloseFreesReaderBlockedOnFullMailbox(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), MailboxSize: 1})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	c.send(`["1","2","room:a","block",{}]`) // the handler waits for its context
	c.send(`["1","3","room:a","echo",{}]`)  // fills the mailbox
	c.send(`[null,"4","phoenix","heartbeat",{}]`)
	c.expectNext(`[null,"4","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	c.send(`["1","5","room:a","echo",{}]`) // the reader waits for room...
	c.send(`[null,"6","phoenix","heartbeat",{}]`)
	c.quiet(100 * time.Millisecond) // ...so this heartbeat stays unanswered
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()
	assert.Equal(t, websocket.StatusServiceRestart, c.closeCode())
	require.NoError(t, <-done, "shutdown must not hang on a blocked reader")
}

func TestLocalBroadcastSkipsPubSub(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	remote := make(chan string, 1)
	sub := pubsubFunc(func(m string) { remote <- m })
	require.NoError(t, e.srv.PubSub().Subscribe(context.Background(), "room:a", sub))
	require.NoError(t, e.srv.LocalBroadcast("room:a", "local", map[string]int{"n": 1}))
	c.expectNext(`[null,null,"room:a","local",{"n":1}]`)
	require.NoError(t, e.srv.Broadcast(context.Background(), "room:a", "everywhere", nil))
	c.expectNext(`[null,null,"room:a","everywhere",{}]`)
	assert.Equal(t, "everywhere", <-remote, "only the PubSub broadcast reached the other subscriber")
}

func TestClientCloseAnsweredWhileBroadcasting(t *testing.T) {
	// The answer to a client's close frame must reach the client even when
	// the connection's writer is in the middle of a batch of frames.
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	ctx := context.Background()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				_ = e.srv.Broadcast(ctx, "room:a", "tick", map[string]string{"pad": strings.Repeat("x", 512)})
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := 0; i < 30; i++ {
		c := e.dialSilent(t, "vsn=2.0.0")
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`["1","1","room:a","phx_join",{}]`)))
		for e.srv.Subscribers("room:a") == 0 {
			runtime.Gosched()
		}
		// Close reads (and drops) data frames until the server's close frame.
		// On a loaded machine the unread broadcasts can fill this client's
		// queue first: then the frame is the server's own 3008 close, which
		// arrives whole just the same.
		err := c.Close(websocket.StatusNormalClosure, "")
		if err != nil {
			require.Equal(t, websocket.StatusCode(CloseSlowConsumer), websocket.CloseStatus(err),
				"attempt %d: the server's close frame was lost: %v", i, err)
		}
	}
}

func TestFrameLengthEncodings(t *testing.T) {
	// 125/126/65535/65536 bytes are where the header's length field changes.
	// The queue bound is above the largest frame: the client may have read
	// the whole 1 MiB frame before the server's write returned and released
	// its bytes, and the next broadcast must not find the queue full.
	for _, compression := range []bool{false, true} {
		e := newTestEndpoint(t, &Options{Router: roomRouter(nil), Compression: compression, MaxQueueBytes: 4 << 20})
		c := e.dial(t, "vsn=2.0.0", &websocket.DialOptions{CompressionMode: websocket.CompressionContextTakeover})
		assert.Equal(t, compression, strings.Contains(c.resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate"))
		c.join("1", "room:a", "{}")
		// The frame is the pad plus 34 bytes of [null,null,"room:a","x",{"p":""}].
		for _, n := range []int{0, 125 - 34, 126 - 34, 200, 65535 - 34, 65536 - 34, 70_000, 1 << 20} {
			pad := strings.Repeat("y", n)
			require.NoError(t, e.srv.Broadcast(context.Background(), "room:a", "x", map[string]string{"p": pad}))
			c.expectNext(`[null,null,"room:a","x",{"p":"` + pad + `"}]`)
		}
		require.NoError(t, e.srv.Broadcast(context.Background(), "room:a", "bin", Binary(strings.Repeat("z", 300))))
		c.expectNext("bin:" + fmt.Sprintf("%x", append([]byte{2, 6, 3}, []byte("room:abin"+strings.Repeat("z", 300))...)))
	}
}

func TestWriteDelayKeepsOrderAndDelivers(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), WriteDelay: 20 * time.Millisecond})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	for i := 0; i < 50; i++ {
		require.NoError(t, e.srv.Broadcast(context.Background(), "room:a", "n", map[string]int{"i": i}))
	}
	c.send(`["1","2","room:a","echo",{"last":true}]`)
	for i := 0; i < 50; i++ {
		c.expectNext(fmt.Sprintf(`[null,null,"room:a","n",{"i":%d}]`, i))
	}
	c.expectNext(`["1","2","room:a","phx_reply",{"response":{"last":true},"status":"ok"}]`)
}
