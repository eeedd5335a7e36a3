package otelchannel

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"

	"github.com/pyre-go/pyre/channel"
)

// The cost of looking for a trace context in an event payload, which
// every traced event pays: with none in it (the common case) the payload
// is scanned but not decoded.
func BenchmarkExtractPayload(b *testing.B) {
	cfg := newConfig(&Options{Propagators: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})})
	plain := channel.JSONPayload([]byte(`{"body":"` + strings.Repeat("x", 1000) + `"}`))
	traced := channel.JSONPayload([]byte(`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","body":"` + strings.Repeat("x", 1000) + `"}`))
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		p    channel.Payload
	}{{"none", plain}, {"traceparent", traced}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = extractPayload(ctx, cfg, bc.p)
			}
		})
	}
}
