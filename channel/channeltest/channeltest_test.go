package channeltest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/pubsub"
)

var secret = map[string]any{"token": "secret"}

func TestJoinReplyThenJoinPushesInOrder(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	client := ep.Client(&channel.ConnectInfo{Assigns: map[string]any{"user_id": 7}, CorrelationID: "corr-1"})
	require.Equal(t, "corr-1", client.CorrelationID())
	assert.Equal(t, "corr-1", client.Conn().CorrelationID())
	assert.Equal(t, map[string]any{"user_id": 7}, client.Conn().Assigns())

	ch := client.Join("room:lobby", secret)
	require.NotNil(t, ch)
	assert.Equal(t, "room:lobby", ch.Topic())
	assert.Equal(t, "1", ch.JoinRef(), "refs count from 1 like phoenix.js")
	assert.Same(t, client, ch.Client())
	// The Correlation hook of channel.Base ran: the same code path as a WebSocket.
	channeltest.AssertPayload(t, ch.JoinReply().Payload(), channeltest.JSON(`{"user_id":7,"correlation_id":"corr-1"}`))

	// Frames in arrival order: nothing before the reply, the join push, the
	// after-join push. (The pushes are sent right after the reply, so they
	// are awaited, not read from a Pending snapshot.)
	first := client.AssertFrame("any frame", func(*channel.Frame) bool { return true })
	assert.Equal(t, "joining", first.Event())
	assert.Equal(t, channel.FramePush, first.Kind())
	assert.Equal(t, "1", first.JoinRef())
	ch.AssertPush("presence_state", channeltest.JSON(`{}`))
	assert.Empty(t, client.Pending())
}

func TestSocketSkipsConnectButConnectRunsIt(t *testing.T) {
	var calls int
	var mu sync.Mutex
	opts := &channeltest.Options{Server: channel.Options{
		Connect: func(_ context.Context, info *channel.ConnectInfo) error {
			mu.Lock()
			calls++
			mu.Unlock()
			if info.Params["token"] != "ok" {
				return errors.New("bad token")
			}
			info.ID = "user_socket:1"
			info.Assigns = map[string]any{"user_id": 1}
			return nil
		},
	}}
	ep := channeltest.New(t, newRouter(nil), opts)

	client := ep.Client(&channel.ConnectInfo{ID: "user_socket:9", Assigns: map[string]any{"user_id": 9}})
	assert.Equal(t, "user_socket:9", client.ID())
	assert.NotEmpty(t, client.CorrelationID(), "a fresh correlation id")
	mu.Lock()
	assert.Zero(t, calls, "Client is socket/3: no Connect")
	mu.Unlock()

	_, err := ep.Connect(&channel.ConnectInfo{Params: map[string]any{"token": "no"}})
	require.EqualError(t, err, "bad token")

	info := &channel.ConnectInfo{Params: map[string]any{"token": "ok", "correlation_id": "abcdef12"}}
	sock2, err := ep.Connect(info)
	require.NoError(t, err)
	assert.Empty(t, info.ID, "Connect gets a copy")
	assert.Equal(t, "user_socket:1", sock2.ID())
	assert.Equal(t, "abcdef12", sock2.CorrelationID(), "offered correlation id accepted")
	ch := sock2.Join("room:a", secret)
	channeltest.AssertPayload(t, ch.JoinReply().Payload(), channeltest.Subset(map[string]any{"user_id": 1}))
	mu.Lock()
	assert.Equal(t, 2, calls)
	mu.Unlock()
	assert.Equal(t, int64(2), ep.Server().Stats().Connections)
}

func TestReplyMatchers(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	ch := ep.Client(nil).Join("room:lobby", secret)

	type msg struct {
		Body  string `json:"body"`
		Count int    `json:"count"`
	}
	// A Go struct, a map with ints, JSON text (any key order), a subset, a Check with testify.
	ch.Push("echo", msg{Body: "hi", Count: 2}).AssertReply("ok", msg{Body: "hi", Count: 2})
	ch.Push("echo", msg{Body: "hi", Count: 2}).AssertReply("ok", map[string]any{"count": 2, "body": "hi"})
	ch.Push("echo", channeltest.JSON(`{"a":[1,2.0,{"b":null}]}`)).AssertReply("ok", channeltest.JSON(` { "a" : [1e0, 2, {"b": null}] }`))
	ch.Push("echo", msg{Body: "hi", Count: 2}).AssertReply("ok", channeltest.Subset(map[string]any{"count": 2}))
	f := ch.Push("echo", msg{Body: "hi", Count: 2}).AssertReply("ok", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
		require.Equal(t, "hi", p.Map()["body"])
		assert.InDelta(t, 2, p.Map()["count"], 0)
	}))
	assert.Equal(t, msg{Body: "hi", Count: 2}, channeltest.Decode[msg](t, f.Payload()))
	ch.Push("echo", nil).AssertReply("ok", channeltest.JSON(`{}`))
	ch.Push("echo", channeltest.JSON(`[1,"x"]`)).AssertReply("", channeltest.Any)
	ch.Push("refuse", nil).AssertReply("error", channeltest.JSON(`{"reason":"nope"}`))
	ch.Push("binary", nil).AssertReply("ok", channel.Binary{1, 2, 3})
	ch.Push("echo", channel.Binary{9, 8}).AssertReply("ok", channel.Binary{9, 8})
	ch.Push("echo", channel.JSONPayload([]byte(`{"x":1}`))).AssertReply("ok", channel.JSONPayload([]byte(`{"x":1.0}`)))

	p := ch.Push("silent", nil)
	assert.NotEmpty(t, p.Ref())
	assert.Equal(t, "room:lobby", p.Topic())
	p.RefuteReply(0)
}

func TestRepliesAreMatchedByRefNotOrder(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	ch := ep.Client(nil).Join("room:lobby", secret)
	a := ch.Push("echo", map[string]any{"n": 1})
	b := ch.Push("echo", map[string]any{"n": 2})
	b.AssertReply("ok", map[string]any{"n": 2})
	a.AssertReply("ok", map[string]any{"n": 1})
}

func TestPushesAndBroadcasts(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	client := ep.Client(&channel.ConnectInfo{Assigns: map[string]any{"user_id": 7}})
	ch := client.SubscribeAndJoin("room:lobby", secret)

	ch.Push("push_back", map[string]any{"x": 1})
	f := ch.AssertPush("pushed", map[string]any{"x": 1})
	assert.Equal(t, channel.FramePush, f.Kind())
	assert.Equal(t, ch.JoinRef(), f.JoinRef())

	ch.Push("shout", map[string]any{"body": "hello"}).AssertReply("ok", nil)
	b := ch.AssertBroadcast("shout", map[string]any{"body": "hello", "user_id": 7})
	assert.Equal(t, "room:lobby", b.Topic)
	assert.Empty(t, b.From)
	// The same broadcast reached the client through the fastlane.
	f = ch.AssertPush("shout", channeltest.JSON(`{"body":"hello","user_id":7}`))
	assert.Equal(t, channel.FrameBroadcast, f.Kind())
	channeltest.AssertWire(t, f, channel.V2, `[null,null,"room:lobby","shout",{"user_id":7,"body":"hello"}]`)

	// BroadcastFrom skips the channel's own client but not the test's subscription.
	ch.Push("from", map[string]any{"y": 2}).AssertReply("ok", nil)
	b = client.AssertBroadcast("from_me", map[string]any{"y": 2})
	assert.NotEmpty(t, b.From)
	ch.RefutePush("from_me", nil, 0)
	client.RefuteBroadcast("from_me", nil, 0)

	// Endpoint.Broadcast from the test; Client-level assertions see every topic.
	ep.Broadcast("room:lobby", "news", map[string]any{"z": 3})
	client.AssertPush("news", map[string]any{"z": 3})
	client.AssertBroadcast("news", nil)
	ch.RefuteBroadcast("news", nil, 0)

	// A topic subscribed without a join.
	client.Subscribe("other", "other")
	ep.Broadcast("other", "ping", nil)
	b = client.AssertBroadcast("ping", channeltest.JSON(`{}`))
	assert.Equal(t, "other", b.Topic)
	client.RefutePush("ping", nil, 0)

	// Binary pushes.
	ch.Push("push_binary", nil)
	client.AssertPush("bin", channel.Binary{0xff})
}

func TestRefuteLetsOtherPayloadsPass(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	ch := ep.Client(nil).Join("room:lobby", secret)
	ch.Push("push_back", map[string]any{"x": 1})
	ch.RefutePush("pushed", map[string]any{"x": 2}, 0)
	ch.AssertPush("pushed", nil) // still there: refute takes nothing
}

func TestLeave(t *testing.T) {
	var got []error
	var mu sync.Mutex
	opts := &channeltest.Options{Server: channel.Options{OnTerminate: func(_ *channel.Socket, reason error) {
		mu.Lock()
		got = append(got, reason)
		mu.Unlock()
	}}}
	ep := channeltest.New(t, newRouter(nil), opts)
	client := ep.Client(nil)
	ch := client.Join("room:lobby", secret)
	ch.Leave().AssertReply("ok", channeltest.JSON(`{}`))
	f := ch.AssertClosed()
	assert.Equal(t, ch.JoinRef(), f.Ref())
	assert.ErrorIs(t, ch.AssertTerminated(channel.ErrLeft), channel.ErrLeft)
	mu.Lock()
	assert.Equal(t, []error{channel.ErrLeft}, got, "the user's OnTerminate ran before channeltest recorded it")
	mu.Unlock()

	// Rejoin: a new join_ref, and the old channel's frames do not match the new one.
	ch2 := client.Join("room:lobby", secret)
	assert.NotEqual(t, ch.JoinRef(), ch2.JoinRef())
	ch2.AssertPush("joining", nil)
}

func TestCloseTerminatesEveryChannel(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	client := ep.Client(nil)
	a := client.Join("room:a", secret)
	b := client.Join("room:b", secret)
	client.Close()
	a.AssertTerminated(channel.ErrConnClosed)
	b.AssertTerminated(channel.ErrConnClosed)
	client.Close() // idempotent
	assert.Zero(t, ep.Server().Stats().Connections)
}

func TestPanickingHandler(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	client := ep.Client(nil)
	ch := client.Join("room:lobby", secret)
	other := client.Join("room:other", secret)

	p := ch.Push("crash", nil)
	f := ch.AssertError()
	channeltest.AssertPayload(t, f.Payload(), channeltest.JSON(`{"reason":"channel_crash"}`))
	channeltest.AssertWire(t, f, channel.V2, `["1","1","room:lobby","phx_error",{"reason":"channel_crash"}]`)
	reason := ch.AssertTerminated(channel.ErrPanic)
	var pe *channel.PanicError
	require.ErrorAs(t, reason, &pe)
	assert.Equal(t, "boom", pe.Value)
	p.RefuteReply(0)

	// The crash is contained: the connection and the other channel go on,
	// and the topic can be joined again, as phoenix.js does after phx_error.
	other.Push("echo", map[string]any{"alive": true}).AssertReply("ok", map[string]any{"alive": true})
	ch.Push("echo", nil).AssertReply("error", channeltest.JSON(`{"reason":"unmatched topic"}`))
	again := client.Join("room:lobby", secret)
	again.Push("echo", nil).AssertReply("ok", nil)
}

func TestHandlerErrorAndStop(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	client := ep.Client(nil)
	ch := client.Join("room:a", secret)
	ch.Push("fail", nil)
	ch.AssertError()
	assert.EqualError(t, ch.AssertTerminated(nil), "database down")

	ch = client.Join("room:b", secret)
	ch.Push("stop", nil).AssertReply("ok", nil)
	ch.AssertClosed()
	ch.AssertTerminated(channel.ErrStop)
}

func TestJoinRefusedAndCrashed(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	client := ep.Client(nil)
	f := client.AssertJoinError("room:secret", map[string]any{"token": "wrong"}, map[string]any{"reason": "unauthorized"})
	assert.Equal(t, "error", f.Status())
	client.AssertJoinError("crashy:join", nil, channeltest.JSON(`{"reason":"join crashed"}`))
	client.AssertJoinError("room:x", map[string]any{"token": "secret", "crash": true}, channeltest.JSON(`{"reason":"join crashed"}`))
	client.AssertJoinError("nowhere", nil, channeltest.JSON(`{"reason":"unmatched topic"}`))

	ch, reply := client.TryJoin("room:secret", nil)
	assert.Nil(t, ch)
	assert.Equal(t, "error", reply.Status())
	ch, reply = client.TryJoin("room:open", secret)
	require.NotNil(t, ch)
	assert.Same(t, reply, ch.JoinReply())
}

func TestDisconnectBroadcastToSocketID(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	client := ep.Client(&channel.ConnectInfo{ID: "user_socket:1"})
	ch := client.Join("room:lobby", secret)
	ch.Push("kick", nil)
	code, reason := client.AssertDisconnected()
	assert.Equal(t, channel.CloseGoingAway, code)
	assert.Equal(t, "disconnect", reason)
	ch.AssertTerminated(channel.ErrConnClosed)

	ep.Broadcast("user_socket:2", "disconnect", nil) // nobody: nothing happens
}

func TestServerCloseDisconnects(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	client := ep.Client(nil)
	ch := client.Join("room:lobby", secret)
	require.NoError(t, ep.Server().Close())
	code, _ := client.AssertDisconnected()
	assert.Equal(t, channel.CloseServiceRestart, code)
	ch.AssertTerminated(channel.ErrConnClosed)
	ep.Close()
	ep.Close()
}

func TestHeartbeatAndRawMessages(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	client := ep.Client(nil)
	client.Heartbeat().AssertReply("ok", channeltest.JSON(`{}`))
	ch := client.Join("room:lobby", secret)

	// A message with a stale join_ref is dropped, as phoenix.js expects.
	p := client.Send(&channel.Message{JoinRef: "999", Ref: client.NextRef(), Topic: "room:lobby", Event: "echo", Payload: channel.JSONPayload([]byte(`{}`))})
	p.RefuteReply(0)
	// An event for a topic that was never joined.
	client.Send(&channel.Message{Ref: "x1", Topic: "room:none", Event: "echo"}).AssertReply("error", map[string]any{"reason": "unmatched topic"})
	ch.Push("echo", nil).AssertReply("ok", nil)
}

func TestCustomPubSubIsUsedAndNotClosed(t *testing.T) {
	ps := pubsub.NewMemory(nil)
	defer ps.Close()
	seen := make(chan *pubsub.Message, 1)
	fn := pubsub.SubscriberFunc(func(m *pubsub.Message) {
		select {
		case seen <- m:
		default:
		}
	})
	require.NoError(t, ps.Subscribe(context.Background(), "room:lobby", &fn))

	func() {
		ep := channeltest.New(t, nil, &channeltest.Options{Server: channel.Options{Router: newRouter(nil), PubSub: ps}})
		assert.Same(t, ps, ep.PubSub())
		ch := ep.Client(nil).Join("room:lobby", secret)
		ch.Push("shout", map[string]any{"body": "x"}).AssertReply("ok", nil)
		m := <-seen
		assert.Equal(t, "shout", m.Event)
		ep.Close()
	}()
	require.NoError(t, ps.Broadcast(context.Background(), &pubsub.Message{Topic: "t", Event: "e", Payload: []byte(`{}`)}), "not closed by the Endpoint")
}

func TestWireModeEncodesFrames(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), &channeltest.Options{Wire: true})
	client := ep.Client(&channel.ConnectInfo{Serializer: channel.V1})
	ch := client.Join("room:lobby", secret)
	f := ch.Push("echo", map[string]any{"a": 1}).AssertReply("ok", nil)
	channeltest.AssertWire(t, f, channel.V1, `{"event":"phx_reply","payload":{"response":{"a":1},"status":"ok"},"ref":"2","topic":"room:lobby"}`)
}

func TestSlowConsumerClosesTheConnection(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), &channeltest.Options{MaxFrames: 5})
	client := ep.Client(nil)
	ch := client.Join("room:lobby", secret)
	ch.Push("flood", map[string]any{"n": 10})
	code, reason := client.AssertDisconnected()
	assert.Equal(t, channel.CloseSlowConsumer, code)
	assert.Equal(t, "slow consumer", reason)
	assert.Len(t, client.Pending(), 5)
}

func TestInsideSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := channeltest.New(t, newRouter(nil), nil)
		ch := ep.Client(nil).Join("room:lobby", secret)
		p := ch.Push("silent", nil)
		p.RefuteReply(0) // fake time: the window costs nothing
		ch.RefutePush("never", nil, 0)
		ch.Push("echo", nil).AssertReply("ok", nil)
	})
}
