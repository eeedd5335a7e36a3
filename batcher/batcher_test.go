package batcher_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"log/slog"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/batcher"
)

// recorder records the batches it is given and when (relative to start).
type recorder[T any] struct {
	start   time.Time
	mu      sync.Mutex
	batches [][]T
	at      []time.Duration
}

func newRecorder[T any]() *recorder[T] { return &recorder[T]{start: time.Now()} }

func (r *recorder[T]) flush(_ context.Context, b []T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, b)
	r.at = append(r.at, time.Since(r.start))
}

func (r *recorder[T]) get() ([][]T, []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]T(nil), r.batches...), append([]time.Duration(nil), r.at...)
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func addAll(t *testing.T, b *batcher.Batcher[int], items []int) {
	t.Helper()
	for _, i := range items {
		require.NoError(t, b.Add(i))
	}
}

func TestFlushOnSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder[int]()
		b := batcher.New(r.flush, &batcher.Options{Size: 5, Interval: time.Second})
		defer b.Close(context.Background())

		addAll(t, b, seq(0, 4))
		synctest.Wait()
		batches, _ := r.get()
		assert.Empty(t, batches, "no flush below Size")

		addAll(t, b, []int{4})
		synctest.Wait()
		batches, at := r.get()
		require.Equal(t, [][]int{{0, 1, 2, 3, 4}}, batches)
		assert.Zero(t, at[0], "a full batch is flushed at once, without waiting for Interval")
	})
}

func TestFlushOnIntervalFromFirstItem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder[int]()
		b := batcher.New(r.flush, &batcher.Options{Size: 50, Interval: 100 * time.Millisecond})
		defer b.Close(context.Background())

		addAll(t, b, []int{1})
		time.Sleep(60 * time.Millisecond)
		addAll(t, b, []int{2})
		time.Sleep(39 * time.Millisecond)
		synctest.Wait()
		batches, _ := r.get()
		require.Empty(t, batches, "flushed before Interval")

		time.Sleep(1 * time.Millisecond)
		synctest.Wait()
		batches, at := r.get()
		require.Equal(t, [][]int{{1, 2}}, batches)
		assert.Equal(t, 100*time.Millisecond, at[0], "Interval counts from the first buffered item")

		// The next batch gets its own window, starting at its first item.
		time.Sleep(500 * time.Millisecond)
		addAll(t, b, []int{3})
		time.Sleep(time.Second)
		batches, at = r.get()
		require.Equal(t, [][]int{{1, 2}, {3}}, batches)
		assert.Equal(t, 700*time.Millisecond, at[1])
	})
}

func TestNeverFlushesEmptyBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder[int]()
		b := batcher.New(r.flush, &batcher.Options{Size: 3, Interval: 10 * time.Millisecond})

		time.Sleep(time.Second)
		addAll(t, b, seq(0, 3)) // size flush
		time.Sleep(time.Second)
		addAll(t, b, []int{3}) // interval flush
		time.Sleep(time.Second)
		require.NoError(t, b.Close(context.Background()))

		batches, _ := r.get()
		assert.Equal(t, [][]int{{0, 1, 2}, {3}}, batches)
	})
}

func TestOrderAcrossBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder[int]()
		b := batcher.New(r.flush, &batcher.Options{Size: 50, Interval: 100 * time.Millisecond})
		defer b.Close(context.Background())

		addAll(t, b, seq(0, 125))
		time.Sleep(time.Second)
		batches, at := r.get()
		require.Equal(t, [][]int{seq(0, 50), seq(50, 100), seq(100, 125)}, batches)
		assert.Equal(t, []time.Duration{0, 0, 100 * time.Millisecond}, at)
	})
}

func TestDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		unblock := sync.OnceFunc(func() { close(release) })
		r := newRecorder[int]()
		b := batcher.New(func(ctx context.Context, batch []int) {
			r.flush(ctx, batch)
			<-release
		}, nil)
		defer b.Close(context.Background())
		defer unblock()

		addAll(t, b, seq(0, 49))
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		batches, _ := r.get()
		require.Empty(t, batches)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		batches, at := r.get()
		require.Equal(t, [][]int{seq(0, 49)}, batches, "default Interval is 100ms")
		assert.Equal(t, 100*time.Millisecond, at[0])

		// The flush is blocked; the default MaxPending is 10*50 = 500.
		addAll(t, b, seq(49, 49+500))
		assert.Zero(t, b.Dropped())
		addAll(t, b, []int{549})
		assert.Equal(t, uint64(1), b.Dropped(), "default MaxPending is 500")
		assert.Equal(t, 500, b.Pending())

		unblock()
		require.NoError(t, b.Close(context.Background()))
		batches, _ = r.get()
		require.Len(t, batches, 11, "then batches of the default Size 50")
		for _, batch := range batches[1:] {
			assert.Len(t, batch, 50)
		}
		assert.Equal(t, 50, batches[1][0], "DropOldest is the default: item 49 was dropped")
	})
}

func TestOverflow(t *testing.T) {
	for _, tc := range []struct {
		policy  batcher.Overflow
		wantErr error
		want    []int // items flushed after the blocked first batch
	}{
		{batcher.DropOldest, nil, seq(7, 12)},
		{batcher.DropNewest, batcher.ErrFull, seq(2, 7)},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs bytes.Buffer
				release := make(chan struct{})
				unblock := sync.OnceFunc(func() { close(release) })
				r := newRecorder[int]()
				b := batcher.New(func(ctx context.Context, batch []int) {
					r.flush(ctx, batch)
					<-release
				}, &batcher.Options{
					Size: 2, MaxPending: 5, Overflow: tc.policy, Interval: time.Hour,
					Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				})

				defer b.Close(context.Background())
				defer unblock()

				addAll(t, b, seq(0, 2))
				synctest.Wait() // 0,1 are being flushed (blocked)
				addAll(t, b, seq(2, 7))
				require.Equal(t, 5, b.Pending())
				assert.Zero(t, b.Dropped())

				for i := 7; i < 12; i++ {
					err := b.Add(i) // must not block although flush is stuck
					if tc.wantErr != nil {
						require.ErrorIs(t, err, tc.wantErr)
					} else {
						require.NoError(t, err)
					}
				}
				assert.Equal(t, uint64(5), b.Dropped())
				assert.Equal(t, 5, b.Pending(), "the queue stays bounded")
				assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("dropping items")),
					"one warning per overflow episode: %s", logs.String())

				unblock()
				require.NoError(t, b.Close(context.Background()))
				batches, _ := r.get()
				var rest []int
				for _, batch := range batches[1:] {
					rest = append(rest, batch...)
				}
				assert.Equal(t, []int{0, 1}, batches[0])
				assert.Equal(t, tc.want, rest)
			})
		})
	}
}

func TestMaxPendingBelowSizeIsRaised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		b := batcher.New(func(context.Context, []int) { <-release }, &batcher.Options{Size: 10, MaxPending: 3})
		addAll(t, b, seq(0, 10)) // first batch, now being flushed
		synctest.Wait()
		addAll(t, b, seq(10, 20))
		assert.Zero(t, b.Dropped(), "MaxPending is at least Size")
		addAll(t, b, []int{20})
		assert.Equal(t, uint64(1), b.Dropped())
		close(release)
		require.NoError(t, b.Close(context.Background()))
	})
}

func TestCloseFlushesRemainder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder[int]()
		b := batcher.New(r.flush, &batcher.Options{Size: 4, Interval: time.Hour})
		addAll(t, b, seq(0, 10))
		synctest.Wait()

		require.NoError(t, b.Close(context.Background()))
		batches, at := r.get()
		assert.Equal(t, [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}, batches)
		assert.Equal(t, []time.Duration{0, 0, 0}, at, "Close does not wait for Interval")
		assert.Zero(t, b.Dropped())

		assert.ErrorIs(t, b.Add(10), batcher.ErrClosed)
		assert.NoError(t, b.Close(context.Background()), "Close is idempotent")
		batches, _ = r.get()
		assert.Len(t, batches, 3)
	})
}

func TestCloseUnused(t *testing.T) {
	t.Parallel()
	b := batcher.New(func(context.Context, []string) { t.Error("flush called") }, nil)
	require.NoError(t, b.Close(context.Background()))
	require.ErrorIs(t, b.Add("x"), batcher.ErrClosed)
}

func TestCloseContextEnds(t *testing.T) {
	t.Run("flush honours ctx", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var flushErr error
			calls := 0
			b := batcher.New(func(ctx context.Context, batch []int) {
				calls++
				<-ctx.Done() // a push to a client that never reads
				flushErr = ctx.Err()
			}, &batcher.Options{Size: 2})
			addAll(t, b, seq(0, 5)) // 0,1 in flight; 2,3,4 waiting
			synctest.Wait()

			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			err := b.Close(ctx)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, time.Second, time.Since(start))

			require.NoError(t, b.Close(context.Background()), "a second Close waits for the goroutine")
			assert.ErrorIs(t, flushErr, context.Canceled, "Close cancels the running flush")
			assert.Equal(t, 1, calls, "items not yet flushed are discarded")
			assert.Equal(t, uint64(3), b.Dropped())
		})
	})
	t.Run("flush ignores ctx", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			b := batcher.New(func(context.Context, []int) { <-release }, &batcher.Options{Size: 1})
			addAll(t, b, []int{1})
			synctest.Wait()

			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			require.ErrorIs(t, b.Close(ctx), context.DeadlineExceeded)

			ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
			defer cancel2()
			require.ErrorIs(t, b.Close(ctx2), context.DeadlineExceeded, "still stuck")

			close(release)
			require.NoError(t, b.Close(context.Background()))
		})
	})
}

func TestFlushPanicIsContained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		r := newRecorder[int]()
		b := batcher.New(func(ctx context.Context, batch []int) {
			if batch[0] == 0 {
				panic("boom")
			}
			r.flush(ctx, batch)
		}, &batcher.Options{Size: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

		addAll(t, b, seq(0, 4))
		synctest.Wait()
		require.NoError(t, b.Close(context.Background()))

		batches, _ := r.get()
		assert.Equal(t, [][]int{{2, 3}}, batches, "the batcher keeps working after a panic")
		assert.Contains(t, logs.String(), "flush function panicked")
		assert.Contains(t, logs.String(), "panic=boom")
	})
}

func TestIdleBatcherHasNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder[int]()
		b := batcher.New(r.flush, &batcher.Options{Size: 10, Interval: 50 * time.Millisecond})
		assert.False(t, b.Running())

		addAll(t, b, seq(0, 3))
		assert.True(t, b.Running())
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		assert.False(t, b.Running(), "goroutine exits once the queue is empty")

		addAll(t, b, seq(3, 5)) // restarts lazily
		time.Sleep(time.Second)
		batches, _ := r.get()
		assert.Equal(t, [][]int{{0, 1, 2}, {3, 4}}, batches)
		// No Close: synctest.Test would report a goroutine left blocked.
	})
}

func TestFlushGetsFreshSliceAndContext(t *testing.T) {
	type key struct{}
	synctest.Test(t, func(t *testing.T) {
		var kept [][]string
		var ctxErrs []error
		var vals []any
		parent := context.WithValue(context.Background(), key{}, "conn-1")
		b := batcher.New(func(ctx context.Context, batch []string) {
			kept = append(kept, batch)
			ctxErrs = append(ctxErrs, ctx.Err())
			vals = append(vals, ctx.Value(key{}))
			batch[0] = "scribbled" // allowed: the slice belongs to flush
		}, &batcher.Options{Size: 2, Context: parent})

		for _, s := range []string{"a", "b", "c", "d", "e"} {
			require.NoError(t, b.Add(s))
		}
		require.NoError(t, b.Close(context.Background()))

		assert.Equal(t, [][]string{{"scribbled", "b"}, {"scribbled", "d"}, {"scribbled"}}, kept)
		assert.Equal(t, []any{"conn-1", "conn-1", "conn-1"}, vals, "Options.Context values reach flush")
		assert.Equal(t, []error{nil, nil, nil}, ctxErrs, "flush ctx is live, also during Close")
	})
}

func TestConcurrentAdd(t *testing.T) {
	t.Parallel()
	const producers, perProducer = 8, 2000
	type item struct{ p, i int }
	var mu sync.Mutex
	var got []item
	b := batcher.New(func(_ context.Context, batch []item) {
		mu.Lock()
		got = append(got, batch...)
		mu.Unlock()
	}, &batcher.Options{Size: 50, MaxPending: producers * perProducer})

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				if err := b.Add(item{p, i}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, b.Close(context.Background()))

	require.Len(t, got, producers*perProducer)
	assert.Zero(t, b.Dropped())
	next := make([]int, producers)
	for _, it := range got {
		require.Equal(t, next[it.p], it.i, "items of one producer stay in order")
		next[it.p]++
	}
}

func TestConcurrentAddAndClose(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	flushed := 0
	b := batcher.New(func(_ context.Context, batch []int) {
		mu.Lock()
		flushed += len(batch)
		mu.Unlock()
	}, &batcher.Options{Size: 7, MaxPending: 20})

	var wg sync.WaitGroup
	var accepted atomic.Int64
	started := make(chan struct{})
	startOnce := sync.OnceFunc(func() { close(started) })
	for p := range 4 {
		wg.Go(func() {
			for {
				err := b.Add(p)
				if errors.Is(err, batcher.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				if accepted.Add(1) == 1000 {
					startOnce()
				}
			}
		})
	}
	<-started // close under the producers' feet
	require.NoError(t, b.Close(context.Background()))
	wg.Wait()

	assert.Equal(t, int(accepted.Load()), flushed+int(b.Dropped()),
		"every accepted item is flushed or counted as dropped")
}
