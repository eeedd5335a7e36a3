package redis_test

import (
	"context"
	"log"
	"log/slog"
	"os"

	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/redis"
)

func Example() {
	ctx := context.Background()
	bus, err := redis.New(ctx, &redis.Options{
		URL:    "redis://127.0.0.1:6379/0",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err) // only for invalid options: an absent Redis is retried
	}
	defer bus.Close()

	var inbox pubsub.SubscriberFunc = func(m *pubsub.Message) { log.Printf("%s %s", m.Event, m.Payload) }
	_ = bus.Subscribe(ctx, "room:lobby", &inbox)
	err = bus.Broadcast(ctx, &pubsub.Message{Topic: "room:lobby", Event: "new_msg", Payload: []byte(`{"body":"hi"}`)})
	if err != nil {
		log.Printf("other nodes may have missed it: %v", err) // local subscribers have it
	}
}
