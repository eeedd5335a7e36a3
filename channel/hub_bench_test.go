package channel

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pyre-go/pyre/pubsub"
)

// nopSub is a hub subscriber that drops what it gets.
type nopSub struct{ id string }

func (*nopSub) deliver(*Frame, *pubsub.Message) {}
func (s *nopSub) subID() string                 { return s.id }
func (s *nopSub) Deliver(msg *pubsub.Message)   { deliverOne(s, msg) }

// BenchmarkJoinDuringFanout measures how long a join and a leave on a topic
// take while that topic is busy: 10 000 joined channels on one topic, one
// goroutine broadcasting to it continuously, and each iteration subscribing
// and unsubscribing one more receiver on the same topic at the hub (the
// part of phx_join/phx_leave that meets the fan-out). It reports the p50
// and p99 of that time in p50-ns and p99-ns; ns/op includes a random pause
// between iterations and means nothing here.
func BenchmarkJoinDuringFanout(b *testing.B) {
	const (
		subs  = 10000
		topic = "room:fanout"
	)
	srv := NewServer(&Options{Router: roomRouter(nil)})
	defer srv.Close()
	t := &countTransport{}
	conns := make([]*Conn, subs)
	for i := range conns {
		c, err := srv.Attach(context.Background(), &ConnectInfo{}, t)
		if err != nil {
			b.Fatal(err)
		}
		c.Receive(&Message{JoinRef: "1", Ref: "1", Topic: topic, Event: EventJoin, Payload: JSONPayload([]byte(`{}`))})
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Finish()
		}
	}()
	if n := srv.Subscribers(topic); n != subs {
		b.Fatalf("%d subscribers", n)
	}

	ctx := context.Background()
	payload := map[string]any{"body": "hello world", "seq": 1}
	stop := make(chan struct{})
	done := make(chan struct{})
	started := make(chan struct{})
	var fanouts int
	go func() {
		defer close(done)
		for {
			if err := srv.Broadcast(ctx, topic, "new_msg", payload); err != nil {
				b.Error(err)
				return
			}
			if fanouts++; fanouts == 1 {
				close(started)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	<-started

	probe := &nopSub{}
	lat := make([]time.Duration, 0, 1<<12)
	for b.Loop() {
		// A pause of random length lets the broadcaster run and makes the
		// join land at a random point of a fan-out, as a client's would.
		// Without it the joiner, taking the topic's lock back to back,
		// starves the broadcaster and rarely meets a fan-out at all.
		time.Sleep(rand.N(200 * time.Microsecond))
		t0 := time.Now()
		if err := srv.hub.add(ctx, topic, probe); err != nil {
			b.Fatal(err)
		}
		srv.hub.remove(ctx, topic, probe)
		lat = append(lat, time.Since(t0))
	}
	close(stop)
	<-done

	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
	b.ReportMetric(float64(fanouts)/float64(len(lat)), "fanouts/op")
}
