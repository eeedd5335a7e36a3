package fallback_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/fallback"
)

// service is a fake primary whose behaviour tests switch and whose calls
// they count.
type service struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   error
}

func (s *service) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *service) call(context.Context) (string, error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "", s.err
	}
	return "live", nil
}

func call(t *testing.T, b *fallback.Breaker, s *service) fallback.Result[string] {
	t.Helper()
	res, err := fallback.Call(context.Background(), b, s.call, constFallback("fallback"))
	require.NoError(t, err)
	return res
}

func newBreaker(tr *transitions, s *fallback.BreakerOptions) *fallback.Breaker {
	if s == nil {
		s = &fallback.BreakerOptions{}
	}
	s.OnStateChange = func(name string, from, to fallback.State) { tr.record(name, from, to) }
	return fallback.NewBreaker("svc", s)
}

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	t.Parallel()
	var tr transitions
	b := newBreaker(&tr, &fallback.BreakerOptions{FailureThreshold: 3})
	s := &service{}

	s.set(errDown)
	call(t, b, s)
	call(t, b, s)
	s.set(nil)
	assert.False(t, call(t, b, s).Fallback, "a success resets the count")
	s.set(errDown)
	call(t, b, s)
	call(t, b, s)
	assert.Equal(t, fallback.Closed, b.State(), "2 consecutive failures < 3")
	assert.Empty(t, tr.list())

	res := call(t, b, s)
	assert.True(t, res.Fallback)
	assert.ErrorIs(t, res.Err, errDown, "the opening call still reports its own error")
	assert.Equal(t, fallback.Open, b.State())
	assert.Equal(t, []string{"svc:closed->open"}, tr.list())
	assert.Equal(t, int64(6), s.calls.Load())
}

func TestBreakerOpenSkipsPrimary(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	b := fallback.NewBreaker("obs", &fallback.BreakerOptions{
		FailureThreshold: 1,
		Logger:           slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	s := &service{}
	s.set(errDown)
	call(t, b, s)
	require.Equal(t, fallback.Open, b.State())

	s.set(nil)
	var fbErr error
	res, err := fallback.Call(context.Background(), b, s.call, func(_ context.Context, err error) (string, error) {
		fbErr = err
		return "fallback", nil
	})
	require.NoError(t, err)
	assert.Equal(t, int64(1), s.calls.Load(), "primary not called while open")
	assert.Equal(t, "fallback", res.Value)
	assert.ErrorIs(t, res.Err, fallback.ErrOpen)
	assert.ErrorIs(t, fbErr, fallback.ErrOpen)

	recs := logs.records(t)
	var levels []any
	for _, r := range recs {
		assert.Equal(t, "obs", r["service"])
		levels = append(levels, r["level"].(string)+" "+r["msg"].(string))
	}
	assert.Equal(t, []any{
		"WARN fallback: circuit breaker state changed",
		"WARN fallback: primary failed, using fallback",
		"DEBUG fallback: circuit breaker open, using fallback", // short-circuit: Debug only
	}, levels)
}

func TestBreakerHalfOpenAfterCoolDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tr transitions
		b := newBreaker(&tr, &fallback.BreakerOptions{FailureThreshold: 1, CoolDown: 10 * time.Second})
		s := &service{}
		s.set(errDown)
		call(t, b, s)

		time.Sleep(10*time.Second - time.Nanosecond)
		assert.Equal(t, fallback.Open, b.State())
		assert.ErrorIs(t, call(t, b, s).Err, fallback.ErrOpen)
		time.Sleep(time.Nanosecond)
		assert.Equal(t, fallback.HalfOpen, b.State())
		assert.Equal(t, []string{"svc:closed->open", "svc:open->half-open"}, tr.list())
		assert.Equal(t, int64(1), s.calls.Load())
	})
}

func TestBreakerProbeSuccessCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tr transitions
		b := newBreaker(&tr, &fallback.BreakerOptions{FailureThreshold: 2, CoolDown: time.Second})
		s := &service{}
		s.set(errDown)
		call(t, b, s)
		call(t, b, s)
		time.Sleep(time.Second)

		s.set(nil)
		res := call(t, b, s) // the probe
		assert.False(t, res.Fallback)
		assert.Equal(t, "live", res.Value)
		assert.Equal(t, fallback.Closed, b.State())
		assert.Equal(t, []string{"svc:closed->open", "svc:open->half-open", "svc:half-open->closed"}, tr.list())

		// Closed again, with a fresh failure count.
		s.set(errDown)
		call(t, b, s)
		assert.Equal(t, fallback.Closed, b.State())
	})
}

func TestBreakerProbeFailureReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tr transitions
		b := newBreaker(&tr, &fallback.BreakerOptions{FailureThreshold: 1, CoolDown: time.Second})
		s := &service{}
		s.set(errDown)
		call(t, b, s)
		time.Sleep(time.Second)

		res := call(t, b, s) // the probe fails
		assert.ErrorIs(t, res.Err, errDown)
		assert.Equal(t, fallback.Open, b.State())
		assert.Equal(t, []string{"svc:closed->open", "svc:open->half-open", "svc:half-open->open"}, tr.list())

		time.Sleep(time.Second - time.Nanosecond)
		assert.Equal(t, fallback.Open, b.State(), "the cool-down restarts at the failed probe")
		time.Sleep(time.Nanosecond)
		assert.Equal(t, fallback.HalfOpen, b.State())
		assert.Equal(t, int64(2), s.calls.Load())
	})
}

func TestBreakerProbeLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tr transitions
		b := newBreaker(&tr, &fallback.BreakerOptions{FailureThreshold: 1, CoolDown: time.Second, HalfOpenProbes: 2})
		s := &service{}
		s.set(errDown)
		call(t, b, s)
		time.Sleep(time.Second)

		release := make(chan error)
		var probes atomic.Int64
		slow := func(context.Context) (string, error) {
			probes.Add(1)
			if err := <-release; err != nil {
				return "", err
			}
			return "live", nil
		}
		results := make(chan fallback.Result[string], 2)
		for range 2 {
			go func() {
				res, _ := fallback.Call(context.Background(), b, slow, constFallback("fallback"))
				results <- res
			}()
		}
		synctest.Wait()
		require.Equal(t, int64(2), probes.Load())

		res := call(t, b, s) // a third call while both probe slots are taken
		assert.ErrorIs(t, res.Err, fallback.ErrOpen)
		assert.Equal(t, int64(1), s.calls.Load(), "no third probe")
		assert.Equal(t, fallback.HalfOpen, b.State())

		release <- nil // first probe succeeds: closed
		<-results
		assert.Equal(t, fallback.Closed, b.State())
		release <- errDown // second probe fails, but belongs to the half-open period: ignored
		r2 := <-results
		assert.ErrorIs(t, r2.Err, errDown)
		assert.Equal(t, fallback.Closed, b.State(), "stale outcome ignored (threshold is 1)")
		assert.Equal(t, []string{"svc:closed->open", "svc:open->half-open", "svc:half-open->closed"}, tr.list())
	})
}

func TestBreakerStaleFailureDoesNotExtendOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := fallback.NewBreaker("svc", &fallback.BreakerOptions{FailureThreshold: 1, CoolDown: 10 * time.Second})
		release := make(chan struct{})
		done := make(chan struct{})
		go func() { // a slow call that started while closed
			defer close(done)
			_, _ = fallback.Call(context.Background(), b, func(context.Context) (int, error) {
				<-release
				return 0, errDown
			}, constFallback(0))
		}()
		synctest.Wait()

		s := &service{}
		s.set(errDown)
		call(t, b, s) // opens at t=0
		time.Sleep(5 * time.Second)
		close(release) // the slow call fails at t=5s
		<-done
		time.Sleep(5 * time.Second)
		assert.Equal(t, fallback.HalfOpen, b.State(), "cool-down counts from the opening failure, not the stale one")
	})
}

func TestBreakerTimeoutAndPanicAreFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := fallback.NewBreaker("svc", &fallback.BreakerOptions{
			FailureThreshold: 2,
			Timeout:          time.Second,
			IsFailure:        func(error) bool { return false }, // not consulted for these
		})
		release := make(chan struct{})
		res, err := fallback.Call(context.Background(), b, func(context.Context) (int, error) {
			<-release
			return 1, nil
		}, constFallback(0))
		require.NoError(t, err)
		assert.ErrorIs(t, res.Err, fallback.ErrTimeout)
		assert.Equal(t, fallback.Closed, b.State())

		res, err = fallback.Call(context.Background(), b, func(context.Context) (int, error) { panic("boom") }, constFallback(0))
		require.NoError(t, err)
		assert.ErrorIs(t, res.Err, fallback.ErrPanic)
		assert.Equal(t, fallback.Open, b.State())

		// The timed-out primary is still running; Wait sees it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		go func() {
			time.Sleep(30 * time.Second)
			close(release)
		}()
		start := time.Now()
		require.NoError(t, b.Wait(ctx))
		assert.Equal(t, 30*time.Second, time.Since(start), "Wait returns when the abandoned primary does")
	})
}

func TestBreakerCallerCancelIsNotAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := fallback.NewBreaker("svc", &fallback.BreakerOptions{FailureThreshold: 1, CoolDown: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		honours := func(ctx context.Context) (int, error) { return 0, ctx.Err() }

		res, err := fallback.Call(ctx, b, honours, constFallback(0))
		require.NoError(t, err)
		assert.ErrorIs(t, res.Err, context.Canceled)
		assert.Equal(t, fallback.Closed, b.State())

		// In half-open, a cancelled probe frees its slot without deciding.
		s := &service{}
		s.set(errDown)
		call(t, b, s)
		time.Sleep(time.Second)
		_, _ = fallback.Call(ctx, b, honours, constFallback(0))
		assert.Equal(t, fallback.HalfOpen, b.State())
		s.set(nil)
		assert.False(t, call(t, b, s).Fallback, "the slot was freed for the next probe")
		assert.Equal(t, fallback.Closed, b.State())
	})
}

func TestBreakerIsFailure(t *testing.T) {
	t.Parallel()
	errNotFound := errors.New("not found")
	b := fallback.NewBreaker("svc", &fallback.BreakerOptions{
		FailureThreshold: 2,
		IsFailure:        func(err error) bool { return !errors.Is(err, errNotFound) },
	})
	s := &service{}
	for range 5 {
		s.set(errNotFound)
		res := call(t, b, s)
		assert.True(t, res.Fallback, "a non-failure error still uses the fallback")
		assert.ErrorIs(t, res.Err, errNotFound)
	}
	assert.Equal(t, fallback.Closed, b.State())

	s.set(errDown)
	call(t, b, s)
	s.set(errNotFound)
	call(t, b, s) // counts as a success: resets
	s.set(errDown)
	call(t, b, s)
	assert.Equal(t, fallback.Closed, b.State())
	call(t, b, s)
	assert.Equal(t, fallback.Open, b.State())
}

func TestBreakerInjectedClock(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2025, 7, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	b := fallback.NewBreaker("svc", &fallback.BreakerOptions{FailureThreshold: 1, CoolDown: time.Minute, Now: clock})
	s := &service{}
	s.set(errDown)
	call(t, b, s)
	advance(59 * time.Second)
	assert.Equal(t, fallback.Open, b.State())
	advance(time.Second)
	assert.Equal(t, fallback.HalfOpen, b.State())
}

func TestOnStateChangeMayUseBreaker(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	var b *fallback.Breaker
	var got []string
	var nested fallback.State
	b = fallback.NewBreaker("svc", &fallback.BreakerOptions{
		FailureThreshold: 1,
		CoolDown:         time.Second,
		Now:              clock,
		OnStateChange: func(name string, from, to fallback.State) {
			got = append(got, from.String()+"->"+to.String())
			if to == fallback.Open {
				// Move time on and look at the breaker from inside the
				// callback: this causes the next change while this one is
				// still being delivered.
				mu.Lock()
				now = now.Add(time.Second)
				mu.Unlock()
				nested = b.State()
				got = append(got, "callback returns")
			}
		},
	})
	s := &service{}
	s.set(errDown)
	call(t, b, s)
	assert.Equal(t, fallback.HalfOpen, nested)
	assert.Equal(t, []string{"closed->open", "callback returns", "open->half-open"}, got,
		"changes are delivered in order, never nested")
}

func TestOnStateChangePanicIsContained(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	calls := 0
	b := fallback.NewBreaker("svc", &fallback.BreakerOptions{
		FailureThreshold: 1,
		Logger:           slog.New(slog.NewJSONHandler(&logs, nil)),
		OnStateChange: func(string, fallback.State, fallback.State) {
			calls++
			panic("callback boom")
		},
	})
	s := &service{}
	s.set(errDown)
	res := call(t, b, s)
	assert.Equal(t, "fallback", res.Value)
	assert.Equal(t, fallback.Open, b.State())
	assert.Equal(t, 1, calls)
	found := false
	for _, r := range logs.records(t) {
		if r["msg"] == "fallback: state change notification panicked" {
			found = true
		}
	}
	assert.True(t, found)
}

func TestBreakerConcurrent(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	var trMu sync.Mutex
	var changes [][2]fallback.State
	b := fallback.NewBreaker("svc", &fallback.BreakerOptions{
		FailureThreshold: 3,
		CoolDown:         time.Second,
		HalfOpenProbes:   2,
		Now:              clock,
		OnStateChange: func(_ string, from, to fallback.State) {
			trMu.Lock()
			changes = append(changes, [2]fallback.State{from, to})
			trMu.Unlock()
		},
	})

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 500 {
				failing := r.IntN(3) == 0
				if r.IntN(20) == 0 {
					mu.Lock()
					now = now.Add(300 * time.Millisecond)
					mu.Unlock()
				}
				called := false
				res, err := fallback.Call(context.Background(), b, func(context.Context) (int, error) {
					called = true
					if failing {
						return 0, errDown
					}
					return 1, nil
				}, constFallback(-1))
				if err != nil {
					t.Error(err)
					return
				}
				// The result always matches what happened.
				switch {
				case !called:
					if !errors.Is(res.Err, fallback.ErrOpen) || res.Value != -1 {
						t.Errorf("short-circuit result %+v", res)
					}
				case failing:
					if !res.Fallback || res.Value != -1 {
						t.Errorf("failure result %+v", res)
					}
				default:
					if res.Fallback || res.Value != 1 {
						t.Errorf("success result %+v", res)
					}
				}
			}
		})
	}
	wg.Wait()

	valid := map[[2]fallback.State]bool{
		{fallback.Closed, fallback.Open}:     true,
		{fallback.Open, fallback.HalfOpen}:   true,
		{fallback.HalfOpen, fallback.Closed}: true,
		{fallback.HalfOpen, fallback.Open}:   true,
	}
	require.NotEmpty(t, changes, "the workload should have opened the breaker")
	prev := fallback.Closed
	for _, c := range changes {
		assert.True(t, valid[c], "invalid transition %v->%v", c[0], c[1])
		assert.Equal(t, prev, c[0], "transitions form a chain, delivered in order")
		prev = c[1]
	}
	assert.Equal(t, prev, b.State())
}

func TestStateString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "closed", fallback.Closed.String())
	assert.Equal(t, "open", fallback.Open.String())
	assert.Equal(t, "half-open", fallback.HalfOpen.String())
	assert.Equal(t, "State(9)", fallback.State(9).String())
}

func TestBreakerReset(t *testing.T) {
	t.Parallel()
	var tr transitions
	b := newBreaker(&tr, &fallback.BreakerOptions{FailureThreshold: 2})
	s := &service{}
	s.set(errDown)
	call(t, b, s)
	call(t, b, s)
	require.Equal(t, fallback.Open, b.State())
	b.Reset()
	assert.Equal(t, fallback.Closed, b.State())
	assert.Equal(t, []string{"svc:closed->open", "svc:open->closed"}, tr.list())
	calls := s.calls.Load()
	s.set(nil)
	assert.False(t, call(t, b, s).Fallback, "the primary is called again")
	assert.Equal(t, calls+1, s.calls.Load())

	// Reset also clears a closed breaker's failure count.
	s.set(errDown)
	call(t, b, s)
	b.Reset()
	call(t, b, s)
	assert.Equal(t, fallback.Closed, b.State(), "one failure after the reset")

	reg := fallback.NewRegistry(&fallback.BreakerOptions{FailureThreshold: 1})
	reg.Breaker("obs")
	reg.Reset("unknown") // no-op
	_, _ = fallback.Call(context.Background(), reg.Breaker("obs"), func(context.Context) (int, error) { return 0, errDown },
		func(context.Context, error) (int, error) { return 1, nil })
	require.Equal(t, fallback.Open, reg.States()["obs"])
	reg.Reset("obs")
	assert.Equal(t, fallback.Closed, reg.States()["obs"])
}

// An open breaker remembers the failure that opened it: rejected calls
// match ErrOpen and that failure, so a caller can answer with the service's
// own error while it is not called. Rejected requests (IsFailure false) do
// not replace it, and Reset forgets it.
func TestBreakerLastFailure(t *testing.T) {
	t.Parallel()
	errNotFound := errors.New("not found")
	b := fallback.NewBreaker("obs", &fallback.BreakerOptions{
		FailureThreshold: 2, CoolDown: time.Hour,
		IsFailure: func(err error) bool { return !errors.Is(err, errNotFound) },
	})
	assert.NoError(t, b.LastFailure())
	s := &service{}

	s.set(errNotFound)
	call(t, b, s)
	assert.NoError(t, b.LastFailure(), "a rejected request is not a failure")

	first := errors.New("first failure")
	s.set(first)
	call(t, b, s)
	assert.Equal(t, first, b.LastFailure())
	s.set(errDown)
	call(t, b, s)
	require.Equal(t, fallback.Open, b.State())
	assert.Equal(t, errDown, b.LastFailure())

	res := call(t, b, s)
	assert.Equal(t, int64(3), s.calls.Load(), "not called while open")
	assert.ErrorIs(t, res.Err, fallback.ErrOpen)
	assert.ErrorIs(t, res.Err, errDown, "the rejection carries the last failure")
	assert.NotErrorIs(t, res.Err, first)
	assert.EqualError(t, res.Err, "fallback: obs: fallback: circuit breaker open (last failure: service down)")

	b.Reset()
	assert.NoError(t, b.LastFailure())
}

// A panic counts as the last failure too.
func TestBreakerLastFailurePanic(t *testing.T) {
	t.Parallel()
	b := fallback.NewBreaker("obs", &fallback.BreakerOptions{FailureThreshold: 1, CoolDown: time.Hour})
	_, _ = fallback.Call(context.Background(), b, func(context.Context) (int, error) { panic("boom") }, constFallback(0))
	res, err := fallback.Call(context.Background(), b, ok(1), constFallback(0))
	require.NoError(t, err)
	assert.ErrorIs(t, res.Err, fallback.ErrOpen)
	assert.ErrorIs(t, res.Err, fallback.ErrPanic)
	var pe *fallback.PanicError
	require.ErrorAs(t, b.LastFailure(), &pe)
	assert.Equal(t, "boom", pe.Value)
}
