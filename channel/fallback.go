package channel

import (
	"context"

	"github.com/pyre-go/pyre/fallback"
)

// BreakerSource is an optional interface of a Channel whose service calls
// use circuit breakers of its own rather than the server's
// (Options.Breakers), for instance breakers shared with calls made outside
// channels. WithFallback and PushInitialState ask the channel for the
// breaker of the service and guard the call with it; a nil breaker calls
// the service unguarded. *fallback.Registry has this method, so a channel
// may return a registry's breaker.
type BreakerSource interface {
	Breaker(service string) *fallback.Breaker
}

// WithFallback calls a service through the circuit breaker for that
// service name (the channel's when it is a BreakerSource, else the
// server's, Options.Breakers): primary's value when it succeeds,
// fallbackFn's when primary fails, panics, times out or its breaker is
// open. The Result says which path produced the value and why
// (Result.Err); while the breaker is open, Result.Err matches both
// fallback.ErrOpen and the service's last failure
// (fallback.Breaker.LastFailure), so the fallback can still answer with the
// service's own error. The use of the fallback is logged once by the
// breaker's logger with ctx (the channel's context carries the
// connection's correlation id). The error is non-nil only when the
// fallback failed too.
//
// WithFallback may be called from any goroutine while the channel runs.
func WithFallback[T any](ctx context.Context, s *Socket, service string,
	primary func(ctx context.Context) (T, error),
	fallbackFn func(ctx context.Context, err error) (T, error),
) (fallback.Result[T], error) {
	return fallback.Call(ctx, s.breaker(service), primary, fallbackFn)
}

// breaker returns the breaker guarding service for the channel of s.
func (s *Socket) breaker(service string) *fallback.Breaker {
	if src, ok := s.p.ch.(BreakerSource); ok {
		return src.Breaker(service)
	}
	return s.p.conn.srv.breakers.Breaker(service)
}

// PushInitialState pushes event to the client after the join reply, with
// the value of provider, or of fallbackFn when the provider fails (see
// WithFallback): an initial state that still arrives, as a fallback state,
// when the state service is down. Call it from Join.
func PushInitialState[T any](s *Socket, event, service string,
	provider func(ctx context.Context) (T, error),
	fallbackFn func(ctx context.Context, err error) (T, error),
) {
	s.AfterJoin(func(ctx context.Context) {
		res, err := WithFallback(ctx, s, service, provider, fallbackFn)
		if err != nil {
			return // logged by the breaker; nothing sensible to push
		}
		_ = s.Push(event, res.Value)
	})
}

// Breakers returns the server's circuit-breaker registry, keyed by service
// name, for dashboards (Registry.States) and for calls outside channels.
func (s *Server) Breakers() *fallback.Registry { return s.breakers }
