package channeltest_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
)

// failing runs body with a fake TB inside a synctest bubble (so timeouts
// and refute windows take no real time), checks that it failed exactly once
// with Fatalf and that the code after the failing assertion did not run,
// and returns the failure message.
func failing(t *testing.T, body func(ft *fakeTB, after func())) string {
	t.Helper()
	var msg string
	synctest.Test(t, func(t *testing.T) {
		t.Helper()
		continued := false
		ft := runFake(t, func(ft *fakeTB) { body(ft, func() { continued = true }) })
		assert.False(t, continued, "the test went on after the failing assertion")
		msg = ft.fatal(t)
		assert.Empty(t, ft.errs)
	})
	t.Log(msg)
	return msg
}

func joined(ft *fakeTB) (*channeltest.Endpoint, *channeltest.Client, *channeltest.Channel) {
	ep := channeltest.New(ft, newRouter(nil), nil)
	client := ep.Client(&channel.ConnectInfo{ID: "user_socket:7", Assigns: map[string]any{"user_id": 7}})
	ch := client.SubscribeAndJoin("room:lobby", secret)
	ch.AssertPush("joining", nil)
	ch.AssertPush("presence_state", nil)
	return ep, client, ch
}

func TestFailAssertPushShowsWhatArrived(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("push_back", map[string]any{"body": "bye"})
		ch.Push("echo", map[string]any{"n": 1})
		ch.AssertPush("pushed", map[string]any{"body": "hello"})
		after()
	})
	contains(t, msg,
		`no push "pushed" on "room:lobby" within 1s`,
		`want payload: {"body":"hello"}`,
		`#4 ["1",null,"room:lobby","pushed",{"body":"bye"}]`,
		`payload differs: $.body: got "bye", want "hello"`,
		`#5 ["1","3","room:lobby","phx_reply",{"response":{"n":1},"status":"ok"}]`,
		`(2 of 5)`,
		`connection: the connection is open`)
}

func TestFailAssertPushNothingArrived(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, client, _ := joined(ft)
		client.AssertPush("nothing", nil)
		after()
	})
	contains(t, msg, `no push "nothing" on any topic within 1s`,
		`no frames waiting for assertions (3 arrived, all taken)`)
}

func TestFailAssertReplyWrongStatus(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("refuse", nil).AssertReply("ok", nil)
		after()
	})
	contains(t, msg, `no "ok" reply to "refuse" on "room:lobby" (ref "2")`,
		`status "error", want "ok"; response {"reason":"nope"}`)
}

func TestFailAssertReplyPayload(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("echo", map[string]any{"a": 1, "b": []int{1, 2}, "x": "y"}).
			AssertReply("ok", channeltest.JSON(`{"a":2,"b":[1],"c":null}`))
		after()
	})
	contains(t, msg,
		`$.a: got 1, want 2`, `$.b: got 2 elements [1,2], want 1 elements [1]`,
		`$.c: missing, want null`, `$.x: unexpected, got "y"`)
}

func TestFailAssertReplyNoReplyAtAll(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("silent", nil).AssertReply("ok", nil)
		after()
	})
	contains(t, msg, `no "ok" reply to "silent"`, `no frames waiting`)
}

func TestFailBinaryVersusJSON(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("binary", nil).AssertReply("ok", map[string]any{"a": 1})
		after()
	})
	contains(t, msg, `payload is binary (3 bytes 010203), want JSON`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("echo", nil).AssertReply("ok", channel.Binary{1})
		after()
	})
	contains(t, msg, `payload is JSON {}, want binary (1 bytes)`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("binary", nil).AssertReply("ok", channel.Binary{1, 2})
		after()
	})
	contains(t, msg, `binary payload differs: got 3 bytes 010203, want 2 bytes 0102`)
}

func TestFailRefutePush(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("push_back", map[string]any{"x": 1})
		ch.RefutePush("pushed", channeltest.Subset(map[string]any{"x": 1}), 0)
		after()
	})
	contains(t, msg, `unexpected push "pushed" on "room:lobby" (refuted for 100ms)`,
		`got #4: ["1",null,"room:lobby","pushed",{"x":1}]`,
		`refuted payload: a payload containing {"x":1}`)
	assert.NotContains(t, failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("push_back", nil)
		ch.RefutePush("pushed", nil, 0)
		after()
	}), "refuted payload")
}

func TestFailRefuteReply(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("echo", nil).RefuteReply(50e6)
		after()
	})
	contains(t, msg, `unexpected reply to "echo" on "room:lobby" (ref "2") (refuted for 50ms)`)
}

func TestFailAssertBroadcast(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, newRouter(nil), nil)
		client := ep.Client(nil)
		ch := client.Join("room:lobby", secret) // not subscribed
		ch.Push("shout", map[string]any{"body": "x"})
		ch.AssertBroadcast("shout", nil)
		after()
	})
	contains(t, msg, `no broadcast "shout" on "room:lobby" within 1s`,
		`the client is subscribed to no topic: use SubscribeAndJoin or Subscribe`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, client, ch := joined(ft)
		ch.Push("shout", map[string]any{"body": "x"})
		client.AssertBroadcast("shout", map[string]any{"body": "y", "user_id": 7})
		after()
	})
	contains(t, msg, `no broadcast "shout" on any subscribed topic within 1s`,
		`#1 broadcast "shout" on "room:lobby" {"body":"x","user_id":7}`,
		`payload differs: $.body: got "x", want "y"`,
		`subscribed topics: ["room:lobby"]`)
}

func TestFailRefuteBroadcast(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("from", map[string]any{"y": 1})
		ch.RefuteBroadcast("from_me", nil, 0)
		after()
	})
	contains(t, msg, `unexpected broadcast "from_me" on "room:lobby"`, `got #1: broadcast "from_me" on "room:lobby" {"y":1} (from `)
}

func TestFailJoin(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, newRouter(nil), nil)
		ep.Client(nil).Join("room:lobby", map[string]any{"token": "bad"})
		after()
	})
	contains(t, msg, `join "room:lobby" was refused: status "error", response {"reason":"unauthorized"}`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, newRouter(nil), nil)
		ep.Client(nil).AssertJoinError("room:lobby", secret, nil)
		after()
	})
	contains(t, msg, `join "room:lobby" succeeded with response {"correlation_id":`, `want it refused`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, newRouter(nil), nil)
		ep.Client(nil).AssertJoinError("room:lobby", nil, map[string]any{"reason": "forbidden"})
		after()
	})
	contains(t, msg, `join "room:lobby" refused with an unexpected response`,
		`got:  {"reason":"unauthorized"}`, `$.reason: got "unauthorized", want "forbidden"`)
}

func TestFailTerminated(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("crash", nil)
		ch.AssertTerminated(channel.ErrLeft)
		after()
	})
	contains(t, msg, `channel "room:lobby" (join_ref "1") terminated with reason "channel: handler panicked: boom" (*fallback.PanicError), want "channel: left"`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.AssertTerminated(nil)
		after()
	})
	contains(t, msg, `channel "room:lobby" (join_ref "1") did not terminate within 1s`, `connection: the connection is open`)
}

func TestFailAssertClosedWhenItCrashed(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("crash", nil)
		ch.AssertClosed()
		after()
	})
	contains(t, msg, `no phx_close of "room:lobby" (join_ref "1") within 1s`,
		`["1","1","room:lobby","phx_error",{"reason":"channel_crash"}]`,
		`channel "room:lobby" (join_ref "1") terminated: channel: handler panicked: boom`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Leave()
		ch.AssertError()
		after()
	})
	contains(t, msg, `no phx_error of "room:lobby"`, `"phx_close"`, `terminated: channel: left`)
}

func TestFailAfterServerClosedGivesUpEarly(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, client, ch := joined(ft)
		ch.Push("kick", nil)
		client.AssertDisconnected()
		ch.AssertPush("anything", nil)
		after()
	})
	contains(t, msg, `no push "anything" on "room:lobby" before the connection closed`,
		`connection: the server closed the connection with code 1001 "disconnect"`,
		`terminated: channel: connection closed`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, client, ch := joined(ft)
		ch.Push("kick", nil)
		client.AssertDisconnected()
		ch.Push("echo", nil)
		after()
	})
	contains(t, msg, `cannot send "echo" on "room:lobby": the server closed the connection with code 1001 "disconnect"`)
}

func TestFailAssertDisconnected(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, client, _ := joined(ft)
		client.AssertDisconnected()
		after()
	})
	contains(t, msg, `the server did not close the connection within 1s`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, client, _ := joined(ft)
		client.Close()
		client.AssertDisconnected()
		after()
	})
	contains(t, msg, `AssertDisconnected: the test closed the client, the server did not`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, client, _ := joined(ft)
		client.Close()
		client.Heartbeat()
		after()
	})
	contains(t, msg, `cannot send "heartbeat" on "phoenix": the client was closed by the test`)
}

func TestFailSlowConsumerIsExplained(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, newRouter(nil), &channeltest.Options{MaxFrames: 3})
		ch := ep.Client(nil).Join("room:lobby", secret)
		ch.Push("flood", map[string]any{"n": 5})
		ch.AssertPush("never", nil)
		after()
	})
	contains(t, msg, `code 3008 "slow consumer" after 3 frames waited for assertions (Options.MaxFrames)`)
}

func TestFailAssertFrame(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, client, _ := joined(ft)
		client.AssertFrame("binary frame", func(f *channel.Frame) bool { return f.Payload().IsBinary() })
		after()
	})
	contains(t, msg, `no binary frame within 1s`)
	assert.NotContains(t, msg, "want payload")
}

func TestFailCheckWithTestify(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("echo", map[string]any{"n": 1}).AssertReply("ok", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
			require.Contains(t, p.Map(), "missing_key")
			t.Errorf("not reached")
		}))
		after()
	})
	contains(t, msg, `want payload: a payload accepted by the Check function`, `does not contain "missing_key"`)
	assert.NotContains(t, msg, "not reached")
	assert.NotContains(t, msg, "Error Trace")

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("echo", nil).AssertReply("ok", channeltest.Check(func(*channeltest.CollectT, channel.Payload) { panic("oops") }))
		after()
	})
	contains(t, msg, `Check function panicked: oops`)
}

func TestFailInvalidWantFailsAtOnce(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("echo", nil).AssertReply("ok", channeltest.JSON(`{"a":`))
		after()
	})
	contains(t, msg, `want JSON is not valid JSON`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.RefutePush("x", map[string]any{"f": func() {}}, 0)
		after()
	})
	contains(t, msg, `want map[string]interface {} cannot be encoded as JSON`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.AssertPush("x", channeltest.Subset(channeltest.JSON(`nope`)))
		after()
	})
	contains(t, msg, `want is not valid JSON`)
}

func TestFailBadPayloads(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		ch.Push("echo", channeltest.JSON(`{"a":}`))
		after()
	})
	contains(t, msg, `payload is not valid JSON: {"a":}`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, client, _ := joined(ft)
		client.Join("room:x", make(chan int))
		after()
	})
	contains(t, msg, `cannot encode payload chan int`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, newRouter(nil), nil)
		ch := ep.Client(&channel.ConnectInfo{Serializer: channel.V1}).Join("room:lobby", secret)
		ch.Push("echo", channel.Binary{1})
		after()
	})
	contains(t, msg, `binary payloads need the V2 serializer, the client uses v1`)
}

func TestFailStandaloneHelpers(t *testing.T) {
	p := channel.JSONPayload([]byte(`{"a":1}`))
	msg := failing(t, func(ft *fakeTB, after func()) {
		channeltest.AssertPayload(ft, p, map[string]any{"a": "1"})
		after()
	})
	contains(t, msg, `payload does not match`, `got:  {"a":1}`, `want: {"a":"1"}`, `$.a: got 1, want "1"`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		channeltest.Decode[[]int](ft, p)
		after()
	})
	contains(t, msg, `cannot decode payload {"a":1} into []int`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		f := ch.Push("echo", nil).AssertReply("ok", nil)
		channeltest.AssertWire(ft, f, channel.V2, `["1","2","room:lobby","phx_reply",{"status":"ok","response":{"x":1}}]`)
		after()
	})
	contains(t, msg, `v2 frame differs`, `$[4].response.x: missing, want 1`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		f := ch.Push("binary", nil).AssertReply("ok", nil)
		channeltest.AssertWire(ft, f, channel.V1, `{}`)
		after()
	})
	contains(t, msg, `cannot be encoded with v1`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, _, ch := joined(ft)
		f := ch.Push("binary", nil).AssertReply("ok", nil)
		channeltest.AssertWire(ft, f, channel.V2, "\x01")
		after()
	})
	contains(t, msg, `binary frame differs`)
}

func TestFailNewWithoutRouter(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		channeltest.New(ft, nil, nil)
		after()
	})
	contains(t, msg, `New needs a router`)
}

// A handler that blocks: the mailbox fills, the connection stops taking
// messages, and Close cannot finish. Each is reported instead of hanging.
// The handler is released by a cleanup that runs before the Endpoint's.
func TestFailBlockedHandler(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		release := make(chan struct{})
		ep := channeltest.New(ft, newRouter(release), &channeltest.Options{Server: channel.Options{MailboxSize: 1}})
		ft.Cleanup(func() { close(release) })
		ch := ep.Client(nil).Join("room:lobby", secret)
		ch.Push("block", nil) // runs and blocks
		ch.Push("echo", nil)  // fills the mailbox
		ch.Push("echo", nil)  // Receive waits for room
		ch.Push("echo", nil)  // the read loop is busy: not taken
		after()
	})
	contains(t, msg, `the connection did not take "echo" on "room:lobby" within 1s: a channel mailbox is full and its callback blocked`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		release := make(chan struct{})
		ep := channeltest.New(ft, newRouter(release), nil)
		ft.Cleanup(func() { close(release) })
		client := ep.Client(nil)
		client.Join("room:lobby", secret).Push("block", nil)
		client.Close()
		after()
	})
	contains(t, msg, `Close: the connection did not finish within 1s: a channel callback is blocked`)
}

// Wire mode reports frames a WebSocket could not send, without stopping the
// test.
func TestWireModeReportsUnencodableFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := runFake(t, func(ft *fakeTB) {
			ep := channeltest.New(ft, newRouter(nil), &channeltest.Options{Wire: true})
			ch := ep.Client(&channel.ConnectInfo{Serializer: channel.V1}).Join("room:lobby", secret)
			ch.Push("push_binary", nil)
			ch.AssertPush("bin", channel.Binary{0xff})
			ch.Push("echo", channeltest.JSON(`{}`)).AssertReply("ok", nil)
		})
		assert.Empty(t, ft.fatals)
		require.Len(t, ft.errs, 1)
		contains(t, ft.errs[0], `frame cannot be encoded with v1: channel: binary payloads need the V2 serializer`)
	})
}

func TestFailChannelOnlySeesItsOwnJoin(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		_, client, ch := joined(ft)
		other := client.Join("room:other", secret)
		other.Push("push_back", nil)
		client.AssertPush("pushed", nil) // the socket sees every topic
		other.Push("push_back", nil)
		ch.AssertPush("pushed", nil)
		after()
	})
	contains(t, msg, `no push "pushed" on "room:lobby"`, `"room:other","pushed"`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		_, client, ch := joined(ft)
		ch.Leave().AssertReply("ok", nil)
		client.Join("room:lobby", secret)
		ch.AssertPush("joining", nil) // the rejoin's push has another join_ref
		after()
	})
	contains(t, msg, `no push "joining" on "room:lobby"`, `["3",null,"room:lobby","joining",{"step":1}]`,
		`from another join of the topic: join_ref "3", want "1"`)
}

func TestTimeoutsAreConfigurable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var took time.Duration
		ft := runFake(t, func(ft *fakeTB) {
			ep := channeltest.New(ft, newRouter(nil), &channeltest.Options{Timeout: 3 * time.Second, RefuteTimeout: 250 * time.Millisecond})
			ch := ep.Client(nil).Join("room:lobby", secret)
			start := time.Now()
			ch.RefutePush("x", nil, 0)
			took = time.Since(start)
			ch.AssertPush("never", nil)
		})
		assert.Equal(t, 250*time.Millisecond, took)
		contains(t, ft.fatal(t), `no push "never" on "room:lobby" within 3s`)
	})
}

func TestFailBroadcastsDroppedAtMaxFrames(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, newRouter(nil), &channeltest.Options{MaxFrames: 2})
		client := ep.Client(nil)
		client.Subscribe("news")
		for range 5 {
			ep.Broadcast("news", "item", nil)
		}
		client.AssertBroadcast("other", nil)
		after()
	})
	contains(t, msg, `(2 of 2)`, `3 broadcasts were dropped: more than Options.MaxFrames waited`)
}

func TestFailAfterEndpointClosed(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, newRouter(nil), nil)
		ep.Close()
		ep.Client(nil)
		after()
	})
	contains(t, msg, `channeltest: Client: channel: server closed`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, newRouter(nil), nil)
		client := ep.Client(nil)
		ep.Close()
		client.Subscribe("x")
		after()
	})
	contains(t, msg, `channeltest: subscribe to "x": pubsub: closed`)

	msg = failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, newRouter(nil), nil)
		ep.Close()
		ep.Broadcast("t", "e", nil)
		after()
	})
	contains(t, msg, `channeltest: broadcast "e" on "t": pubsub: closed`)
}
