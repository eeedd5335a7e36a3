package channel_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pyre-go/pyre/channel"
)

// Pinger replies to "echo" only.
type Pinger struct{ channel.Base }

func (*Pinger) Join(context.Context, *channel.Socket, channel.Payload) (any, error) { return nil, nil }

func (*Pinger) HandleIn(_ context.Context, _ *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	if msg.Event == "echo" {
		return channel.OK(msg.Payload), nil
	}
	return channel.NoReply, channel.ErrUnhandled
}

// An Observer follows joins, client events and leaves, for metrics or
// tracing (package channel/promchannel is one). Its functions run on the
// goroutines doing the work, after the reply is queued.
func ExampleServer_Observe() {
	router := channel.NewRouter()
	router.Handle("echo:*", func() channel.Channel { return &Pinger{} })
	srv := channel.NewServer(&channel.Options{Router: router, Logger: slog.New(slog.DiscardHandler)})
	seen := make(chan string, 8)
	remove := srv.Observe(&channel.Observer{
		Join: func(i channel.JoinInfo) {
			seen <- fmt.Sprintf("join %s ok=%v refusal=%q", i.Pattern, i.OK, i.Refusal)
		},
		Event: func(i channel.EventInfo) { seen <- fmt.Sprintf("event %s %s: %s", i.Pattern, i.Event, i.Status) },
		Leave: func(i channel.LeaveInfo) { seen <- fmt.Sprintf("leave %s: %v", i.Pattern, i.Reason) },
	})
	defer remove()
	send, recv, done := exampleClient(srv)
	defer done()

	send(`["1","1","nope:a","phx_join",{}]`)
	recv()
	send(`["2","2","echo:a","phx_join",{}]`)
	recv()
	send(`["2","3","echo:a","echo",{}]`)
	recv()
	send(`["2","4","echo:a","shout",{}]`) // the channel does not know it
	send(`["2","5","echo:a","phx_leave",{}]`)
	for range 5 {
		fmt.Println(<-seen)
	}
	// Output:
	// join  ok=false refusal="unmatched_topic"
	// join echo:* ok=true refusal=""
	// event echo:* echo: ok
	// event echo:* shout: unhandled
	// leave echo:*: channel: left
}
