package channel_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/pyre-go/pyre/channel"
)

// Quotes lets its clients filter its broadcasts: it implements
// channel.Filterable, so the "filter" join param is read for it.
type Quotes struct{ channel.Base }

// FilterLimits keeps the default bounds.
func (*Quotes) FilterLimits() *channel.FilterLimits { return nil }

func (*Quotes) Join(context.Context, *channel.Socket, channel.Payload) (any, error) {
	return nil, nil
}

func (*Quotes) HandleIn(context.Context, *channel.Socket, *channel.Message) (channel.Reply, error) {
	return channel.NoReply, channel.ErrUnhandled
}

// Two clients join "prices:all": one asks for ticks of BTC and ETH only,
// as phoenix.js would with
//
//	socket.channel("prices:all", {filter: {events: ["tick"], where: {symbol: ["BTC", "ETH"]}}})
//
// the other for everything. The server drops the rest for the first before
// anything is queued for it.
func ExampleFilterable() {
	r := channel.NewRouter()
	r.Handle("prices:*", func() channel.Channel { return &Quotes{} })
	srv := channel.NewServer(&channel.Options{Router: r, Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket/websocket?vsn=2.0.0"

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	join := func(params string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			panic(err)
		}
		_ = c.Write(ctx, websocket.MessageText, []byte(`["1","1","prices:all","phx_join",`+params+`]`))
		_, reply, _ := c.Read(ctx)
		fmt.Println(string(reply))
		return c
	}
	some := join(`{"filter":{"events":["tick"],"where":{"symbol":["BTC","ETH"]}}}`)
	defer some.CloseNow()
	all := join(`{}`)
	defer all.CloseNow()

	_ = srv.Broadcast(ctx, "prices:all", "tick", map[string]any{"symbol": "BTC", "price": 97000})
	_ = srv.Broadcast(ctx, "prices:all", "tick", map[string]any{"symbol": "DOGE", "price": 0.4})
	_ = srv.Broadcast(ctx, "prices:all", "news", map[string]any{"symbol": "ETH", "text": "upgrade"})
	_ = srv.Broadcast(ctx, "prices:all", "tick", map[string]any{"symbol": "ETH", "price": 3500})

	read := func(name string, c *websocket.Conn, n int) {
		for range n {
			_, b, _ := c.Read(ctx)
			fmt.Println(name, string(b))
		}
	}
	read("some:", some, 2)
	read("all: ", all, 4)
	fmt.Println("filtered:", srv.Stats().Filtered)
	// Output:
	// ["1","1","prices:all","phx_reply",{"response":{},"status":"ok"}]
	// ["1","1","prices:all","phx_reply",{"response":{},"status":"ok"}]
	// some: [null,null,"prices:all","tick",{"price":97000,"symbol":"BTC"}]
	// some: [null,null,"prices:all","tick",{"price":3500,"symbol":"ETH"}]
	// all:  [null,null,"prices:all","tick",{"price":97000,"symbol":"BTC"}]
	// all:  [null,null,"prices:all","tick",{"price":0.4,"symbol":"DOGE"}]
	// all:  [null,null,"prices:all","news",{"symbol":"ETH","text":"upgrade"}]
	// all:  [null,null,"prices:all","tick",{"price":3500,"symbol":"ETH"}]
	// filtered: 2
}

// A filter on its own: which broadcasts it passes. A malformed filter is a
// *FilterError, which a Filterable channel's join answers with
// {"reason":"invalid filter","detail":…}.
func ExampleParseFilter() {
	f, err := channel.ParseFilter([]byte(`{"except":["typing"],"where":{"user.team":["red","blue"],"urgent":true}}`), nil)
	if err != nil {
		panic(err)
	}
	for _, b := range []struct{ event, payload string }{
		{"msg", `{"user":{"team":"red"},"urgent":true}`},
		{"msg", `{"user":{"team":"green"},"urgent":true}`},
		{"msg", `{"user":{"team":"blue"},"urgent":"yes"}`},
		{"typing", `{"user":{"team":"red"},"urgent":true}`},
		{"presence_diff", `{"joins":{},"leaves":{}}`},
	} {
		fmt.Println(b.event, b.payload, f.Match(b.event, channel.JSONPayload([]byte(b.payload))))
	}
	fmt.Println(f)

	_, err = channel.ParseFilter([]byte(`{"where":{"a.b.c.d.e":1}}`), nil)
	fmt.Println(err)
	// Output:
	// msg {"user":{"team":"red"},"urgent":true} true
	// msg {"user":{"team":"green"},"urgent":true} false
	// msg {"user":{"team":"blue"},"urgent":"yes"} false
	// typing {"user":{"team":"red"},"urgent":true} false
	// presence_diff {"joins":{},"leaves":{}} true
	// {"except":["typing"],"where":{"urgent":true,"user.team":["red","blue"]}}
	// channel: invalid filter: where "a.b.c.d.e": path deeper than 4
}
