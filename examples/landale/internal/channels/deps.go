// Package channels holds the six channels of the Landale example, wired
// onto pyre's channel package exactly as Landale's Phoenix UserSocket
// routes them: DashboardChannel, ServicesChannel, EventsChannel,
// OverlayChannel, StreamChannel and TranscriptionChannel.
//
// Each channel keeps Landale's reply style (ResponseBuilder envelopes,
// raw maps, or {"message": ...}), topics, events, payloads and error texts;
// the README of the example lists where it deliberately differs.
package channels

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/examples/landale/internal/stream"
	"github.com/pyre-go/pyre/examples/landale/internal/transcript"
	"github.com/pyre-go/pyre/fallback"
	"github.com/pyre-go/pyre/pubsub"
)

// Deps are what the channels need. Zero fields get the defaults of
// Defaults.
type Deps struct {
	Bus         *events.Bus
	World       *sim.World
	Producer    *stream.Producer
	Transcripts *transcript.Store
	Overlays    *Tracker
	// Breakers guard service calls with circuit breakers. nil calls the
	// services unguarded.
	Breakers *Breakers
	// Environment is the server's configured environment, reported in
	// telemetry. Defaults to "development".
	Environment string
	// Started is when the server started (uptimes). Defaults to now.
	Started time.Time
	// ServiceTimeout bounds a service call from a channel. Defaults to 5 s.
	ServiceTimeout time.Duration
	// RateLimit is the number of dashboard commands accepted per
	// RateWindow and join. Defaults to 50 per 10 s.
	RateLimit  int
	RateWindow time.Duration
	// Logger receives the channels' own logs. Defaults to discarding.
	Logger *slog.Logger
}

// ServerVersion is the version reported in envelopes and telemetry.
const ServerVersion = "0.1.0"

func (d *Deps) withDefaults() *Deps {
	c := *d
	if c.Environment == "" {
		c.Environment = "development"
	}
	if c.Started.IsZero() {
		c.Started = time.Now()
	}
	if c.ServiceTimeout <= 0 {
		c.ServiceTimeout = 5 * time.Second
	}
	if c.RateLimit <= 0 {
		c.RateLimit = 50
	}
	if c.RateWindow <= 0 {
		c.RateWindow = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Overlays == nil {
		c.Overlays = NewTracker()
	}
	return &c
}

// Errors of service calls made by channels.
var (
	// ErrServiceTimeout: the call took longer than Deps.ServiceTimeout.
	ErrServiceTimeout = errors.New("channels: service call timed out")
	// ErrServiceCrashed: the call panicked (Landale: {:error, :service_crashed}).
	ErrServiceCrashed = errors.New("channels: service crashed")
)

// base is what every channel of the example embeds: pyre's channel.Base
// (the correlation, unhandled-event and ping hooks, AfterJoin,
// SubscribeTopics, PushError) and the example's dependencies, whose
// breakers guard the channel's service calls (channel.BreakerSource).
type base struct {
	channel.Base
	d *Deps
}

// Breaker guards the channel's calls to service (channel.BreakerSource):
// the breakers of Deps, shared with the HTTP API, or none (nil) when Deps
// has none.
func (b *base) Breaker(service string) *fallback.Breaker { return b.d.Breakers.Breaker(service) }

// call runs fn for service through the breaker of channel c with
// channel.WithFallback, bounded by the service timeout, containing panics.
// It returns fn's value, or its error, or while the breaker is open an
// error matching fallback.ErrOpen and the service's last failure. The value
// comes back through the Result, never through variables fn shares with
// its caller: fn runs on a goroutine of its own, which may outlive the call
// when the channel ends.
func call[T any](ctx context.Context, c *base, service string, fn func(ctx context.Context) (T, error)) (T, error) {
	return callTimeout(ctx, c, service, c.d.ServiceTimeout, fn)
}

// callTimeout is call with its own timeout (0 for none).
func callTimeout[T any](ctx context.Context, c *base, service string, timeout time.Duration, fn func(ctx context.Context) (T, error)) (T, error) {
	res, _ := channel.WithFallback(ctx, c.Socket(), service, bounded(c.d, service, timeout, fn),
		func(context.Context, error) (T, error) { var zero T; return zero, nil })
	return res.Value, serviceError(res.Err)
}

// withFallback is Landale's with_fallback for a service call of a channel:
// primary's value, bounded by the service timeout, or fb's when primary
// fails, times out, panics or its breaker is open (channel.WithFallback).
func withFallback[T any](ctx context.Context, s *channel.Socket, d *Deps, service string, primary func(ctx context.Context) (T, error), fb func() T) T {
	res, _ := channel.WithFallback(ctx, s, service, bounded(d, service, d.ServiceTimeout, primary),
		func(context.Context, error) (T, error) { return fb(), nil })
	return res.Value
}

// pushInitialState pushes event after the join reply with the value of
// provider, bounded by the service timeout, or fb's when the provider fails
// (channel.PushInitialState).
func pushInitialState[T any](s *channel.Socket, d *Deps, event, service string, provider func(ctx context.Context) (T, error), fb func() T) {
	channel.PushInitialState(s, event, service, bounded(d, service, d.ServiceTimeout, provider),
		func(context.Context, error) (T, error) { return fb(), nil })
}

// bounded wraps a service call: a timeout (0 for none) applied inside the
// guarded call, so that a slow service counts as a failure of that service
// (the error then matches ErrServiceTimeout), and a panic turned into
// ErrServiceCrashed and logged.
func bounded[T any](d *Deps, service string, timeout time.Duration, fn func(ctx context.Context) (T, error)) func(ctx context.Context) (T, error) {
	return func(ctx context.Context) (v T, err error) {
		defer func() {
			if p := recover(); p != nil {
				d.Logger.LogAttrs(ctx, slog.LevelError, "service call panicked", slog.String("service", service),
					slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				var zero T
				v, err = zero, ErrServiceCrashed
			}
		}()
		if timeout <= 0 {
			return fn(ctx)
		}
		tctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		v, err = fn(tctx)
		if err != nil && errors.Is(err, context.DeadlineExceeded) && tctx.Err() != nil && ctx.Err() == nil {
			var zero T
			return zero, fmt.Errorf("%w: %s after %v", ErrServiceTimeout, service, timeout)
		}
		return v, err
	}
}

// errOnly adapts a call that reports only an error.
func errOnly(fn func(ctx context.Context) error) func(ctx context.Context) (struct{}, error) {
	return func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) }
}

// serviceError is the error of a failed call: a panic that escaped the
// service also matches ErrServiceCrashed.
func serviceError(err error) error {
	if errors.Is(err, fallback.ErrPanic) {
		return errors.Join(ErrServiceCrashed, err)
	}
	return err
}

// errorText is Landale's format_error: a ServiceError's message, the
// Elixir form of a timeout or crash, or the error's text.
func errorText(err error) string {
	var se *sim.ServiceError
	switch {
	case errors.As(err, &se):
		return se.Message
	case errors.Is(err, ErrServiceTimeout):
		return ":timeout"
	case errors.Is(err, ErrServiceCrashed):
		return ":service_crashed"
	case errors.Is(err, fallback.ErrOpen):
		return ":circuit_open"
	}
	return err.Error()
}

// isoNow is DateTime.utc_now() as JSON.
func isoNow() string { return events.FormatTime(time.Now()) }

// envelope is ResponseBuilder.success: {"success":true,"data":D,"meta":{...}}.
func envelope(data any) map[string]any {
	return map[string]any{
		"success": true,
		"data":    data,
		"meta":    map[string]any{"timestamp": isoNow(), "server_version": ServerVersion},
	}
}

func okEnvelope(data any) channel.Reply { return channel.OK(envelope(data)) }

// errEnvelopeReply answers with ResponseBuilder.error, pyre's
// channel.ErrorEnvelope: {"success":false,"error":{"code","message","timestamp"}}.
func errEnvelopeReply(code, message string) channel.Reply {
	return channel.ErrorReply(channel.ErrorEnvelope(code, message))
}

// pong is ChannelHelpers.handle_ping's data.
func pong() map[string]any { return map[string]any{"pong": true, "timestamp": time.Now().Unix()} }

// envelopeHooks are pyre's default hooks (channel.DefaultHooks) with
// Landale's handle_ping: a "ping" the channel leaves unhandled is answered
// with the envelope, ignoring the payload. The envelope Ping sits inside
// the default one, so it answers first. The channels whose HandleIn answers
// every event (ping included) keep channel.Base's hooks.
func envelopeHooks() []channel.Middleware {
	return append(channel.DefaultHooks(), channel.Ping(envelopePing))
}

// envelopePing is ChannelHelpers.handle_ping's reply.
func envelopePing(context.Context, *channel.Socket, *channel.Message) channel.Reply {
	return okEnvelope(pong())
}

// busEvent returns the bus event an info carries: its PubSub message and
// header. ok is false for any other info, which the channel leaves to
// channel.Base.HandleInfo (logged as unhandled).
func busEvent(info any) (msg *pubsub.Message, h events.Header, ok bool) {
	msg, ok = info.(*pubsub.Message)
	if !ok {
		return nil, h, false
	}
	h, ok = events.DecodeHeader(msg)
	return msg, h, ok
}

// TwitchStatus is the Twitch service's status for the HTTP API, through the
// service's breaker and timeout like a channel's call; an error's text is
// Landale's format_error of the failure.
func (d *Deps) TwitchStatus(ctx context.Context) (map[string]any, error) {
	dd := d.withDefaults()
	res, _ := fallback.Call(ctx, dd.Breakers.Breaker(sim.Twitch),
		bounded(dd, sim.Twitch, dd.ServiceTimeout, dd.World.Twitch.Status),
		func(context.Context, error) (map[string]any, error) { return nil, nil })
	if res.Err != nil {
		return nil, errors.New(errorText(serviceError(res.Err)))
	}
	return res.Value, nil
}
