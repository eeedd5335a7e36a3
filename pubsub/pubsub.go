// Package pubsub is the message bus behind pyre's broadcasts.
//
// A PubSub delivers a Message published on a topic to every Subscriber of
// that topic on every node that shares the bus. The in-memory implementation
// returned by NewMemory is the default and serves a single process; the
// sub-packages redis and nats carry messages between nodes. Every
// implementation must pass the conformance suite in package pubsubtest.
//
// # Contract
//
//   - Subscriber.Deliver must not block: it is called on the publisher's
//     goroutine (in-memory) or on the adapter's receive loop (brokers). A
//     subscriber that needs to do work queues the message in a bounded queue
//     of its own and applies its own slow-consumer policy. Because Deliver never
//     blocks, a slow subscriber can never block a publisher.
//   - Messages published by one goroutine on one node reach each subscriber in
//     publish order. There is no ordering across publishers.
//   - Delivery is at most once: nothing is buffered for a subscriber that is
//     not subscribed, nothing is replayed.
//   - A Message and its Payload are shared by all subscribers and must be
//     treated as read-only by everyone, publisher included, once published.
//   - Subscribing the same Subscriber twice to one topic delivers once
//     (subscriptions are a set); Unsubscribe of an unknown pair is a no-op.
//   - Broadcast returns after local delivery; an error means the message may
//     not have reached other nodes (local subscribers have it already),
//     except that a ctx already canceled makes Subscribe and Broadcast fail
//     with context.Canceled before doing anything. Unsubscribe ignores ctx's
//     cancellation so that cleanup always works.
//   - A nil error from Broadcast means the bus took the message: for a
//     broker adapter, the broker has confirmed it (Redis answered the
//     PUBLISH; NATS answered a PING sent after the publish), so it goes to
//     every node subscribed at that moment, apart from the at-most-once
//     losses the adapter documents on the receiving side (a subscriber node
//     that is disconnected or too slow). An adapter never returns nil for a
//     message it has only buffered: while the broker cannot take messages
//     (down, restarting, frozen, unreachable) Broadcast fails with an error
//     wrapping ErrUnavailable, within a bounded time (the adapter's
//     documented publish timeout, or ctx's deadline if sooner), never
//     hanging. An adapter may offer an explicit, opt-in asynchronous mode
//     in which Broadcast returns before the confirmation; a message the
//     broker then does not confirm must be counted and logged. Nothing is
//     lost silently. pubsubtest.RunFaults checks this with a frozen and a
//     killed broker.
package pubsub

import (
	"context"
	"errors"
)

// Message is one broadcast on a topic.
type Message struct {
	// Topic is the Phoenix topic, any non-empty string.
	Topic string
	// Event is the event name.
	Event string
	// Payload is the encoded payload: JSON text, or raw bytes when Binary.
	Payload []byte
	// Binary reports whether Payload is opaque binary data rather than JSON.
	Binary bool
	// From is the opaque id of the sender for broadcast_from semantics, or "".
	// It is carried unchanged to every node; a subscriber that stands for the
	// sender (or for several receivers, one of which is the sender) skips it.
	// Ids must be unique across nodes (pyre's channel layer uses a random
	// node prefix).
	From string
}

// Subscriber receives messages of the topics it is subscribed to.
type Subscriber interface {
	// Deliver hands msg to the subscriber. It must not block and must not
	// modify msg. It may be called concurrently, also for one topic (two
	// publishers on one node publish on their own goroutines).
	Deliver(msg *Message)
}

// SubscriberFunc adapts a function to the Subscriber interface. Because a
// func value is not comparable, a SubscriberFunc must be subscribed through a
// pointer (&f) so that Unsubscribe can find it again.
type SubscriberFunc func(msg *Message)

// Deliver calls f(msg).
func (f *SubscriberFunc) Deliver(msg *Message) { (*f)(msg) }

// PubSub is the message bus. Implementations are safe for concurrent use
// and pass the conformance suite in package pubsubtest.
type PubSub interface {
	// Subscribe adds s to the subscribers of topic. It returns once local
	// delivery to s is set up; for a broker adapter the subscription to the
	// broker may complete later (and is retried while the broker is away).
	Subscribe(ctx context.Context, topic string, s Subscriber) error
	// Unsubscribe removes s from the subscribers of topic.
	Unsubscribe(ctx context.Context, topic string, s Subscriber) error
	// Broadcast delivers msg to every subscriber of msg.Topic on every node.
	// A nil error means the bus took the message; see the package doc for
	// what that promises and when Broadcast fails.
	Broadcast(ctx context.Context, msg *Message) error
	// BroadcastFrom is Broadcast with msg.From set to from, so that the
	// sender's own subscriber can skip the message.
	BroadcastFrom(ctx context.Context, from string, msg *Message) error
	// Close drops every subscription, stops the implementation's
	// goroutines and releases what it owns (a broker connection it
	// created; never one it was given). After Close, Subscribe,
	// Unsubscribe and Broadcast(From) fail with an error wrapping
	// [ErrClosed] and deliver nothing. Close is idempotent: later calls
	// return nil. It returns once the goroutines have ended.
	//
	// Whoever creates a PubSub closes it, after everything that uses it:
	// channel.Server closes only the PubSub it created itself (when
	// Options.PubSub was nil), and a presence.Tracker never closes its
	// PubSub.
	Close() error
}

// BrokerStats are the counters of a PubSub that carries broadcasts
// through a broker (pubsub/redis and pubsub/nats have a BrokerStats method
// returning them), for metrics: they count what the errors of Broadcast
// and the adapter's logs tell one at a time.
type BrokerStats struct {
	// PublishErrors counts broadcasts that were delivered locally but whose
	// publish to the broker failed (Broadcast returned an error, most wrap
	// ErrUnavailable): other nodes may have missed them.
	PublishErrors uint64
	// Reconnects counts the times the connection to the broker came back
	// after it was lost; the adapter then subscribes again to every topic
	// with local subscribers.
	Reconnects uint64
}

// Errors returned by implementations.
var (
	// ErrClosed is matched (errors.Is) by the error of every method but
	// Close called after the PubSub was closed.
	ErrClosed = errors.New("pubsub: closed")
	// ErrInvalidTopic is returned for an empty topic.
	ErrInvalidTopic = errors.New("pubsub: invalid topic")
	// ErrUnavailable wraps errors from a broker that cannot be reached or
	// did not confirm a message in time: the message was delivered locally
	// but may not have reached other nodes.
	ErrUnavailable = errors.New("pubsub: broker unavailable")
)
