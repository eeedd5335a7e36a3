package channel

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/pyre-go/pyre/pubsub"
)

// hub is the node-local fan-out of broadcasts to joined channels. The local
// receivers of each topic live in a pubsub.Local; the node holds one
// subscription to the PubSub per topic that has local receivers, so a
// broadcast crosses the PubSub once per node and is encoded once per
// serializer for all local receivers.
//
// # Locking
//
// Delivery takes no lock of the hub: it iterates the Local's immutable
// snapshot of the topic's receivers, so a join or a leave never waits for a
// fan-out in progress, and a fan-out never waits for a join (beyond the
// Local's shard lock, held for map updates and for copying a new snapshot).
// As with Local, a delivery that started before remove returned may still
// reach the removed receiver; one that starts after add or remove returned
// sees the change.
//
// The PubSub subscription of a topic is managed by a hubTopic, whose mutex
// orders the Subscribe and Unsubscribe calls of that topic and is held
// across them; no lock shared between topics is held during a PubSub call.
// Every add, and every remove that takes the topic's last receiver, then
// reconciles under that mutex: it reads the topic's receiver count and
// subscribes or unsubscribes the node to match. Whatever the interleaving
// of joins and leaves, the last reconciliation sees the final count, so the
// node ends up subscribed exactly when the topic has local receivers. add
// returns only once the node is subscribed, so that a broadcast made after
// the join reply is not missed: a join therefore waits for a PubSub call
// on its own topic that is under way (the first join, or the last leave),
// never for one on another topic and never for a delivery.
type hub struct {
	ps     pubsub.PubSub
	local  *pubsub.Local
	seed   maphash.Seed
	shards [hubShards]hubShard

	// Counters for Stats, written once per broadcast (not per delivery),
	// kept off the cache line of the fields every delivery reads.
	_          [64]byte
	broadcasts atomic.Uint64 // broadcasts that reached a local receiver
	deliveries atomic.Uint64 // receivers they were handed to
	// filtered counts the deliveries dropped by clients' filters
	// (Stats.Filtered); payloadChecks the fan-outs that looked into their
	// payload for filters (once each, whatever the number of filters).
	filtered      atomic.Uint64
	payloadChecks atomic.Uint64
}

// hubShards is the number of independently locked parts of the hub's map
// of PubSub subscriptions, so that joins on different topics rarely contend.
const hubShards = 16

type hubShard struct {
	mu     sync.Mutex
	topics map[string]*hubTopic // topics with a PubSub subscription or a pending change
}

// hubTopic is the PubSub subscription of one topic on this node.
type hubTopic struct {
	mu         sync.Mutex // held across the topic's PubSub calls
	subscribed bool       // the node is subscribed to the topic; guarded by mu
	dead       bool       // no longer in its shard: look the topic up again; guarded by mu
}

// hubSub is a local receiver of a topic: a joined channel (proc) or a
// connection's socket-id subscription. Receivers are kept in the hub's
// pubsub.Local as they are (pointers), so a receiver is also a
// pubsub.Subscriber; the hub's fan-out calls deliver, with a frame shared
// by all receivers, not Deliver.
type hubSub interface {
	pubsub.Subscriber
	// deliver hands over a broadcast; it must not block.
	deliver(f *Frame, msg *pubsub.Message)
	// subID identifies the receiver for broadcast_from ("" never matches).
	subID() string
}

// Deliver implements pubsub.Subscriber for a proc kept in the hub's Local.
func (p *proc) Deliver(msg *pubsub.Message) { deliverOne(p, msg) }

// Deliver implements pubsub.Subscriber for a connIDSub kept in the hub's
// Local.
func (s *connIDSub) Deliver(msg *pubsub.Message) { deliverOne(s, msg) }

// deliverOne is the fan-out of msg to one receiver, with a frame of its own.
func deliverOne(s hubSub, msg *pubsub.Message) {
	if msg.From == "" || s.subID() != msg.From {
		s.deliver(newBroadcastFrame(msg), msg)
	}
}

func newHub(ps pubsub.PubSub) *hub {
	h := &hub{ps: ps, local: pubsub.NewLocal(nil), seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].topics = make(map[string]*hubTopic)
	}
	return h
}

// add subscribes s to topic and returns once the node is subscribed to
// topic on the PubSub, subscribing it if s is the first local receiver. On
// a PubSub error s is not subscribed. Adding a pair twice is not supported
// (a failed second add would remove the first).
func (h *hub) add(ctx context.Context, topic string, s hubSub) error {
	if _, err := h.local.Subscribe(topic, s); err != nil {
		return err
	}
	if err := h.reconcile(ctx, topic); err != nil {
		h.remove(ctx, topic, s)
		return err
	}
	return nil
}

// remove unsubscribes s from topic and the node from the PubSub when s was
// the last local receiver.
func (h *hub) remove(ctx context.Context, topic string, s hubSub) {
	if h.local.Unsubscribe(topic, s) {
		_ = h.reconcile(context.WithoutCancel(ctx), topic)
	}
}

// reconcile subscribes or unsubscribes the node to topic on the PubSub so
// that it is subscribed exactly when topic has local receivers. It returns
// the error of a PubSub Subscribe it made; the node is then not subscribed.
func (h *hub) reconcile(ctx context.Context, topic string) error {
	sh := &h.shards[maphash.String(h.seed, topic)%hubShards]
	for {
		sh.mu.Lock()
		t := sh.topics[topic]
		if t == nil {
			t = &hubTopic{}
			sh.topics[topic] = t
		}
		sh.mu.Unlock()

		t.mu.Lock()
		if t.dead {
			t.mu.Unlock()
			continue
		}
		var err error
		want := h.local.Count(topic) > 0
		switch {
		case want && !t.subscribed:
			if err = h.ps.Subscribe(ctx, topic, h); err == nil {
				t.subscribed = true
			}
		case !want && t.subscribed:
			// The error is dropped, as a leave has no one to report it
			// to; the node stops counting the subscription either way
			// (the PubSub fails this way once closed, for example).
			_ = h.ps.Unsubscribe(context.WithoutCancel(ctx), topic, h)
			t.subscribed = false
		}
		if !t.subscribed {
			// Forget the topic while holding t.mu, so that a
			// reconcile that finds t later sees dead and starts over
			// with a new hubTopic, after this one's PubSub calls.
			sh.mu.Lock()
			if sh.topics[topic] == t {
				delete(sh.topics, topic)
			}
			sh.mu.Unlock()
			t.dead = true
		}
		t.mu.Unlock()
		return err
	}
}

// Deliver implements pubsub.Subscriber for the node's PubSub subscriptions:
// it hands msg to this node's receivers of its topic.
func (h *hub) Deliver(msg *pubsub.Message) { h.deliverLocal(msg) }

// deliverLocal hands msg to this node's receivers of its topic: one shared
// frame for all of them, except the sender named by msg.From.
func (h *hub) deliverLocal(msg *pubsub.Message) {
	subs := h.local.Subscribers(msg.Topic)
	if len(subs) == 0 {
		return
	}
	f := newBroadcastFrame(msg)
	n := 0
	// doc is what clients' filters found in the payload, shared by the
	// whole fan-out; it looks only if a filter needs it.
	var doc payloadDoc
	var filtered uint64
	for _, e := range subs {
		// Nearly every receiver is a proc: asserting the concrete type
		// is a compare and makes the calls direct, where asserting the
		// hubSub interface would cost a lookup per receiver.
		if p, ok := e.(*proc); ok {
			if msg.From != "" && p.subID() == msg.From {
				continue
			}
			// proc.offer, inlined by hand: a receiver without a filter
			// pays one load and a compare for filters, not a call.
			if flt := p.filter.Load(); flt != nil && !flt.pass(msg.Event, msg.Payload, msg.Binary, &doc) {
				filtered++
				continue
			}
			p.queue(f, msg)
			n++
			continue
		}
		s := e.(hubSub)
		if msg.From == "" || s.subID() != msg.From {
			s.deliver(f, msg)
			n++
		}
	}
	if n > 0 {
		h.broadcasts.Add(1)
		h.deliveries.Add(uint64(n))
	}
	if filtered > 0 {
		h.filtered.Add(filtered) // once per fan-out, not per receiver
	}
	if doc.checked {
		h.payloadChecks.Add(1)
	}
}

// count returns the number of local receivers of topic.
func (h *hub) count(topic string) int { return h.local.Count(topic) }
