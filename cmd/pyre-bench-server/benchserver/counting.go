package benchserver

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/pyre-go/pyre/pubsub"
)

// BusCounts are the counters of a CountingPubSub.
type BusCounts struct {
	// Published is the number of Broadcast and BroadcastFrom calls: messages
	// this node handed to the bus.
	Published int64 `json:"broker_published"`
	// Received is the number of messages the bus delivered to this node's
	// subscribers (pyre's hub subscribes once per topic and node, so one per
	// broadcast and node, whatever the number of connections).
	Received int64 `json:"broker_received"`
	// Subscribes is the number of Subscribe calls that added a subscription.
	Subscribes int64 `json:"broker_subscribes"`
}

// CountingPubSub wraps a PubSub and counts what goes through it, so that a
// benchmark can show that a broadcast reaches the broker once per node, not
// once per subscriber.
type CountingPubSub struct {
	pubsub.PubSub
	published, received, subscribes atomic.Int64

	mu   sync.Mutex
	subs map[subKey]*countingSub
}

type subKey struct {
	topic string
	s     pubsub.Subscriber
}

type countingSub struct {
	s pubsub.Subscriber
	n *atomic.Int64
}

func (c *countingSub) Deliver(msg *pubsub.Message) {
	c.n.Add(1)
	c.s.Deliver(msg)
}

// NewCountingPubSub returns ps with counters.
func NewCountingPubSub(ps pubsub.PubSub) *CountingPubSub {
	return &CountingPubSub{PubSub: ps, subs: map[subKey]*countingSub{}}
}

// Counts returns the counters so far.
func (c *CountingPubSub) Counts() BusCounts {
	return BusCounts{Published: c.published.Load(), Received: c.received.Load(), Subscribes: c.subscribes.Load()}
}

// Subscribe subscribes a counting wrapper of s (the same wrapper for the
// same topic and subscriber, so that subscriptions stay a set).
func (c *CountingPubSub) Subscribe(ctx context.Context, topic string, s pubsub.Subscriber) error {
	k := subKey{topic, s}
	c.mu.Lock()
	w, ok := c.subs[k]
	if !ok {
		w = &countingSub{s: s, n: &c.received}
	}
	c.mu.Unlock()
	if err := c.PubSub.Subscribe(ctx, topic, w); err != nil {
		return err
	}
	c.mu.Lock()
	if _, ok := c.subs[k]; !ok {
		c.subs[k] = w
		c.subscribes.Add(1)
	}
	c.mu.Unlock()
	return nil
}

// Unsubscribe removes the wrapper Subscribe made for topic and s.
func (c *CountingPubSub) Unsubscribe(ctx context.Context, topic string, s pubsub.Subscriber) error {
	k := subKey{topic, s}
	c.mu.Lock()
	w, ok := c.subs[k]
	delete(c.subs, k)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return c.PubSub.Unsubscribe(ctx, topic, w)
}

// Broadcast counts and forwards msg.
func (c *CountingPubSub) Broadcast(ctx context.Context, msg *pubsub.Message) error {
	c.published.Add(1)
	return c.PubSub.Broadcast(ctx, msg)
}

// BroadcastFrom counts and forwards msg.
func (c *CountingPubSub) BroadcastFrom(ctx context.Context, from string, msg *pubsub.Message) error {
	c.published.Add(1)
	return c.PubSub.BroadcastFrom(ctx, from, msg)
}
