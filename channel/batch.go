package channel

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/pyre-go/pyre/batcher"
)

// BatchOptions configure a PushBatcher.
type BatchOptions struct {
	// Event is the pushed event name. Defaults to "event_batch".
	Event string
	// Batcher tunes batch size (50), interval (100 ms), the bound on pending
	// items (500) and the overflow policy (drop oldest). Its Logger and
	// Context default to the channel's.
	Batcher batcher.Options
}

// PushBatcher batches items and pushes them to one channel's client as one
// "event_batch" push:
//
//	[join_ref, null, topic, "event_batch", {"events":[...],"count":N,"timestamp":<unix ms>}]
//
// A batch is pushed when it holds Batcher.Size items or Batcher.Interval
// after its first item, whichever comes first; an empty batch is never
// pushed. The batcher belongs to the channel: when the channel terminates,
// what is buffered is pushed (before phx_close when the client left or the
// channel stopped) and the batcher stops, so none outlives its channel.
type PushBatcher[T any] struct {
	b *batcher.Batcher[T]
}

// NewPushBatcher returns a PushBatcher for the channel of s. Call it from
// the channel's callbacks (typically Join).
func NewPushBatcher[T any](s *Socket, opts *BatchOptions) *PushBatcher[T] {
	var o BatchOptions
	if opts != nil {
		o = *opts
	}
	if o.Event == "" {
		o.Event = "event_batch"
	}
	bo := o.Batcher
	if bo.Logger == nil {
		bo.Logger = s.Logger()
	}
	if bo.Context == nil {
		bo.Context = context.WithoutCancel(s.Context())
	}
	event := o.Event
	pb := &PushBatcher[T]{}
	pb.b = batcher.New(func(_ context.Context, batch []T) {
		err := s.Push(event, batchPayload[T]{Events: batch, Count: len(batch), Timestamp: time.Now().UnixMilli()})
		if err != nil && !errors.Is(err, ErrClosed) {
			s.Logger().LogAttrs(s.Context(), slog.LevelError, "event batch not pushed",
				slog.String("topic", s.Topic()), slog.Any("error", err))
		}
	}, &bo)
	s.OnStop(func(ctx context.Context) { _ = pb.b.Close(ctx) })
	return pb
}

type batchPayload[T any] struct {
	Events    []T   `json:"events"`
	Count     int   `json:"count"`
	Timestamp int64 `json:"timestamp"`
}

// Add buffers an item. It never blocks; it returns batcher.ErrClosed after
// the channel ended, and batcher.ErrFull when items are dropped with the
// DropNewest policy.
func (p *PushBatcher[T]) Add(item T) error { return p.b.Add(item) }

// Dropped returns the number of items dropped by the overflow policy.
func (p *PushBatcher[T]) Dropped() uint64 { return p.b.Dropped() }
