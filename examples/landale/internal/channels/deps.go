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

// call runs fn for service through its breaker, bounded by the service
// timeout, containing panics.
func (d *Deps) call(ctx context.Context, service string, fn func(ctx context.Context) error) error {
	return d.callTimeout(ctx, service, d.ServiceTimeout, fn)
}

// callTimeout is call with its own timeout (0 for none). The timeout is
// applied inside the guarded call, so that a slow service counts as a
// failure of that service; the error then matches ErrServiceTimeout.
func (d *Deps) callTimeout(ctx context.Context, service string, timeout time.Duration, fn func(ctx context.Context) error) error {
	err := d.Breakers.guarded(ctx, service, func(ctx context.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				d.Logger.LogAttrs(ctx, slog.LevelError, "service call panicked", slog.String("service", service),
					slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				err = ErrServiceCrashed
			}
		}()
		if timeout <= 0 {
			return fn(ctx)
		}
		tctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		err = fn(tctx)
		if err != nil && errors.Is(err, context.DeadlineExceeded) && tctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%w: %s after %v", ErrServiceTimeout, service, timeout)
		}
		return err
	})
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

// withFallback is Landale's with_fallback on a breaker: primary's value,
// or fb's when primary fails, times out, panics or its breaker is open.
func withFallback[T any](ctx context.Context, d *Deps, service string, primary func(ctx context.Context) (T, error), fb func(err error) T) T {
	var v T
	err := d.call(ctx, service, func(ctx context.Context) (err error) {
		v, err = primary(ctx)
		return err
	})
	if err != nil {
		return fb(err)
	}
	return v
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

// errEnvelope is ResponseBuilder.error: {"success":false,"error":{...}}.
func errEnvelope(code, message string) map[string]any {
	return map[string]any{
		"success": false,
		"error":   map[string]any{"code": code, "message": message, "timestamp": isoNow()},
	}
}

func okEnvelope(data any) channel.Reply { return channel.OK(envelope(data)) }

func errEnvelopeReply(code, message string) channel.Reply {
	return channel.ErrorReply(errEnvelope(code, message))
}

// pong is ChannelHelpers.handle_ping's data.
func pong() map[string]any { return map[string]any{"pong": true, "timestamp": time.Now().Unix()} }

// envelopePing answers ping with the envelope, ignoring the payload.
func envelopePing() channel.Middleware {
	return channel.Ping(func(context.Context, *channel.Socket, *channel.Message) channel.Reply {
		return okEnvelope(pong())
	})
}

// hooks returns Landale's ChannelBase hooks with the given ping (nil for
// none). The ping sits inside LogUnhandled: it answers a "ping" the channel
// leaves unhandled.
func hooks(ping channel.Middleware) []channel.Middleware {
	if ping == nil {
		return []channel.Middleware{channel.Correlation(), channel.LogUnhandled()}
	}
	return []channel.Middleware{channel.Correlation(), channel.LogUnhandled(), ping}
}

// TwitchStatus is the Twitch service's status for the HTTP API, through the
// service's breaker and timeout like a channel's call; an error's text is
// Landale's format_error of the failure.
func (d *Deps) TwitchStatus(ctx context.Context) (map[string]any, error) {
	dd := d.withDefaults()
	var st map[string]any
	err := dd.call(ctx, sim.Twitch, func(ctx context.Context) (err error) {
		st, err = dd.World.Twitch.Status(ctx)
		return err
	})
	if err != nil {
		return nil, errors.New(errorText(err))
	}
	return st, nil
}
