package channel

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Base gives a channel the default hooks and helpers, so a channel only
// writes Join and HandleIn:
//
//	type Prices struct{ channel.Base }
//
//	func (p *Prices) Join(ctx context.Context, s *channel.Socket, _ channel.Payload) (any, error) {
//		p.AfterJoin(func(context.Context) { _ = s.Push("state", map[string]int{"btc": 100}) })
//		return nil, p.SubscribeTopics(ctx, "prices")
//	}
//
// (from ExampleBase, which also relays the "prices" PubSub topic to the
// client in HandleInfo).
//
// Its hooks (see Hooks and DefaultHooks) log joins with the correlation id,
// log unhandled events and answer a "ping" the channel leaves unhandled;
// HandleInfo logs unhandled infos. A channel adds HandleOut (OutHandler) or
// Terminate (Terminator) only when it needs them.
//
// The helpers that go with it work for any channel: PushError and
// ErrorEnvelope for error pushes and replies, WithFallback and
// PushInitialState for service calls guarded by circuit breakers (the
// server's, or the channel's own when it is a BreakerSource), and
// NewPushBatcher for batched pushes.
type Base struct {
	sock *Socket
}

// Base implements the optional InfoHandler and Hooker.
var (
	_ InfoHandler = (*Base)(nil)
	_ Hooker      = (*Base)(nil)
)

func (b *Base) bindBase(s *Socket) { b.sock = s }

// Socket returns the channel's socket (nil before the join starts).
func (b *Base) Socket() *Socket { return b.sock }

// Hooks returns DefaultHooks(). Override it to add or replace hooks.
func (b *Base) Hooks() []Middleware { return DefaultHooks() }

// HandleInfo logs the info as unhandled, with the correlation id.
func (b *Base) HandleInfo(ctx context.Context, s *Socket, info any) error {
	s.Logger().LogAttrs(ctx, slog.LevelWarn, "Unhandled channel message",
		slog.String("channel", s.Pattern()), slog.String("topic", s.Topic()),
		slog.String("type", fmt.Sprintf("%T", info)), slog.String("message", fmt.Sprintf("%v", info)))
	return nil
}

// SubscribeTopics subscribes the channel to PubSub topics; their messages
// arrive in HandleInfo as *pubsub.Message until the channel ends.
func (b *Base) SubscribeTopics(ctx context.Context, topics ...string) error {
	return b.sock.Subscribe(ctx, topics...)
}

// AfterJoin runs fn after the join reply was sent (initial state pushes).
func (b *Base) AfterJoin(fn func(ctx context.Context)) { b.sock.AfterJoin(fn) }

// PushError pushes the unified error envelope (see ErrorEnvelope) on event
// and logs it:
//
//	{"success":false,"error":{"code":code,"message":message,"timestamp":"2025-08-25T16:02:11.482913Z"}}
func (b *Base) PushError(event, code, message string) error {
	s := b.sock
	s.Logger().LogAttrs(s.Context(), slog.LevelError, "channel error pushed",
		slog.String("topic", s.Topic()), slog.String("event", event), slog.String("code", code), slog.String("message", message))
	return s.Push(event, ErrorEnvelope(code, message))
}

// ErrorEnvelope returns the unified error body every hook and helper uses:
// {"success":false,"error":{"code":…,"message":…,"timestamp":…}}.
func ErrorEnvelope(code, message string) map[string]any {
	return map[string]any{
		"success": false,
		"error": map[string]any{
			"code":      code,
			"message":   message,
			"timestamp": isoMicro(time.Now()),
		},
	}
}

// isoMicro formats t as Phoenix's DateTime.utc_now() encodes: ISO 8601 UTC
// with microseconds, e.g. "2025-08-25T16:02:11.482913Z".
func isoMicro(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// DefaultHooks returns the hooks Base installs, outermost first:
// Correlation, LogUnhandled and Ping(nil). Ping is innermost so that it sees
// the channel's own answer to "ping" before LogUnhandled does. The slice is
// the caller's.
func DefaultHooks() []Middleware {
	return []Middleware{defaultHooks[0], defaultHooks[1], defaultHooks[2]}
}

// defaultHooks are made once: the hooks are stateless.
var defaultHooks = [3]Middleware{Correlation(), LogUnhandled(), Ping(nil)}

// Correlation gives every channel a correlation id: a channel's context and
// logger carry the connection's correlation id (shared by every channel of
// the connection; Socket.CorrelationID returns it), and the hook logs
// "Channel joined" with it.
func Correlation() Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, s *Socket, msg *Message) (Reply, error) {
			if msg.Event != EventJoin {
				return next.Handle(ctx, s, msg)
			}
			r, err := next.Handle(ctx, s, msg)
			if err == nil && (r.IsZero() || r.Status == "ok") {
				s.Logger().LogAttrs(ctx, slog.LevelInfo, "Channel joined",
					slog.String("channel", s.Pattern()), slog.String("topic", s.Topic()))
			}
			return r, err
		})
	}
}

// Ping answers the event "ping" when the handler it wraps leaves it
// unhandled (returns ErrUnhandled): a channel's own "ping" case, such as the
// echo of mix phx.gen.channel, always wins, and a channel without one gets
// an answer. respond builds the answer; nil replies ok
// {"pong":true,"timestamp":<unix seconds>}.
//
// A channel whose HandleIn answers unknown events itself (an error reply
// rather than ErrUnhandled) never leaves "ping" unhandled: it handles "ping"
// in HandleIn. Ping must sit inside LogUnhandled, which turns ErrUnhandled
// into a logged no-reply (DefaultHooks orders them so).
func Ping(respond func(ctx context.Context, s *Socket, msg *Message) Reply) Middleware {
	if respond == nil {
		respond = func(context.Context, *Socket, *Message) Reply {
			return OK(map[string]any{"pong": true, "timestamp": time.Now().Unix()})
		}
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, s *Socket, msg *Message) (Reply, error) {
			r, err := next.Handle(ctx, s, msg)
			if msg.Event == "ping" && err != nil && isUnhandled(err) {
				return respond(ctx, s, msg), nil
			}
			return r, err
		})
	}
}

// LogUnhandled turns ErrUnhandled into a warning "Unhandled channel message"
// with the event, the payload and the correlation id; nothing is replied.
// Observers (Server.Observe) still see the event as "unhandled".
func LogUnhandled() Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, s *Socket, msg *Message) (Reply, error) {
			r, err := next.Handle(ctx, s, msg)
			if err != nil && isUnhandled(err) {
				s.Logger().LogAttrs(ctx, slog.LevelWarn, "Unhandled channel message",
					slog.String("channel", s.Pattern()), slog.String("topic", s.Topic()),
					slog.String("event", msg.Event), slog.String("payload", msg.Payload.String()))
				msg.unhandled = true
				return r, nil
			}
			return r, err
		})
	}
}
