package batcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by [Batcher.Add] after [Batcher.Close] was called.
var ErrClosed = errors.New("batcher: closed")

// ErrFull is returned by [Batcher.Add] when the item was dropped because
// [Options.MaxPending] items are already waiting and the overflow policy is
// [DropNewest]. The drop is also counted by [Batcher.Dropped].
var ErrFull = errors.New("batcher: queue full, item dropped")

// Overflow is what a [Batcher] does with a new item when [Options.MaxPending]
// items are already waiting.
type Overflow int

const (
	// DropOldest drops the oldest waiting item to make room for the new one.
	// Add still succeeds. This keeps the freshest data, which suits live
	// overlays and dashboards.
	DropOldest Overflow = iota
	// DropNewest drops the new item; Add returns [ErrFull].
	DropNewest
)

// String returns the policy's name.
func (o Overflow) String() string {
	switch o {
	case DropOldest:
		return "DropOldest"
	case DropNewest:
		return "DropNewest"
	default:
		return fmt.Sprintf("Overflow(%d)", int(o))
	}
}

// Default option values.
const (
	DefaultSize     = 50
	DefaultInterval = 100 * time.Millisecond
)

// Options configures a [Batcher]. A nil *Options or a zero field means the
// default. New copies the options; changing them afterwards has no effect.
type Options struct {
	// Size is the number of items that triggers a flush; no batch is larger.
	// Defaults to 50 (DefaultSize).
	Size int

	// Interval is the longest an item waits for its batch to fill, measured
	// from the first item of the batch. Defaults to 100 ms (DefaultInterval).
	Interval time.Duration

	// MaxPending bounds the number of items waiting to be flushed (not
	// counting the batch the flush function is working on). Values below
	// Size are raised to Size. Defaults to 10*Size.
	MaxPending int

	// Overflow says which item is dropped when MaxPending items are waiting.
	// Defaults to DropOldest.
	Overflow Overflow

	// Logger receives a warning when items start being dropped and an error
	// when the flush function panics. Defaults to discarding.
	Logger *slog.Logger

	// Context is the parent of the context passed to the flush function and
	// to the logger, so values such as a correlation id reach both. If it is
	// canceled, flushes see a canceled context but the Batcher keeps running
	// until Close. Defaults to context.Background().
	Context context.Context
}

// Batcher collects items and passes them in batches to a flush function.
// Its methods are safe for concurrent use.
type Batcher[T any] struct {
	flush      func(context.Context, []T)
	size       int
	interval   time.Duration
	maxPending int
	overflow   Overflow
	logger     *slog.Logger
	ctx        context.Context // passed to flush; canceled by Close
	cancel     context.CancelFunc
	epoch      time.Time // base for item timestamps (monotonic)

	wake    chan struct{} // buffer 1: tells the loop to re-check now
	dropped atomic.Uint64

	mu          sync.Mutex
	q           ring[T]
	running     bool          // the loop goroutine is alive; invariant: q.n > 0 implies running
	done        chan struct{} // closed when the current loop goroutine exits
	closed      bool          // Close was called
	abort       bool          // Close's ctx ended: discard instead of flushing
	overflowing bool          // a drop happened since the last flush (warn once per episode)
}

// New returns a Batcher that calls flush with each batch. flush runs on the
// Batcher's own goroutine, one batch at a time, in the order items were
// added; it receives a new slice each time and may keep it. It should return
// promptly once its ctx is done. New panics if flush is nil.
//
// The Batcher starts no goroutine until the first [Batcher.Add]. Call
// [Batcher.Close] to flush the remaining items and release it.
func New[T any](flush func(ctx context.Context, batch []T), opts *Options) *Batcher[T] {
	if flush == nil {
		panic("batcher: New called with a nil flush function")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 10 * o.Size
	}
	o.MaxPending = max(o.MaxPending, o.Size)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	ctx, cancel := context.WithCancel(o.Context)
	return &Batcher[T]{
		flush:      flush,
		size:       o.Size,
		interval:   o.Interval,
		maxPending: o.MaxPending,
		overflow:   o.Overflow,
		logger:     o.Logger,
		ctx:        ctx,
		cancel:     cancel,
		epoch:      time.Now(),
		wake:       make(chan struct{}, 1),
	}
}

// Add queues item for the next batch. It never waits for the flush function.
// It returns [ErrClosed] after Close, and [ErrFull] when the queue is full
// and the policy is [DropNewest]. With [DropOldest] a full queue drops the
// oldest waiting item and Add returns nil.
func (b *Batcher[T]) Add(item T) error {
	at := time.Since(b.epoch)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	var err error
	firstDrop := false
	if b.q.n >= b.maxPending {
		b.dropped.Add(1)
		firstDrop = !b.overflowing
		b.overflowing = true
		if b.overflow == DropNewest {
			err = ErrFull
		} else {
			b.q.dropFront()
		}
	}
	if err == nil {
		b.q.push(entry[T]{v: item, at: at}, b.maxPending)
	}
	switch {
	case !b.running:
		b.running = true
		b.done = make(chan struct{})
		go b.loop(b.done)
	case b.q.n == b.size:
		b.signal()
	}
	b.mu.Unlock()

	if firstDrop {
		b.logger.WarnContext(b.ctx, "batcher: queue full, dropping items",
			"max_pending", b.maxPending, "policy", b.overflow.String())
	}
	return err
}

// signal wakes the loop without blocking.
func (b *Batcher[T]) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Dropped returns the number of items dropped so far: by the overflow policy,
// and by a Close whose ctx ended before everything was flushed.
func (b *Batcher[T]) Dropped() uint64 {
	return b.dropped.Load()
}

// Pending returns the number of items waiting to be flushed, not counting a
// batch the flush function is working on.
func (b *Batcher[T]) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.q.n
}

// Close stops accepting items, flushes everything still buffered (in batches
// of at most Size, without waiting for Interval) and waits for the Batcher's
// goroutine to exit.
//
// If ctx ends first, Close cancels the context of the running flush, tells
// the goroutine to discard the items not yet flushed (they are counted by
// [Batcher.Dropped]) and returns ctx.Err() without waiting further; the
// goroutine exits as soon as the running flush returns. Calling Close again
// waits for that exit. Close is idempotent: once the goroutine has exited,
// every call returns nil.
func (b *Batcher[T]) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	done := b.done
	running := b.running
	b.mu.Unlock()

	if running {
		b.signal()
		select {
		case <-done:
		case <-ctx.Done():
			select {
			case <-done: // finished just in time
				b.cancel()
				return nil
			default:
			}
			b.mu.Lock()
			b.abort = true
			b.mu.Unlock()
			b.cancel()
			b.signal()
			return ctx.Err()
		}
	}
	b.cancel()
	return nil
}

// loop flushes batches until the queue is empty, then exits. Only one loop
// runs at a time (guarded by running); done is closed on exit.
func (b *Batcher[T]) loop(done chan struct{}) {
	defer close(done)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		b.mu.Lock()
		if b.abort && b.q.n > 0 {
			b.dropped.Add(uint64(b.q.n))
			b.q.clear()
		}
		if b.q.n == 0 {
			b.running = false
			b.q.release(2 * b.size)
			b.mu.Unlock()
			return
		}
		if b.q.n < b.size && !b.closed {
			wait := b.q.front().at + b.interval - time.Since(b.epoch)
			if wait > 0 {
				b.mu.Unlock()
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-timer.C:
				case <-b.wake:
					timer.Stop()
				}
				continue
			}
		}
		batch := b.q.take(min(b.q.n, b.size))
		b.overflowing = false
		b.mu.Unlock()
		b.callFlush(batch)
	}
}

// callFlush runs the flush function, containing a panic.
func (b *Batcher[T]) callFlush(batch []T) {
	defer func() {
		if r := recover(); r != nil {
			b.logger.ErrorContext(b.ctx, "batcher: flush function panicked",
				"panic", fmt.Sprint(r), "batch_size", len(batch), "stack", string(debug.Stack()))
		}
	}()
	b.flush(b.ctx, batch)
}
