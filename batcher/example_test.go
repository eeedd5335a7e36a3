package batcher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pyre-go/pyre/batcher"
)

func ExampleNew() {
	b := batcher.New(func(ctx context.Context, batch []int) {
		fmt.Println(batch)
	}, &batcher.Options{Size: 3, Interval: time.Hour})

	for i := 1; i <= 7; i++ {
		_ = b.Add(i)
	}
	// Close flushes the last, partial batch.
	if err := b.Close(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(b.Add(8))
	// Output:
	// [1 2 3]
	// [4 5 6]
	// [7]
	// batcher: closed
}

// This example builds an "event_batch" payload ({"events","count",
// "timestamp"}), as a channel would push it to its socket; push stands in
// for the socket's push (channel.NewPushBatcher does this for a channel).
func ExampleNew_eventBatch() {
	type event struct {
		ID   int    `json:"id"`
		Type string `json:"type"`
	}
	push := func(ctx context.Context, event string, payload any) {
		b, _ := json.Marshal(payload)
		fmt.Println(event, string(b))
	}
	b := batcher.New(func(ctx context.Context, events []event) {
		push(ctx, "event_batch", map[string]any{
			"events":    events,
			"count":     len(events),
			"timestamp": 1700000000000, // time.Now().UnixMilli() in real code
		})
	}, nil) // defaults: 50 items or 100 ms

	_ = b.Add(event{1, "channel.follow"})
	_ = b.Add(event{2, "channel.cheer"})
	_ = b.Close(context.Background())
	// Output:
	// event_batch {"count":2,"events":[{"id":1,"type":"channel.follow"},{"id":2,"type":"channel.cheer"}],"timestamp":1700000000000}
}
