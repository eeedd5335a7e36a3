package channeltest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
)

// Counter is the channel the examples test. A client joins "counter:<name>"
// with a start value; "inc" adds one, replies with the count and broadcasts
// it to everyone on the topic.
type Counter struct {
	channel.Base
	n int
}

// Join refuses sockets without a user and pushes the count after the reply.
func (c *Counter) Join(_ context.Context, s *channel.Socket, p channel.Payload) (any, error) {
	if s.Assigns()["user_id"] == nil {
		return nil, channel.Refuse(map[string]string{"reason": "unauthorized"})
	}
	var params struct {
		Start int `json:"start"`
	}
	if err := p.Decode(&params); err != nil {
		return nil, channel.Refuse(map[string]string{"reason": "bad params"})
	}
	c.n = params.Start
	c.AfterJoin(func(context.Context) { _ = s.Push("count", map[string]int{"n": c.n}) })
	return map[string]any{"n": c.n, "topic": s.Topic()}, nil
}

// HandleIn handles "inc" and "boom"; the Base hooks answer "ping".
func (c *Counter) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	switch msg.Event {
	case "inc":
		c.n++
		if err := s.Broadcast(ctx, "count", map[string]int{"n": c.n}); err != nil {
			return channel.NoReply, err
		}
		return channel.OK(map[string]int{"n": c.n}), nil
	case "boom":
		panic("counter overflow")
	}
	return channel.NoReply, channel.ErrUnhandled
}

func counterRouter() *channel.Router {
	r := channel.NewRouter()
	r.Handle("counter:*", func() channel.Channel { return &Counter{} })
	return r
}

// exampleT stands in for the *testing.T a test function receives, which
// Example functions do not have: in a test, pass t to channeltest.New.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func newExampleT() *exampleT                          { return &exampleT{} }
func (t *exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, args ...any) { fmt.Printf("FAIL: "+format+"\n", args...) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) FailNow()                          { panic("FailNow") }

func (t *exampleT) finish() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// The life of a channel in one test: join, push, replies, pushes,
// broadcasts, leave.
func Example() {
	t := newExampleT() // in a test: t *testing.T
	defer t.finish()

	ep := channeltest.New(t, counterRouter(), nil)
	client := ep.Client(&channel.ConnectInfo{Assigns: map[string]any{"user_id": 7}})
	ch := client.SubscribeAndJoin("counter:a", map[string]any{"start": 41})
	fmt.Println("joined:", ch.JoinReply().Payload())

	// The after-join push.
	ch.AssertPush("count", map[string]int{"n": 41})

	// A push and its reply, then the broadcast as the PubSub carried it and
	// as it reached this client.
	ch.Push("inc", nil).AssertReply("ok", map[string]int{"n": 42})
	b := ch.AssertBroadcast("count", nil)
	fmt.Println("broadcast:", b.Event, b.Payload)
	f := ch.AssertPush("count", channeltest.JSON(`{"n": 42}`))
	fmt.Println("pushed:", f)
	ch.RefutePush("count", nil, 0)

	ch.Leave().AssertReply("ok", nil)
	ch.AssertClosed()
	fmt.Println("terminated:", ch.AssertTerminated(channel.ErrLeft))
	// Output:
	// joined: {"n":41,"topic":"counter:a"}
	// broadcast: count {"n":42}
	// pushed: [null,null,"counter:a","count",{"n":42}]
	// terminated: channel: left
}

// A refused join, like assert {:error, %{reason: "unauthorized"}} =
// subscribe_and_join(socket, "counter:a").
func ExampleClient_AssertJoinError() {
	t := newExampleT()
	defer t.finish()

	ep := channeltest.New(t, counterRouter(), nil)
	client := ep.Client(nil) // no user_id assign
	reply := client.AssertJoinError("counter:a", nil, map[string]string{"reason": "unauthorized"})
	fmt.Println(reply.Status(), reply.Payload())
	// Output:
	// error {"reason":"unauthorized"}
}

// A handler that panics crashes its channel only: the client gets
// phx_error, Terminate gets a *channel.PanicError, and the topic can be
// joined again.
func ExampleChannel_AssertError() {
	t := newExampleT()
	defer t.finish()

	ep := channeltest.New(t, counterRouter(), nil)
	client := ep.Client(&channel.ConnectInfo{Assigns: map[string]any{"user_id": 7}})
	ch := client.Join("counter:a", nil)
	ch.AssertPush("count", nil)

	ch.Push("boom", nil).RefuteReply(0)
	fmt.Println(ch.AssertError())
	var pe *channel.PanicError
	fmt.Println(errors.As(ch.AssertTerminated(channel.ErrPanic), &pe), pe.Value)

	again := client.Join("counter:a", map[string]any{"start": 1})
	again.Push("inc", nil).AssertReply("ok", map[string]int{"n": 2})
	// Output:
	// ["1","1","counter:a","phx_error",{"reason":"channel_crash"}]
	// true counter overflow
}

// Payload checks with testify: inside a Check matcher (the frame must
// pass), or on the frame an assertion returns.
func ExampleCheck() {
	t := newExampleT()
	defer t.finish()

	ep := channeltest.New(t, counterRouter(), nil)
	ch := ep.Client(&channel.ConnectInfo{Assigns: map[string]any{"user_id": 7}}).Join("counter:a", nil)

	// channel.Base's ping hook answers with a timestamp.
	f := ch.Push("ping", nil).AssertReply("ok", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
		m := p.Map()
		require.Equal(t, true, m["pong"])
		assert.Greater(t, m["timestamp"], 0.0)
	}))

	type pong struct {
		Pong bool `json:"pong"`
	}
	fmt.Println(channeltest.Decode[pong](t, f.Payload()).Pong)
	// Output:
	// true
}

// The exact wire shape: JSON compares structure, types and values (not key
// order or white space); AssertWire checks a whole frame as the WebSocket
// transport would encode it.
func ExampleJSON() {
	t := newExampleT()
	defer t.finish()

	ep := channeltest.New(t, counterRouter(), nil)
	ch := ep.Client(&channel.ConnectInfo{Assigns: map[string]any{"user_id": 7}}).Join("counter:a", map[string]any{"start": 1})
	channeltest.AssertPayload(t, ch.JoinReply().Payload(), channeltest.JSON(`{"topic": "counter:a", "n": 1}`))

	f := ch.Push("inc", nil).AssertReply("ok", channeltest.JSON(`{"n":2}`))
	channeltest.AssertWire(t, f, channel.V2, `["1","2","counter:a","phx_reply",{"status":"ok","response":{"n":2}}]`)
	channeltest.AssertWire(t, f, channel.V1, `{"event":"phx_reply","payload":{"response":{"n":2},"status":"ok"},"ref":"2","topic":"counter:a"}`)
	fmt.Println("ok")
	// Output:
	// ok
}

// Connect runs the socket's connect step, like Phoenix's connect/3;
// Client skips it, like socket/3.
func ExampleEndpoint_Connect() {
	t := newExampleT()
	defer t.finish()

	opts := &channeltest.Options{Server: channel.Options{
		Connect: func(_ context.Context, info *channel.ConnectInfo) error {
			if info.Params["token"] != "s3cret" {
				return errors.New("invalid token")
			}
			info.ID = "user_socket:7"
			info.Assigns = map[string]any{"user_id": 7}
			return nil
		},
	}}
	ep := channeltest.New(t, counterRouter(), opts)

	_, err := ep.Connect(&channel.ConnectInfo{Params: map[string]any{"token": "wrong"}})
	fmt.Println(err)

	client, err := ep.Connect(&channel.ConnectInfo{Params: map[string]any{"token": "s3cret"}})
	fmt.Println(err, client.ID())
	client.Join("counter:a", nil)

	// A "disconnect" broadcast to the socket id closes the connection.
	ep.Broadcast("user_socket:7", "disconnect", nil)
	fmt.Println(client.AssertDisconnected())
	// Output:
	// invalid token
	// <nil> user_socket:7
	// 1001 disconnect
}
