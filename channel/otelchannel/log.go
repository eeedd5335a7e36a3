package otelchannel

import (
	"context"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"
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
// Records whose context carries no span context pass through unchanged.
// The ids are added at the top level, never inside a group opened with
// WithGroup: with groups open the wrapper replays them on the handler as
// it was before the first WithGroup, which costs allocations on every
// traced record of such a logger.
func LogHandler(h slog.Handler) slog.Handler {
	if h == nil {
		panic("otelchannel: LogHandler called with a nil handler")
	}
	return &logHandler{inner: h, root: h}
}

type logHandler struct {
	inner slog.Handler // h with every WithAttrs and WithGroup applied
	root  slog.Handler // h with the WithAttrs calls made before the first WithGroup
	ops   []logOp      // WithGroup and WithAttrs calls from the first WithGroup on
}

// logOp is one WithGroup (attrs == nil) or WithAttrs call to replay.
type logOp struct {
	group string
	attrs []slog.Attr
}

// Enabled reports whether the wrapped handler is enabled for level.
func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle adds the ids from ctx, if any, and passes the record on.
func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return h.inner.Handle(ctx, r)
	}
	ids := []slog.Attr{slog.String(TraceIDKey, sc.TraceID().String()), slog.String(SpanIDKey, sc.SpanID().String())}
	if len(h.ops) == 0 {
		// Clone so that appending cannot write into an array shared with
		// the caller's copy of the record.
		r = r.Clone()
		r.AddAttrs(ids...)
		return h.inner.Handle(ctx, r)
	}
	x := h.root.WithAttrs(ids)
	for _, o := range h.ops {
		if o.attrs != nil {
			x = x.WithAttrs(slices.Clone(o.attrs))
		} else {
			x = x.WithGroup(o.group)
		}
	}
	return x.Handle(ctx, r)
}

// WithAttrs returns a wrapper around the wrapped handler's WithAttrs.
func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	if len(h.ops) == 0 {
		inner := h.inner.WithAttrs(attrs)
		return &logHandler{inner: inner, root: inner}
	}
	// The wrapped handler owns attrs and may modify them; keep a copy.
	return &logHandler{
		inner: h.inner.WithAttrs(attrs),
		root:  h.root,
		ops:   append(slices.Clip(h.ops), logOp{attrs: slices.Clone(attrs)}),
	}
}

// WithGroup returns a wrapper around the wrapped handler's WithGroup. As
// slog requires, an empty name returns the receiver.
func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{
		inner: h.inner.WithGroup(name),
		root:  h.root,
		ops:   append(slices.Clip(h.ops), logOp{group: name}),
	}
}
