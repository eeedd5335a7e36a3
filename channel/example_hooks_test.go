package channel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	"github.com/coder/websocket"
	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/pubsub"
)

// exampleClient dials srv's /socket/websocket and returns helpers to send
// a frame and to receive the next one.
func exampleClient(srv *channel.Server) (send func(string), recv func() string, closeAll func()) {
	mux := http.NewServeMux()
	mux.Handle("/socket/", srv)
	hs := httptest.NewServer(mux)
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, strings.Replace(hs.URL, "http", "ws", 1)+"/socket/websocket?vsn=2.0.0", nil)
	if err != nil {
		panic(err)
	}
	send = func(frame string) { _ = ws.Write(ctx, websocket.MessageText, []byte(frame)) }
	recv = func() string { _, b, _ := ws.Read(ctx); return string(b) }
	closeAll = func() { _ = ws.CloseNow(); _ = srv.Close(); hs.Close() }
	return send, recv, closeAll
}

// Prices pushes its current state after the join reply and relays what
// the application publishes on the PubSub topic "prices" to its client.
type Prices struct {
	channel.Base // default hooks, AfterJoin, SubscribeTopics
}

func (p *Prices) Join(ctx context.Context, s *channel.Socket, _ channel.Payload) (any, error) {
	p.AfterJoin(func(context.Context) { _ = s.Push("state", map[string]int{"btc": 100}) })
	return nil, p.SubscribeTopics(ctx, "prices")
}

func (p *Prices) HandleIn(context.Context, *channel.Socket, *channel.Message) (channel.Reply, error) {
	return channel.NoReply, channel.ErrUnhandled
}

// HandleInfo receives the messages of the subscribed PubSub topics.
func (p *Prices) HandleInfo(_ context.Context, s *channel.Socket, info any) error {
	if m, ok := info.(*pubsub.Message); ok {
		return s.Push(m.Event, json.RawMessage(m.Payload))
	}
	return nil
}

// Base gives a channel the default hooks (correlation ids, unhandled-event
// logs, ping) and the helpers of the after-join and PubSub patterns: the
// state is pushed after the join reply, and application messages on a
// PubSub topic reach HandleInfo.
func ExampleBase() {
	ps := pubsub.NewMemory(nil)
	defer ps.Close()
	router := channel.NewRouter()
	router.Handle("prices:*", func() channel.Channel { return &Prices{} })
	srv := channel.NewServer(&channel.Options{Router: router, PubSub: ps, Logger: slog.New(slog.DiscardHandler)})
	send, recv, done := exampleClient(srv)
	defer done()

	send(`["1","1","prices:live","phx_join",{}]`)
	fmt.Println(recv()) // the join reply
	fmt.Println(recv()) // the state pushed after it
	_ = ps.Broadcast(context.Background(), &pubsub.Message{Topic: "prices", Event: "tick", Payload: []byte(`{"btc":101}`)})
	fmt.Println(recv())
	send(`["1","2","prices:live","ping",{}]`) // answered by Base's Ping hook
	var reply []any
	_ = json.Unmarshal([]byte(recv()), &reply)
	fmt.Println(reply[3], reply[4].(map[string]any)["status"])
	// Output:
	// ["1","1","prices:live","phx_reply",{"response":{},"status":"ok"}]
	// ["1",null,"prices:live","state",{"btc":100}]
	// ["1",null,"prices:live","tick",{"btc":101}]
	// phx_reply ok
}

// Quota allows each channel a fixed number of client pushes.
func Quota(n int64) channel.Middleware {
	return func(next channel.Handler) channel.Handler {
		var used atomic.Int64
		return channel.HandlerFunc(func(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
			if msg.Event != channel.EventJoin && used.Add(1) > n {
				return channel.ErrorReply(channel.ErrorEnvelope("quota", "too many events")["error"]), nil
			}
			return next.Handle(ctx, s, msg)
		})
	}
}

// Echo replies to "echo" with its payload.
type Echo struct{ channel.Base }

func (*Echo) Join(context.Context, *channel.Socket, channel.Payload) (any, error) { return nil, nil }

func (*Echo) HandleIn(_ context.Context, _ *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	if msg.Event == "echo" {
		return channel.OK(msg.Payload), nil
	}
	return channel.NoReply, channel.ErrUnhandled
}

// Hooks keeps Base's hooks and adds a quota: hooks wrap the channel's
// handling like net/http middleware.
func (e *Echo) Hooks() []channel.Middleware {
	return append(e.Base.Hooks(), Quota(1))
}

// A channel adds its own hooks by overriding Hooks (Router.Use adds hooks
// to every channel of a router).
func ExampleHooker() {
	router := channel.NewRouter()
	router.Handle("echo:*", func() channel.Channel { return &Echo{} })
	srv := channel.NewServer(&channel.Options{Router: router, Logger: slog.New(slog.DiscardHandler)})
	send, recv, done := exampleClient(srv)
	defer done()

	send(`["1","1","echo:a","phx_join",{}]`)
	fmt.Println(recv())
	send(`["1","2","echo:a","echo",{"n":1}]`)
	fmt.Println(recv())
	send(`["1","3","echo:a","echo",{"n":2}]`)
	var reply []any
	_ = json.Unmarshal([]byte(recv()), &reply)
	resp := reply[4].(map[string]any)
	fmt.Println(resp["status"], resp["response"].(map[string]any)["code"])
	// Output:
	// ["1","1","echo:a","phx_reply",{"response":{},"status":"ok"}]
	// ["1","2","echo:a","phx_reply",{"response":{"n":1},"status":"ok"}]
	// error quota
}
