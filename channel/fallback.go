package channel

import (
	"context"

	"github.com/pyre-go/pyre/fallback"
)

// WithFallback calls a service through the server's circuit breaker for
// that service name (Options.Breakers): primary's value when it succeeds,
// fallbackFn's when primary fails, panics, times out or its breaker is open,
// which is Landale's with_fallback done properly. The Result says which
// path produced the value; the use of the fallback is logged once with the
// connection's correlation id. The error is non-nil only when the fallback
// failed too.
func WithFallback[T any](ctx context.Context, s *Socket, service string,
	primary func(ctx context.Context) (T, error),
	fallbackFn func(ctx context.Context, err error) (T, error),
) (fallback.Result[T], error) {
	return fallback.Call(ctx, s.p.conn.srv.breakers.Breaker(service), primary, fallbackFn)
}

// PushInitialState pushes event to the client after the join reply, with
// the value of provider, or of fallbackFn when the provider fails (see
// WithFallback): the after-join initial state of Landale's channels, with a
// fallback state when the state service is down. Call it from Join.
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
