package otelchannel_test

import (
	"context"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/channel/otelchannel"
)

// The cost of tracing one client event end to end (in process, no
// network): untraced, and traced with a sampled span that the SDK records
// and drops (no exporter), which is the span's own cost.
func BenchmarkEvent(b *testing.B) {
	for _, traced := range []bool{false, true} {
		name := "untraced"
		if traced {
			name = "traced"
		}
		b.Run(name, func(b *testing.B) {
			r := channel.NewRouter()
			if traced {
				tp := sdktrace.NewTracerProvider()
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				r.Use(otelchannel.Middleware(&otelchannel.Options{TracerProvider: tp, Propagators: propagation.TraceContext{}}))
			}
			r.Handle("room:*", func() channel.Channel { return &room{} })
			opts := &channeltest.Options{}
			opts.Server.Logger = slog.New(slog.DiscardHandler)
			ep := channeltest.New(b, r, opts)
			ch := ep.Client(nil).Join("room:a", nil)
			b.ReportAllocs()
			for b.Loop() {
				ch.Push("ok", map[string]any{"body": "hello"}).AssertReply("ok", nil)
			}
		})
	}
}
