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
// It is [NewContextHandler] with a function that returns the id, so what is
// said there holds: the attribute is added at the top level, never inside a
// group opened with WithGroup; it is not added when the record already has a
// top-level correlation_id (among its own attributes or among those given to
// WithAttrs before any WithGroup); records whose context carries no id pass
// through unchanged.
func NewHandler(h slog.Handler) slog.Handler {
	if h == nil {
		panic("correlation: NewHandler called with a nil handler")
	}
	return &handler{inner: h, root: h, one: idAttr}
}

// idAttr is NewHandler's attribute: one, so no slice is allocated per
// record.
func idAttr(ctx context.Context) (slog.Attr, bool) {
	id, ok := FromContext(ctx)
	if !ok {
		return slog.Attr{}, false
	}
	return slog.String(LogKey, id), true
}

// NewContextHandler returns a [slog.Handler] that passes every record to h,
// adding at the top level the attributes attrs returns for the record's
// context: the way to put what a context carries (a correlation id, a trace
// and span id) on every log line without each call site repeating it. It
// panics if h or attrs is nil.
//
// attrs is called once per record that reaches Handle (after h's Enabled
// said yes) and may return nil, in which case the record passes through
// unchanged, so the wrapper is transparent (it passes testing/slogtest). The
// wrapper may modify the slice attrs returns; return a new one each time.
// An attribute is not added when the record already has a top-level
// attribute with its key: among the record's own attributes, or among the
// attributes given to WithAttrs before any WithGroup.
//
// WithAttrs and WithGroup return wrappers too. The attributes are always
// added at the top level, never inside a group opened with WithGroup: when no
// group is open they are appended to a clone of the record; when groups are
// open, the wrapper keeps the handler as it was before the first WithGroup,
// adds them to that with WithAttrs and replays the later WithGroup and
// WithAttrs calls on top. That replay costs allocations, so the wrapper
// caches the result for the most recent attributes (one cache per derived
// handler, compared with [slog.Value.Equal]); a logger with open groups that
// is used for many different contexts at once pays the replay on most
// records.
func NewContextHandler(h slog.Handler, attrs func(ctx context.Context) []slog.Attr) slog.Handler {
	if h == nil {
		panic("correlation: NewContextHandler called with a nil handler")
	}
	if attrs == nil {
		panic("correlation: NewContextHandler called with a nil attrs function")
	}
	return &handler{inner: h, root: h, attrs: attrs}
}

// handler is the wrapper made by NewContextHandler.
type handler struct {
	inner slog.Handler                                // h with every WithAttrs/WithGroup applied
	root  slog.Handler                                // h with only the WithAttrs calls made before the first WithGroup
	attrs func(ctx context.Context) []slog.Attr       // what to add for a context
	one   func(ctx context.Context) (slog.Attr, bool) // used instead of attrs when set
	ops   []op                                        // WithGroup/WithAttrs calls from the first WithGroup on, to replay on root
	keys  []string                                    // top-level keys given to WithAttrs before the first WithGroup

	last atomic.Pointer[cachedHandler] // replayed handler for the most recent attributes
}

// op is one WithGroup (attrs == nil) or WithAttrs call to replay.
type op struct {
	group string
	attrs []slog.Attr
}

type cachedHandler struct {
	attrs []slog.Attr
	h     slog.Handler
}

// Enabled reports whether the wrapped handler is enabled for level.
func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle adds the attributes for ctx (if any) at the top level and passes
// the record on to the wrapped handler.
func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	var one [1]slog.Attr
	var add []slog.Attr
	if h.one != nil {
		a, ok := h.one(ctx)
		if !ok {
			return h.inner.Handle(ctx, r)
		}
		one[0] = a
		add = one[:]
	} else {
		add = h.attrs(ctx)
	}
	// Keep only the attributes whose key is not at the top level yet.
	n := 0
	for _, a := range add {
		if !slices.Contains(h.keys, a.Key) && !recordHas(&r, a.Key) {
			add[n] = a
			n++
		}
	}
	add = add[:n]
	if len(add) == 0 {
		return h.inner.Handle(ctx, r)
	}
	if len(h.ops) == 0 {
		// Clone so that appending cannot write into an array shared with
		// the caller's copy of the record.
		r = r.Clone()
		r.AddAttrs(add...)
		return h.inner.Handle(ctx, r)
	}
	return h.with(add).Handle(ctx, r)
}

// with returns root with add followed by the replayed ops. It keeps no
// reference to add.
func (h *handler) with(add []slog.Attr) slog.Handler {
	if c := h.last.Load(); c != nil && equalAttrs(c.attrs, add) {
		return c.h
	}
	kept := slices.Clone(add) // a new variable: reassigning add would make it escape
	x := h.root.WithAttrs(slices.Clone(add))
	for _, o := range h.ops {
		if o.attrs != nil {
			x = x.WithAttrs(slices.Clone(o.attrs))
		} else {
			x = x.WithGroup(o.group)
		}
	}
	h.last.Store(&cachedHandler{attrs: kept, h: x})
	return x
}

// WithAttrs returns a wrapper around the wrapped handler's WithAttrs.
func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	n := &handler{root: h.root, attrs: h.attrs, one: h.one, ops: h.ops, keys: h.keys}
	if len(h.ops) == 0 {
		n.inner = h.inner.WithAttrs(attrs)
		n.root = n.inner
		n.keys = slices.Clip(h.keys)
		for _, a := range attrs {
			if a.Key != "" && !slices.Contains(n.keys, a.Key) {
				n.keys = append(n.keys, a.Key)
			}
		}
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
		attrs: h.attrs,
		one:   h.one,
		ops:   append(slices.Clip(h.ops), op{group: name}),
		keys:  h.keys,
	}
}

// recordHas reports whether the record's own attributes include key.
func recordHas(r *slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			found = true
			return false
		}
		return true
	})
	return found
}

// equalAttrs reports whether a and b hold the same keys and values in the
// same order.
func equalAttrs(a, b []slog.Attr) bool {
	return slices.EqualFunc(a, b, func(x, y slog.Attr) bool { return x.Key == y.Key && x.Value.Equal(y.Value) })
}
