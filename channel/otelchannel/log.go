package otelchannel

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/pyre-go/pyre/correlation"
)

// Log attribute keys LogHandler adds.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// LogHandler returns a slog.Handler that passes every record to h, adding
// trace_id=<32 hex digits> and span_id=<16 hex digits> when the record's
// context carries a valid span context: the records a channel logs with
// the context its Join or HandleIn got (s.Logger().InfoContext(ctx, …))
// inside a span of Middleware, and those of anything else traced. Use it
// as the handler of channel.Options.Logger. It panics if h is nil, as
// slog.New does.
//
// It is correlation.NewContextHandler with a function that reads the span
// context, so it behaves as correlation.NewHandler does: records whose
// context carries no span context pass through unchanged; the ids are added
// at the top level, never inside a group opened with WithGroup, and not
// when the record already has a top-level trace_id or span_id. The two
// wrappers stack: slog.New(otelchannel.LogHandler(correlation.NewHandler(h)))
// adds all three.
func LogHandler(h slog.Handler) slog.Handler {
	if h == nil {
		panic("otelchannel: LogHandler called with a nil handler")
	}
	return correlation.NewContextHandler(h, spanAttrs)
}

// spanAttrs is LogHandler's attrs function.
func spanAttrs(ctx context.Context) []slog.Attr {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []slog.Attr{slog.String(TraceIDKey, sc.TraceID().String()), slog.String(SpanIDKey, sc.SpanID().String())}
}
