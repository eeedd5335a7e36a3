package nats_test

import (
	"context"
	"log"

	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/nats"
)

func Example() {
	ctx := context.Background()
	bus, err := nats.New(ctx, &nats.Options{URL: "nats://127.0.0.1:4222"})
	if err != nil {
		log.Fatal(err) // only for invalid options: an absent server is retried
	}
	defer bus.Close()

	var inbox pubsub.SubscriberFunc = func(m *pubsub.Message) { log.Printf("%s %s", m.Event, m.Payload) }
	_ = bus.Subscribe(ctx, "room:lobby", &inbox)
	if err := bus.Broadcast(ctx, &pubsub.Message{Topic: "room:lobby", Event: "new_msg", Payload: []byte(`{}`)}); err != nil {
		log.Printf("other nodes may have missed it: %v", err)
	}
}
