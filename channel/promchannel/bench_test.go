package promchannel_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/promchannel"
)

// countTransport encodes every frame (once per broadcast: shared frames
// cache their encoding) and counts them.
type countTransport struct{ n atomic.Int64 }

func (t *countTransport) Send(f *channel.Frame) {
	if _, _, err := f.Encode(channel.V2); err == nil {
		t.n.Add(1)
	}
}

func (t *countTransport) Close(int, string) {}

// BenchmarkFanout broadcasts to 1 000 local subscribers with and without
// the metrics: the Metrics registered and their Observer installed. The
// fan-out path calls no Observer, so the two should cost the same per
// delivery (the bound: within 3 %).
func BenchmarkFanout(b *testing.B) {
	b.Run("metrics=off", func(b *testing.B) { benchFanout(b, false) })
	b.Run("metrics=on", func(b *testing.B) { benchFanout(b, true) })
}

func benchFanout(b *testing.B, metrics bool) {
	srv := channel.NewServer(&channel.Options{Router: newRouter(), Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	if metrics {
		m, err := promchannel.New(srv, &promchannel.Options{Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
	}
	const subs = 1000
	t := &countTransport{}
	for range subs {
		c, err := srv.Attach(context.Background(), &channel.ConnectInfo{}, t)
		if err != nil {
			b.Fatal(err)
		}
		c.Receive(&channel.Message{JoinRef: "1", Ref: "1", Topic: "room:bench", Event: channel.EventJoin, Payload: channel.JSONPayload([]byte(`{}`))})
		defer c.Finish()
	}
	if n := srv.Subscribers("room:bench"); n != subs {
		b.Fatalf("%d subscribers", n)
	}
	payload := map[string]any{"body": "hello world", "seq": 1}
	ctx := context.Background()
	start := t.n.Load()
	b.ReportAllocs()
	for b.Loop() {
		if err := srv.Broadcast(ctx, "room:bench", "new_msg", payload); err != nil {
			b.Fatal(err)
		}
	}
	n := t.n.Load() - start
	b.ReportMetric(float64(n)/float64(b.N), "deliveries/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/delivery")
}
