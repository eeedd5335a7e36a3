package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/correlation"
	"github.com/pyre-go/pyre/fallback"
)

func TestDoPrimarySucceeds(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	res, err := fallback.Do(context.Background(), ok(42), func(context.Context, error) (int, error) {
		t.Error("fallback called")
		return 0, nil
	}, &fallback.Options{Name: "obs", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	assert.Equal(t, fallback.Result[int]{Value: 42}, res)
	assert.Empty(t, logs.records(t))
}

func TestDoPrimaryErrorUsesFallbackAndLogsOnce(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	logger := slog.New(correlation.NewHandler(slog.NewJSONHandler(&logs, nil)))
	ctx := correlation.WithID(context.Background(), "a1b2c3d4")

	var gotErr error
	res, err := fallback.Do(ctx, fail[string](errDown), func(_ context.Context, err error) (string, error) {
		gotErr = err
		return "cached", nil
	}, &fallback.Options{Name: "obs", Logger: logger})

	require.NoError(t, err)
	assert.Equal(t, "cached", res.Value)
	assert.True(t, res.Fallback)
	assert.ErrorIs(t, res.Err, errDown)
	assert.ErrorIs(t, gotErr, errDown, "the fallback gets the primary's error")

	recs := logs.records(t)
	require.Len(t, recs, 1, "logged once")
	assert.Equal(t, "WARN", recs[0]["level"])
	assert.Equal(t, "obs", recs[0]["service"])
	assert.Equal(t, "service down", recs[0]["error"])
	assert.Equal(t, "a1b2c3d4", recs[0]["correlation_id"], "logged with the caller's ctx")
}

func TestDoPanicInPrimary(t *testing.T) {
	t.Parallel()
	sentinel := errors.New("wrapped in panic")
	for _, tc := range []struct {
		name    string
		timeout time.Duration // > 0 runs the primary on its own goroutine
		value   any
	}{
		{"inline string", 0, "boom"},
		{"goroutine string", time.Hour, "boom"},
		{"inline error", 0, sentinel},
		{"goroutine error", time.Hour, sentinel},
		{"nil", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := fallback.Do(context.Background(), func(context.Context) (int, error) {
				panic(tc.value)
			}, constFallback(-1), &fallback.Options{Timeout: tc.timeout})
			require.NoError(t, err)
			assert.Equal(t, -1, res.Value)
			assert.True(t, res.Fallback)
			assert.ErrorIs(t, res.Err, fallback.ErrPanic)
			var pe *fallback.PanicError
			require.ErrorAs(t, res.Err, &pe)
			assert.NotEmpty(t, pe.Stack)
			assert.Equal(t, "fallback: primary", pe.Op)
			if tc.value == nil {
				var pn *runtime.PanicNilError
				assert.ErrorAs(t, res.Err, &pn)
				return
			}
			assert.Equal(t, tc.value, pe.Value)
			if e, ok := tc.value.(error); ok {
				assert.ErrorIs(t, res.Err, e)
			}
		})
	}
}

func TestDoRunsInlineWithoutDeadline(t *testing.T) {
	t.Parallel()
	stackOf := func(ctx context.Context, opts *fallback.Options) string {
		res, _ := fallback.Do(ctx, func(context.Context) (int, error) { panic("where am I") }, constFallback(0), opts)
		var pe *fallback.PanicError
		require.ErrorAs(t, res.Err, &pe)
		return string(pe.Stack)
	}
	const ownGoroutine = "created by github.com/pyre-go/pyre/fallback."
	assert.NotContains(t, stackOf(context.Background(), nil), ownGoroutine,
		"no timeout and an uncancelable ctx: the primary runs on the caller's goroutine")
	assert.Contains(t, stackOf(context.Background(), &fallback.Options{Timeout: time.Hour}), ownGoroutine)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	assert.Contains(t, stackOf(ctx, nil), ownGoroutine, "a cancelable ctx needs a goroutine")
}

func TestDoGoexitInPrimary(t *testing.T) {
	t.Parallel()
	res, err := fallback.Do(context.Background(), func(context.Context) (int, error) {
		runtime.Goexit()
		return 1, nil
	}, constFallback(-1), &fallback.Options{Timeout: time.Hour})
	require.NoError(t, err)
	assert.Equal(t, -1, res.Value)
	assert.ErrorIs(t, res.Err, fallback.ErrPanic)
}

func TestDoTimeout(t *testing.T) {
	t.Run("primary ignores ctx", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			primaryDone := make(chan error, 1)
			start := time.Now()
			res, err := fallback.Do(context.Background(), func(ctx context.Context) (string, error) {
				<-release
				primaryDone <- ctx.Err()
				return "late", nil
			}, constFallback("fallback"), &fallback.Options{Timeout: 2 * time.Second})

			require.NoError(t, err)
			assert.Equal(t, 2*time.Second, time.Since(start), "Do returns at the deadline")
			assert.Equal(t, "fallback", res.Value)
			assert.ErrorIs(t, res.Err, fallback.ErrTimeout)
			assert.ErrorIs(t, res.Err, context.DeadlineExceeded)

			close(release) // the left-over goroutine ends with the primary
			assert.ErrorIs(t, <-primaryDone, context.DeadlineExceeded, "the primary's ctx expired")
		})
	})
	t.Run("primary honours ctx", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			res, err := fallback.Do(context.Background(), func(ctx context.Context) (string, error) {
				<-ctx.Done()
				return "", fmt.Errorf("query: %w", ctx.Err())
			}, constFallback("fallback"), &fallback.Options{Timeout: time.Second})
			require.NoError(t, err)
			assert.Equal(t, time.Second, time.Since(start))
			assert.Equal(t, "fallback", res.Value)
			assert.ErrorIs(t, res.Err, fallback.ErrTimeout)
		})
	})
	t.Run("primary in time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			res, err := fallback.Do(context.Background(), func(ctx context.Context) (string, error) {
				time.Sleep(999 * time.Millisecond)
				return "fresh", nil
			}, constFallback("fallback"), &fallback.Options{Timeout: time.Second})
			require.NoError(t, err)
			assert.Equal(t, fallback.Result[string]{Value: "fresh"}, res)
		})
	})
	t.Run("primary error before deadline is not a timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			res, err := fallback.Do(context.Background(), fail[int](errDown), constFallback(0), &fallback.Options{Timeout: time.Second})
			require.NoError(t, err)
			assert.ErrorIs(t, res.Err, errDown)
			assert.NotErrorIs(t, res.Err, fallback.ErrTimeout)
		})
	})
}

func TestDoCallerCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		release := make(chan struct{})
		defer close(release)
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		var fbErr error
		start := time.Now()
		res, err := fallback.Do(ctx, func(context.Context) (int, error) {
			<-release // ignores ctx
			return 1, nil
		}, func(_ context.Context, err error) (int, error) {
			fbErr = err
			return 2, nil
		}, nil)
		require.NoError(t, err)
		assert.Equal(t, time.Second, time.Since(start), "Do stops waiting when the caller's ctx ends")
		assert.Equal(t, 2, res.Value)
		assert.ErrorIs(t, res.Err, context.Canceled)
		assert.ErrorIs(t, fbErr, context.Canceled)
	})
}

func TestDoFallbackFails(t *testing.T) {
	t.Parallel()
	errFB := errors.New("no cache either")
	var logs logBuffer
	res, err := fallback.Do(context.Background(), fail[int](errDown), func(context.Context, error) (int, error) {
		return 7, errFB
	}, &fallback.Options{Name: "rainwave", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})

	require.Error(t, err)
	assert.ErrorIs(t, err, errDown)
	assert.ErrorIs(t, err, errFB)
	var fe *fallback.Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "rainwave", fe.Service)
	assert.Equal(t, "fallback: rainwave: fallback failed: no cache either (primary: service down)", err.Error())
	assert.Zero(t, res.Value, "no value when both failed")
	assert.True(t, res.Fallback)
	assert.ErrorIs(t, res.Err, errDown)

	recs := logs.records(t)
	require.Len(t, recs, 1, "still logged once")
	assert.Equal(t, "ERROR", recs[0]["level"])
	assert.Equal(t, "no cache either", recs[0]["fallback_error"])
}

func TestDoFallbackPanicsOrIsNil(t *testing.T) {
	t.Parallel()
	_, err := fallback.Do(context.Background(), fail[int](errDown), func(context.Context, error) (int, error) {
		panic("fallback boom")
	}, nil)
	assert.ErrorIs(t, err, fallback.ErrPanic)
	assert.ErrorIs(t, err, errDown)

	res, err := fallback.Do(context.Background(), fail[int](errDown), nil, nil)
	assert.ErrorIs(t, err, fallback.ErrNoFallback)
	assert.ErrorIs(t, err, errDown)
	assert.True(t, res.Fallback)

	res, err = fallback.Do(context.Background(), ok(3), nil, nil)
	assert.NoError(t, err, "a nil fallback is fine while the primary works")
	assert.Equal(t, 3, res.Value)
}
