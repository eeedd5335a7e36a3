package correlation

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
)

// LogKey is the attribute key [NewHandler] uses for the id.
const LogKey = "correlation_id"

// NewHandler returns a [slog.Handler] that passes every record to h, adding
// the attribute correlation_id=<id> when the record's context carries an id
// (see [WithID]). It panics if h is nil, as [slog.New] does.
//
// The attribute is not added when the record already has a top-level
// correlation_id: either among the record's own attributes or among
// attributes given to WithAttrs before any WithGroup. Records whose context
// carries no id pass through unchanged, so the wrapper is transparent (it
// passes testing/slogtest).
//
// WithAttrs and WithGroup return wrappers too. The id is always added at the
// top level, never inside a group opened with WithGroup: when no group is
// open, the attribute is appended to a clone of the record; when groups are
// open, the wrapper keeps the handler as it was before the first WithGroup,
// adds the id to that with WithAttrs and replays the later WithGroup and
// WithAttrs calls on top. That replay costs allocations, so the wrapper
// caches the result for the most recent id (one cache per derived handler);
// a logger with open groups that is used for many different ids at once pays
// the replay on most records.
func NewHandler(h slog.Handler) slog.Handler {
	if h == nil {
		panic("correlation: NewHandler called with a nil handler")
	}
	return &handler{inner: h, root: h}
}

// handler is the wrapper made by NewHandler.
type handler struct {
	inner slog.Handler // h with every WithAttrs/WithGroup applied
	root  slog.Handler // h with only the WithAttrs calls made before the first WithGroup
	ops   []op         // WithGroup/WithAttrs calls from the first WithGroup on, to replay on root
	hasID bool         // a top-level correlation_id came in through WithAttrs

	last atomic.Pointer[cachedHandler] // replayed handler for the most recent id
}

// op is one WithGroup (attrs == nil) or WithAttrs call to replay.
type op struct {
	group string
	attrs []slog.Attr
}

type cachedHandler struct {
	id string
	h  slog.Handler
}

// Enabled reports whether the wrapped handler is enabled for level.
func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle adds the id from ctx (if any) at the top level and passes the record
// on to the wrapped handler.
func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	id, ok := FromContext(ctx)
	if !ok || h.hasID || recordHasID(r) {
		return h.inner.Handle(ctx, r)
	}
	if len(h.ops) == 0 {
		// Clone so that appending cannot write into an array shared with
		// the caller's copy of the record.
		r = r.Clone()
		r.AddAttrs(slog.String(LogKey, id))
		return h.inner.Handle(ctx, r)
	}
	return h.withID(id).Handle(ctx, r)
}

// withID returns root with the id attribute followed by the replayed ops.
func (h *handler) withID(id string) slog.Handler {
	if c := h.last.Load(); c != nil && c.id == id {
		return c.h
	}
	x := h.root.WithAttrs([]slog.Attr{slog.String(LogKey, id)})
	for _, o := range h.ops {
		if o.attrs != nil {
			x = x.WithAttrs(slices.Clone(o.attrs))
		} else {
			x = x.WithGroup(o.group)
		}
	}
	h.last.Store(&cachedHandler{id: id, h: x})
	return x
}

// WithAttrs returns a wrapper around the wrapped handler's WithAttrs.
func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	n := &handler{root: h.root, ops: h.ops, hasID: h.hasID}
	if len(h.ops) == 0 {
		n.inner = h.inner.WithAttrs(attrs)
		n.root = n.inner
		n.hasID = h.hasID || slices.ContainsFunc(attrs, func(a slog.Attr) bool { return a.Key == LogKey })
		return n
	}
	// The wrapped handler owns attrs and may modify them; keep a copy.
	n.ops = append(slices.Clip(h.ops), op{attrs: slices.Clone(attrs)})
	n.inner = h.inner.WithAttrs(attrs)
	return n
}

// WithGroup returns a wrapper around the wrapped handler's WithGroup. As
// slog requires, an empty name returns the receiver.
func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{
		inner: h.inner.WithGroup(name),
		root:  h.root,
		ops:   append(slices.Clip(h.ops), op{group: name}),
		hasID: h.hasID,
	}
}

// recordHasID reports whether the record's own attributes include LogKey.
func recordHasID(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == LogKey {
			found = true
			return false
		}
		return true
	})
	return found
}
