// Package ratelimit limits the events clients push to a channel, as a
// channel hook (a channel.Middleware) that any channel adds to its Hooks or
// a Router to every channel with Router.Use.
//
// The limiters are golang.org/x/time/rate token buckets. A limit is kept per
// channel instance (one join) or per connection (all the channels joined on
// it), covers every client event or a chosen set, and an event over the
// limit is answered without reaching the channel: by default with an error
// reply carrying the unified error envelope, code "rate_limited":
//
//	{"status":"error","response":{"success":false,"error":{"code":"rate_limited","message":"rate limit exceeded","timestamp":"…"}}}
//
// Joins, leaves and heartbeats are never limited. The package is separate
// from channel so that a program that does not limit compiles none of it.
//
// A sliding window (Options.Window) gives "at most Burst events in any
// trailing Window", the rule of Landale's Dashboard (50 commands per 10 s,
// answered with code "backpressure", message "rate_limit_exceeded").
package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pyre-go/pyre/channel"
)

// Scope says what one limiter covers.
type Scope int

const (
	// PerChannel keeps one limiter per channel instance: each join of each
	// connection has its own budget, which ends with the channel.
	PerChannel Scope = iota
	// PerConnection keeps one limiter per connection, shared by every
	// channel on it that uses the same hook (the Middleware returned by one
	// New call). It is released when the connection ends.
	PerConnection
)

// Defaults of Options.
const (
	// DefaultLimit is the default sustained rate: 5 events per second.
	DefaultLimit rate.Limit = 5
	// DefaultBurst is the default bucket size: 50 events.
	DefaultBurst = 50
	// DefaultCode and DefaultMessage are the error code and message of the
	// default over-limit reply.
	DefaultCode    = "rate_limited"
	DefaultMessage = "rate limit exceeded"
)

// Options configures a limit. The zero value is a token bucket of 5 events
// per second with bursts of 50, per channel instance, on every client event,
// answered with the "rate_limited" error envelope.
type Options struct {
	// Limit is the sustained rate in events per second (rate.Every(d) for
	// one event per d). rate.Inf disables the limit. Zero or negative means
	// DefaultLimit (5 per second). Ignored when Window is set.
	Limit rate.Limit
	// Burst is the number of events a limiter accepts at once (the token
	// bucket's size) and, with Window, the number accepted per window.
	// Zero or negative means DefaultBurst (50).
	Burst int
	// Window, when positive, replaces the token bucket by a sliding window:
	// an event is accepted when fewer than Burst events were accepted in
	// the trailing Window (an accepted event stops counting once Window has
	// passed since it). Each limiter then holds Burst single-token limiters
	// (rate.Every(Window), burst 1) used in turn: the one an event takes
	// was last taken Burst accepted events earlier and is free again once
	// Window has passed since. Memory grows with Burst. Default 0: token
	// bucket.
	Window time.Duration
	// Scope is PerChannel (the default) or PerConnection.
	Scope Scope
	// Events lists the limited events; nil or empty limits every client
	// event. Ignored when Match is set.
	Events []string
	// Match, when set, decides which client events are limited instead of
	// Events (say, only the events the channel will act on).
	Match func(msg *channel.Message) bool
	// Reject answers an event over the limit; the channel does not see the
	// event. Default: channel.ErrorReply(channel.ErrorEnvelope(DefaultCode,
	// DefaultMessage)).
	Reject func(ctx context.Context, s *channel.Socket, msg *channel.Message) channel.Reply
}

// limiter accepts or refuses one event at a time.
type limiter interface {
	allow(now time.Time) bool
}

// bucket is a token bucket.
type bucket struct{ l *rate.Limiter }

func (b bucket) allow(now time.Time) bool { return b.l.AllowN(now, 1) }

// window is the sliding window: slots[next] is the single-token limiter the
// next accepted event takes.
type window struct {
	mu    sync.Mutex
	slots []*rate.Limiter
	next  int
}

func (w *window) allow(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.slots[w.next].AllowN(now, 1) {
		return false
	}
	w.next = (w.next + 1) % len(w.slots)
	return true
}

// hook is the state one New call shares between the channels it wraps.
type hook struct {
	o      Options
	events map[string]bool

	mu    sync.Mutex
	conns map[*channel.Conn]limiter // PerConnection: live connections only
}

// New returns a hook that limits client events as o says (nil for the
// defaults). With PerConnection, channels share a connection's limiter only
// if they use the Middleware of the same New call: keep it in a variable
// rather than calling New in each Hooks call.
func New(o *Options) channel.Middleware { return newHook(o).wrap }

// newHook applies the defaults of o.
func newHook(o *Options) *hook {
	h := &hook{}
	if o != nil {
		h.o = *o
	}
	if h.o.Limit <= 0 {
		h.o.Limit = DefaultLimit
	}
	if h.o.Burst <= 0 {
		h.o.Burst = DefaultBurst
	}
	if h.o.Reject == nil {
		h.o.Reject = func(context.Context, *channel.Socket, *channel.Message) channel.Reply {
			return channel.ErrorReply(channel.ErrorEnvelope(DefaultCode, DefaultMessage))
		}
	}
	if len(h.o.Events) > 0 {
		h.events = make(map[string]bool, len(h.o.Events))
		for _, e := range h.o.Events {
			h.events[e] = true
		}
	}
	return h
}

// newLimiter returns a fresh limiter, full.
func (h *hook) newLimiter() limiter {
	if h.o.Window > 0 {
		w := &window{slots: make([]*rate.Limiter, h.o.Burst)}
		for i := range w.slots {
			w.slots[i] = rate.NewLimiter(rate.Every(h.o.Window), 1)
		}
		return w
	}
	return bucket{rate.NewLimiter(h.o.Limit, h.o.Burst)}
}

// limited reports whether msg counts against the limit.
func (h *hook) limited(msg *channel.Message) bool {
	switch msg.Event {
	case channel.EventJoin, channel.EventLeave, channel.EventHeartbeat:
		return false
	}
	if h.o.Match != nil {
		return h.o.Match(msg)
	}
	return h.events == nil || h.events[msg.Event]
}

// connLimiter returns the limiter of s's connection, made on first use and
// dropped when the connection ends.
func (h *hook) connLimiter(s *channel.Socket) limiter {
	c := s.Conn()
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.conns[c]; ok {
		return l
	}
	l := h.newLimiter()
	if c.Context().Err() != nil {
		return l // ending: not kept
	}
	if h.conns == nil {
		h.conns = make(map[*channel.Conn]limiter)
	}
	h.conns[c] = l
	context.AfterFunc(c.Context(), func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	})
	return l
}

// wrap is the Middleware; it runs once per join.
func (h *hook) wrap(next channel.Handler) channel.Handler {
	var own limiter // PerChannel, made on the first limited event
	return channel.HandlerFunc(func(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
		if !h.limited(msg) {
			return next.Handle(ctx, s, msg)
		}
		var l limiter
		if h.o.Scope == PerConnection {
			l = h.connLimiter(s)
		} else {
			if own == nil {
				own = h.newLimiter()
			}
			l = own
		}
		if !l.allow(time.Now()) {
			return h.o.Reject(ctx, s, msg), nil
		}
		return next.Handle(ctx, s, msg)
	})
}

// connCount returns the number of connections holding a limiter.
func (h *hook) connCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}
