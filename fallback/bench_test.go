package fallback_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pyre-go/pyre/fallback"
)

var sink int

func primaryOK(context.Context) (int, error)           { return 1, nil }
func fallbackZero(context.Context, error) (int, error) { return 0, nil }

// BenchmarkDirect is the baseline: calling the primary directly.
func BenchmarkDirect(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		v, _ := primaryOK(ctx)
		sink += v
	}
}

// BenchmarkDo measures Do with a succeeding primary and no deadline
// (runs inline).
func BenchmarkDo(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		res, _ := fallback.Do(ctx, primaryOK, fallbackZero, nil)
		sink += res.Value
	}
}

// BenchmarkCallClosed is the closed-breaker overhead on a succeeding call.
func BenchmarkCallClosed(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	br := fallback.NewBreaker("svc", nil)
	for b.Loop() {
		res, _ := fallback.Call(ctx, br, primaryOK, fallbackZero)
		sink += res.Value
	}
}

// BenchmarkCallClosedParallel is the same from all Ps at once (contention
// on the breaker's mutex).
func BenchmarkCallClosedParallel(b *testing.B) {
	b.ReportAllocs()
	br := fallback.NewBreaker("svc", nil)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			res, _ := fallback.Call(ctx, br, primaryOK, fallbackZero)
			sink += res.Value
		}
	})
}

// BenchmarkCallClosedTimeout adds a timeout, so the primary runs on its own
// goroutine.
func BenchmarkCallClosedTimeout(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	br := fallback.NewBreaker("svc", &fallback.BreakerOptions{Timeout: time.Second})
	for b.Loop() {
		res, _ := fallback.Call(ctx, br, primaryOK, fallbackZero)
		sink += res.Value
	}
}

// BenchmarkCallOpen measures a short-circuited call on an open breaker.
func BenchmarkCallOpen(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	br := fallback.NewBreaker("svc", &fallback.BreakerOptions{FailureThreshold: 1, CoolDown: time.Hour})
	_, _ = fallback.Call(ctx, br, func(context.Context) (int, error) { return 0, errors.New("down") }, fallbackZero)
	for b.Loop() {
		res, _ := fallback.Call(ctx, br, primaryOK, fallbackZero)
		sink += res.Value
	}
}
