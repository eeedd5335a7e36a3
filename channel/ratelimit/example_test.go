package ratelimit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/ratelimit"
)

// Chat replies to "say" with its payload.
type Chat struct{ channel.Base }

func (*Chat) Join(context.Context, *channel.Socket, channel.Payload) (any, error) { return nil, nil }

func (*Chat) HandleIn(_ context.Context, _ *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	if msg.Event == "say" {
		return channel.OK(msg.Payload), nil
	}
	return channel.NoReply, channel.ErrUnhandled
}

// sayLimit allows each connection two "say" a minute across all its
// channels. One value shared by every join, so that they share a limiter.
var sayLimit = ratelimit.New(&ratelimit.Options{
	Limit:  rate.Every(30 * time.Second),
	Burst:  2,
	Scope:  ratelimit.PerConnection,
	Events: []string{"say"},
})

// Hooks adds the limit to Base's hooks.
func (c *Chat) Hooks() []channel.Middleware { return append(c.Base.Hooks(), sayLimit) }

// A channel limits its clients' events by adding the hook to its Hooks;
// the third "say" of the connection within the minute is answered with the
// "rate_limited" error envelope, while "ping" is served.
func Example() {
	router := channel.NewRouter()
	router.Handle("chat:*", func() channel.Channel { return &Chat{} })
	srv := channel.NewServer(&channel.Options{Router: router, Logger: slog.New(slog.DiscardHandler)})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, strings.Replace(hs.URL, "http", "ws", 1)+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		panic(err)
	}
	defer ws.CloseNow()
	send := func(frame string) { _ = ws.Write(ctx, websocket.MessageText, []byte(frame)) }
	recv := func() string { _, b, _ := ws.Read(ctx); return string(b) }

	send(`["1","1","chat:a","phx_join",{}]`)
	send(`["2","2","chat:b","phx_join",{}]`)
	fmt.Println(recv())
	fmt.Println(recv())
	send(`["1","3","chat:a","say",{"n":1}]`)
	fmt.Println(recv())
	send(`["2","4","chat:b","say",{"n":2}]`)
	fmt.Println(recv())
	send(`["1","5","chat:a","say",{"n":3}]`)
	var reply []any
	_ = json.Unmarshal([]byte(recv()), &reply)
	resp := reply[4].(map[string]any)
	fmt.Println(reply[1], resp["status"], resp["response"].(map[string]any)["error"].(map[string]any)["code"])
	send(`["1","6","chat:a","ping",{}]`)
	_ = json.Unmarshal([]byte(recv()), &reply)
	fmt.Println(reply[1], reply[4].(map[string]any)["status"])
	// Output:
	// ["1","1","chat:a","phx_reply",{"response":{},"status":"ok"}]
	// ["2","2","chat:b","phx_reply",{"response":{},"status":"ok"}]
	// ["1","3","chat:a","phx_reply",{"response":{"n":1},"status":"ok"}]
	// ["2","4","chat:b","phx_reply",{"response":{"n":2},"status":"ok"}]
	// 5 error rate_limited
	// 6 ok
}
