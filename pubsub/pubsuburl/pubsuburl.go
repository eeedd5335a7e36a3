// Package pubsuburl opens a PubSub from a command-line style spec, so that
// servers can offer one flag for it:
//
//	-pubsub memory                  the in-memory default (one node)
//	-pubsub redis://127.0.0.1:6379  Redis PUBLISH/SUBSCRIBE (pubsub/redis)
//	-pubsub rediss://...            Redis over TLS
//	-pubsub nats://127.0.0.1:4222   NATS core subjects (pubsub/nats)
//
// It imports both broker adapters; applications that use one adapter
// can import it directly instead.
package pubsuburl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/nats"
	"github.com/pyre-go/pyre/pubsub/redis"
)

// ErrUnknownScheme is returned for a spec that names no known PubSub.
var ErrUnknownScheme = errors.New("pubsuburl: unknown pubsub (want memory, redis://, rediss:// or nats://)")

// Open returns the PubSub named by spec. A broker that cannot be reached
// yet is not an error: the adapters connect in the background and log. The
// caller owns the PubSub and closes it (after the server that uses it).
func Open(ctx context.Context, spec string, logger *slog.Logger) (pubsub.PubSub, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case spec == "" || spec == "memory":
		return pubsub.NewMemory(&pubsub.MemoryOptions{Logger: logger}), nil
	case strings.HasPrefix(spec, "redis://"), strings.HasPrefix(spec, "rediss://"):
		ps, err := redis.New(ctx, &redis.Options{URL: spec, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("pubsuburl: %w", err)
		}
		return ps, nil
	case strings.HasPrefix(spec, "nats://"), strings.HasPrefix(spec, "tls://"):
		ps, err := nats.New(ctx, &nats.Options{URL: spec, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("pubsuburl: %w", err)
		}
		return ps, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownScheme, spec)
}
