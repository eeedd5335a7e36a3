package channel

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Base gives a channel the defaults of the Channel interface and the
// patterns of Landale's ChannelBase, so a channel only writes Join and
// HandleIn:
//
//	type Room struct{ channel.Base }
//
//	func (r *Room) Join(ctx context.Context, s *channel.Socket, p channel.Payload) (any, error) {
//		r.AfterJoin(func(ctx context.Context) { s.Push("state", currentState()) })
//		return nil, r.SubscribeTopics(ctx, "events")
//	}
//
// Its hooks (see Hooks) answer "ping", log joins with the correlation id and
// log unhandled events; HandleOut pushes intercepted broadcasts unchanged;
// HandleInfo logs unhandled infos; Terminate does nothing.
type Base struct {
	sock *Socket
}

func (b *Base) bindBase(s *Socket) { b.sock = s }

// Socket returns the channel's socket (nil before the join starts).
func (b *Base) Socket() *Socket { return b.sock }

// Hooks returns DefaultHooks(). Override it to add or replace hooks.
func (b *Base) Hooks() []Middleware { return DefaultHooks() }

// HandleOut pushes the intercepted broadcast unchanged.
func (b *Base) HandleOut(_ context.Context, s *Socket, msg *Message) error {
	return s.Push(msg.Event, msg.Payload)
}

// HandleInfo logs the info as unhandled, with the correlation id.
func (b *Base) HandleInfo(ctx context.Context, s *Socket, info any) error {
	s.Logger().LogAttrs(ctx, slog.LevelWarn, "Unhandled channel message",
		slog.String("channel", s.Pattern()), slog.String("topic", s.Topic()),
		slog.String("type", fmt.Sprintf("%T", info)), slog.String("message", fmt.Sprintf("%v", info)))
	return nil
}

// Terminate does nothing.
func (b *Base) Terminate(context.Context, *Socket, error) {}

// SubscribeTopics subscribes the channel to PubSub topics; their messages
// arrive in HandleInfo as *pubsub.Message until the channel ends.
func (b *Base) SubscribeTopics(ctx context.Context, topics ...string) error {
	return b.sock.Subscribe(ctx, topics...)
}

// AfterJoin runs fn after the join reply was sent (initial state pushes).
func (b *Base) AfterJoin(fn func(ctx context.Context)) { b.sock.AfterJoin(fn) }

// PushError pushes Landale's unified error shape on event and logs it:
//
//	{"success":false,"error":{"code":code,"message":message,"timestamp":"2025-08-25T16:02:11.482913Z"}}
func (b *Base) PushError(event, code, message string) error {
	s := b.sock
	s.Logger().LogAttrs(s.Context(), slog.LevelError, "channel error pushed",
		slog.String("topic", s.Topic()), slog.String("event", event), slog.String("code", code), slog.String("message", message))
	return s.Push(event, ErrorEnvelope(code, message))
}

// ErrorEnvelope returns Landale's error body: {"success":false,"error":{...}}.
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
// Correlation, Ping(nil) and LogUnhandled. The slice is the caller's.
func DefaultHooks() []Middleware {
	return []Middleware{defaultHooks[0], defaultHooks[1], defaultHooks[2]}
}

// defaultHooks are made once: the hooks are stateless.
var defaultHooks = [3]Middleware{Correlation(), Ping(nil), LogUnhandled()}

// Correlation is Landale's setup_correlation_id: a channel's context and
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

// Ping answers the event "ping" without calling the channel. respond builds
// the reply; nil replies ok {"pong":true,"timestamp":<unix seconds>}.
func Ping(respond func(ctx context.Context, s *Socket, msg *Message) Reply) Middleware {
	if respond == nil {
		respond = func(context.Context, *Socket, *Message) Reply {
			return OK(map[string]any{"pong": true, "timestamp": time.Now().Unix()})
		}
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, s *Socket, msg *Message) (Reply, error) {
			if msg.Event == "ping" {
				return respond(ctx, s, msg), nil
			}
			return next.Handle(ctx, s, msg)
		})
	}
}

// LogUnhandled turns ErrUnhandled into a warning "Unhandled channel message"
// with the event, the payload and the correlation id; nothing is replied.
func LogUnhandled() Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, s *Socket, msg *Message) (Reply, error) {
			r, err := next.Handle(ctx, s, msg)
			if err != nil && isUnhandled(err) {
				s.Logger().LogAttrs(ctx, slog.LevelWarn, "Unhandled channel message",
					slog.String("channel", s.Pattern()), slog.String("topic", s.Topic()),
					slog.String("event", msg.Event), slog.String("payload", msg.Payload.String()))
				return r, nil
			}
			return r, err
		})
	}
}
