package pubsub_test

import (
	"context"
	"fmt"

	"github.com/pyre-go/pyre/pubsub"
)

// inbox is a subscriber with a bounded queue: Deliver never blocks, and a
// full queue drops the message (a real socket would disconnect instead).
type inbox struct{ ch chan *pubsub.Message }

func (i *inbox) Deliver(m *pubsub.Message) {
	select {
	case i.ch <- m:
	default:
	}
}

func ExampleMemory() {
	ctx := context.Background()
	bus := pubsub.NewMemory(nil)
	defer bus.Close()

	alice := &inbox{ch: make(chan *pubsub.Message, 16)}
	if err := bus.Subscribe(ctx, "room:lobby", alice); err != nil {
		panic(err)
	}
	msg := &pubsub.Message{Topic: "room:lobby", Event: "new_msg", Payload: []byte(`{"body":"hi"}`)}
	if err := bus.BroadcastFrom(ctx, "bob", msg); err != nil {
		panic(err)
	}
	// Delivery is synchronous: the message is queued already.
	got := <-alice.ch
	fmt.Println(got.Event, string(got.Payload), "from", got.From)
	// Output: new_msg {"body":"hi"} from bob
}
