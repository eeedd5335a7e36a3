package batcher_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/pyre-go/pyre/batcher"
)

type benchEvent struct {
	ID   int
	Kind string
}

func benchBatcher(b *testing.B) *batcher.Batcher[benchEvent] {
	bt := batcher.New(func(context.Context, []benchEvent) {}, nil)
	b.Cleanup(func() {
		b.ReportMetric(float64(bt.Dropped())/float64(b.N), "dropped/op")
		_ = bt.Close(context.Background())
	})
	return bt
}

// BenchmarkAdd measures Add from one goroutine; allocs/op is per item and
// includes the batch slice handed to flush (one per 50 items).
func BenchmarkAdd(b *testing.B) {
	bt := benchBatcher(b)
	b.ReportAllocs()
	e := benchEvent{1, "follow"}
	for b.Loop() {
		_ = bt.Add(e)
	}
}

// BenchmarkAddParallel8 measures Add from 8 goroutines at once.
func BenchmarkAddParallel8(b *testing.B) {
	bt := benchBatcher(b)
	b.ReportAllocs()
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		e := benchEvent{1, "follow"}
		for pb.Next() {
			_ = bt.Add(e)
		}
	})
}
