// Package batcher groups items into batches and hands each batch to a flush
// function, so that many small events can be sent as one message.
//
// A batch is flushed as soon as it holds [Options.Size] items (default 50)
// or when [Options.Interval] (default 100 ms) has passed since its first
// item was added, whichever comes first; an empty batch is never flushed.
// [Batcher.Close] flushes what is still buffered instead of discarding it,
// the queue is bounded, and a panicking flush function does not stop the
// batcher. channel.NewPushBatcher wraps a Batcher for a joined channel, and
// pyre's reference server (examples/landale) uses it to deliver events as
// "event_batch" pushes.
//
// Create one with [New], feed it with [Batcher.Add] from any number of
// goroutines, and stop it with [Batcher.Close]. From the example of New
// that builds an "event_batch" payload:
//
//	b := batcher.New(func(ctx context.Context, events []event) {
//		push(ctx, "event_batch", map[string]any{
//			"events":    events,
//			"count":     len(events),
//			"timestamp": 1700000000000, // time.Now().UnixMilli() in real code
//		})
//	}, nil) // defaults: 50 items or 100 ms
//
//	_ = b.Add(event{1, "channel.follow"})
//	_ = b.Add(event{2, "channel.cheer"})
//	_ = b.Close(context.Background())
//
// # Goroutines
//
// A Batcher owns at most one goroutine, which calls the flush function for
// one batch at a time, in order. It is started by the first Add after an idle
// period and exits once the queue is empty, so an idle Batcher has no
// goroutine. Close waits for it.
//
// # Slow consumers
//
// Add never waits for the flush function. While a flush runs, new items wait
// in a queue of at most [Options.MaxPending] items; when it is full,
// [Options.Overflow] decides whether the oldest waiting item ([DropOldest],
// the default) or the new one ([DropNewest]) is dropped. Drops are counted by
// [Batcher.Dropped]. Memory is therefore bounded by MaxPending items plus the
// batch being flushed.
package batcher
