// Package adapter is the part of a broker adapter (pubsub/redis,
// pubsub/nats) that does not depend on the broker: the node's identity and
// local subscriptions, the closed state, the checks every pubsub.PubSub
// method starts with, and the receive path that turns a broker message back
// into a local delivery. An adapter keeps a *Node in an unexported field, so
// that none of these methods joins its public API.
package adapter

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/internal/envelope"
)

// Node is one adapter instance's broker-independent state. It is safe for
// concurrent use.
type Node struct {
	// ID tells this node's messages apart when the broker echoes them.
	ID envelope.NodeID
	// Local holds the node's subscriptions and delivers to them.
	Local *pubsub.Local
	// Log is the adapter's logger, with the attributes pubsub=<kind> and
	// node=<ID>.
	Log *slog.Logger

	name   string // "pubsub/redis": the prefix of errors and log messages
	closed atomic.Bool

	publishErrors atomic.Uint64
	reconnects    atomic.Uint64
}

// PublishFailed counts a broadcast whose publish to the broker failed.
func (n *Node) PublishFailed() { n.publishErrors.Add(1) }

// Reconnected counts a connection to the broker that came back after it
// was lost.
func (n *Node) Reconnected() { n.reconnects.Add(1) }

// Stats returns the counters; reconnects, if not negative, replaces the
// node's own count (an adapter whose client library counts them).
func (n *Node) Stats(reconnects int64) pubsub.BrokerStats {
	st := pubsub.BrokerStats{PublishErrors: n.publishErrors.Load(), Reconnects: n.reconnects.Load()}
	if reconnects >= 0 {
		st.Reconnects = uint64(reconnects)
	}
	return st
}

// New returns a Node for the adapter named kind ("redis", "nats") that logs
// to logger (nil: discard).
func New(kind string, logger *slog.Logger) *Node {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{ID: envelope.NewNodeID(), name: "pubsub/" + kind}
	n.Log = logger.With(slog.String("pubsub", kind), slog.String("node", n.ID.String()))
	n.Local = pubsub.NewLocal(&pubsub.LocalOptions{Logger: n.Log})
	return n
}

// Closed reports whether Close was called.
func (n *Node) Closed() bool { return n.closed.Load() }

// Close marks the node closed and reports whether this call did it, that
// is, whether the caller must release the adapter's resources.
func (n *Node) Close() bool { return !n.closed.Swap(true) }

// CheckSubscribe is the start of Subscribe: pubsub.ErrClosed after Close,
// pubsub.ErrInvalidTopic for an empty topic, ctx's error if it is done.
func (n *Node) CheckSubscribe(ctx context.Context, topic string) error {
	if err := n.CheckUnsubscribe(topic); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: subscribe: %w", n.name, err)
	}
	return nil
}

// CheckUnsubscribe is the start of Unsubscribe, which ignores ctx so that
// cleanup on a canceled context works: pubsub.ErrClosed after Close,
// pubsub.ErrInvalidTopic for an empty topic.
func (n *Node) CheckUnsubscribe(topic string) error {
	if n.closed.Load() {
		return pubsub.ErrClosed
	}
	if topic == "" {
		return pubsub.ErrInvalidTopic
	}
	return nil
}

// Broadcast is the broker-independent half of Broadcast: it checks the node,
// msg and ctx as the pubsub contract requires, then delivers msg to the
// local subscribers. The adapter publishes msg to the broker after a nil
// error.
func (n *Node) Broadcast(ctx context.Context, msg *pubsub.Message) error {
	if n.closed.Load() {
		return pubsub.ErrClosed
	}
	if err := pubsub.CheckMessage(msg); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: broadcast: %w", n.name, err)
	}
	n.Local.Deliver(msg)
	return nil
}

// From returns a copy of msg whose From is from, for BroadcastFrom, which
// must not modify the caller's message; it fails as Broadcast does for a
// nil msg.
func From(msg *pubsub.Message, from string) (*pubsub.Message, error) {
	if msg == nil {
		return nil, pubsub.CheckMessage(msg)
	}
	cp := *msg
	cp.From = from
	return &cp, nil
}

// Receive delivers to the local subscribers a message data that arrived
// from the broker on the broker channel or subject called dest (kind names
// what dest is: "channel", "subject"). carrier maps a topic to the dest that
// carries it. It drops, logging at debug level, data that is not an
// envelope, the echo of this node's own broadcasts (delivered locally
// already), and a message whose topic is not carried by dest (a forged or
// misrouted message).
func (n *Node) Receive(kind, dest string, data []byte, carrier func(topic string) string) {
	node, msg, err := envelope.Decode(data)
	if err != nil {
		n.Log.Debug(n.name+": dropped undecodable message", slog.String(kind, dest), slog.Any("error", err))
		return
	}
	if node == n.ID {
		return
	}
	if carrier(msg.Topic) != dest {
		n.Log.Debug(n.name+": dropped message whose topic does not match its "+kind,
			slog.String(kind, dest), slog.String("topic", msg.Topic))
		return
	}
	n.Local.Deliver(msg)
}

// Default sets *d to v when it is zero or negative.
func Default(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Backoff applies the adapters' reconnection backoff defaults, 50ms and
// 5s, and raises hi to lo when it is lower.
func Backoff(lo, hi *time.Duration) {
	Default(lo, 50*time.Millisecond)
	Default(hi, 5*time.Second)
	if *hi < *lo {
		*hi = *lo
	}
}
