package channel

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// BenchmarkFanoutFilter measures the fan-out of broadcasts to 1 000
// subscribers of one topic, half of which filter, against the same
// fan-out without filters. Broadcasts alternate between two events (and
// two values of "sym"), so a filtering subscriber drops every other one:
//
//   - none: no subscriber filters (the baseline);
//   - events: 500 subscribers filter {"events":["tick"]};
//   - where: 500 subscribers filter {"where":{"sym":"BTC"}}, which looks
//     into each payload once per fan-out;
//   - where-nested: as where, on {"where":{"m.sym":["BTC","XRP"],"m.ok":true}};
//   - where-distinct: as where, but no two filters are equal
//     ({"where":{"sym":["BTC","X<n>"]}}), so none shares an evaluation.
//
// ns/delivery is the time per frame handed to a connection, and
// cpu-ns/delivery the process's CPU time (every thread, GC included) per
// frame, which other processes on a busy machine disturb less. The
// transport here only counts frames after encoding them once, so the
// per-delivery costs of a real connection (queueing, writing), which a
// filtered broadcast saves, are left out: the ratio to none is an upper
// bound of what filters cost per delivered message.
func BenchmarkFanoutFilter(b *testing.B) {
	for _, bc := range []struct{ name, filter string }{
		{"none", ``},
		{"events", `{"events":["tick"]}`},
		{"where", `{"where":{"sym":"BTC"}}`},
		{"where-nested", `{"where":{"m.sym":["BTC","XRP"],"m.ok":true}}`},
		{"where-distinct", `{"where":{"sym":["BTC","X%d"]}}`},
	} {
		b.Run(bc.name, func(b *testing.B) { benchFanoutFilter(b, bc.filter) })
	}
}

func benchFanoutFilter(b *testing.B, filter string) {
	srv := NewServer(&Options{Router: filterRouter(nil, nil), Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	const subs = 1000
	t := &countTransport{}
	for i := range subs {
		c, err := srv.Attach(context.Background(), &ConnectInfo{}, t)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Finish()
		params := `{}`
		if filter != "" && i%2 == 0 {
			f := filter
			if strings.Contains(f, "%d") {
				f = fmt.Sprintf(f, i)
			}
			params = `{"filter":` + f + `}`
		}
		c.Receive(&Message{JoinRef: "1", Ref: "1", Topic: "feed:bench", Event: EventJoin, Payload: JSONPayload([]byte(params))})
	}
	if n := srv.Subscribers("feed:bench"); n != subs {
		b.Fatalf("%d subscribers", n)
	}
	payloads := [2]map[string]any{
		{"body": "hello world", "seq": 1, "sym": "BTC", "m": map[string]any{"sym": "BTC", "ok": true}},
		{"body": "hello world", "seq": 2, "sym": "ETH", "m": map[string]any{"sym": "ETH", "ok": true}},
	}
	events := [2]string{"tick", "trade"}
	ctx := context.Background()
	start := t.n.Load()
	cpu0 := processCPU()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if err := srv.Broadcast(ctx, "feed:bench", events[i&1], payloads[i&1]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	cpu := processCPU() - cpu0
	delivered := float64(t.n.Load() - start)
	b.ReportMetric(float64(cpu.Nanoseconds())/delivered, "cpu-ns/delivery")
	b.ReportMetric(delivered/float64(b.N), "deliveries/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/delivered, "ns/delivery")
}
