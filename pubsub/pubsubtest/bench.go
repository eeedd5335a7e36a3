package pubsubtest

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyre-go/pyre/pubsub"
)

// BenchWindow is how many messages the benchmark keeps in flight: the
// publisher waits when that many are sent but not yet delivered, so a fast
// publisher measures the path instead of overflowing queues.
const BenchWindow = 512

// Bench is the shared Broadcast benchmark: b.N messages of 128 bytes on one
// topic, published on pub by one goroutine with at most [BenchWindow] in
// flight, received by one subscriber on sub (pub and sub may be the same
// node). It reports msgs/s and the publish-to-delivery latency p50 and p99
// in microseconds.
func Bench(b *testing.B, pub, sub pubsub.PubSub) { bench(b, pub, sub, 1) }

// BenchParallel is [Bench] with the b.N messages (and the window) shared by
// publishers goroutines, which measures how an adapter serves concurrent
// Broadcast callers (for example by sharing broker round trips).
func BenchParallel(b *testing.B, pub, sub pubsub.PubSub, publishers int) {
	bench(b, pub, sub, max(publishers, 1))
}

func bench(b *testing.B, pub, sub pubsub.PubSub, publishers int) {
	topic := runPrefix() + "bench"
	r := &benchReceiver{
		lat:    make([]time.Duration, b.N),
		window: make(chan struct{}, BenchWindow),
		done:   make(chan struct{}),
		want:   int64(b.N),
		start:  time.Now(),
	}
	ctx := context.Background()
	if err := sub.Subscribe(ctx, topic, r); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe(ctx, topic, r) }()
	Sync(b, sub)

	payload := make([]byte, 128)
	for i := range payload[16:] {
		payload[16+i] = 'x'
	}
	b.ReportAllocs()
	b.ResetTimer()
	began := time.Now()
	var next atomic.Int64
	errs := make(chan error, publishers)
	stop := make(chan struct{}) // closed on the first error
	var once sync.Once
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				select {
				case r.window <- struct{}{}:
				case <-stop:
					return
				}
				p := slices.Clone(payload) // the bus owns a published payload
				binary.LittleEndian.PutUint64(p, uint64(i))
				binary.LittleEndian.PutUint64(p[8:], uint64(time.Since(r.start)))
				if err := pub.Broadcast(ctx, &pubsub.Message{Topic: topic, Event: "bench", Payload: p, Binary: true}); err != nil {
					errs <- err
					once.Do(func() { close(stop) })
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	select {
	case <-r.done:
	case <-timer.C:
		b.Fatalf("received %d of %d messages", r.got.Load(), b.N)
	}
	elapsed := time.Since(began)
	b.StopTimer()
	slices.Sort(r.lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(r.lat[b.N/2])/1e3, "p50-µs")
	b.ReportMetric(float64(r.lat[b.N*99/100])/1e3, "p99-µs")
}

type benchReceiver struct {
	lat    []time.Duration
	window chan struct{}
	done   chan struct{}
	got    atomic.Int64
	want   int64
	start  time.Time
}

// Deliver records the latency of one message. It never blocks: every
// message was preceded by a send on window.
func (r *benchReceiver) Deliver(m *pubsub.Message) {
	if len(m.Payload) < 16 {
		return
	}
	i := binary.LittleEndian.Uint64(m.Payload)
	sent := time.Duration(binary.LittleEndian.Uint64(m.Payload[8:]))
	if i >= uint64(len(r.lat)) {
		return
	}
	r.lat[i] = time.Since(r.start) - sent
	select {
	case <-r.window:
	default:
	}
	if r.got.Add(1) == r.want {
		close(r.done)
	}
}
