package channel

import (
	"context"
	"sync"

	"github.com/pyre-go/pyre/pubsub"
)

// hub is the node-local fan-out of broadcasts to joined channels. It holds
// one pubsub subscription per topic with local subscribers (reference
// counted through the subscriber set), so a broadcast crosses the PubSub
// once per node and is encoded once per serializer for all local receivers.
type hub struct {
	ps pubsub.PubSub

	mu     sync.Mutex // guards topics and orders pubsub (un)subscribes per topic
	topics map[string]*hubTopic
}

// hubSub is a local receiver of a topic: a joined channel (proc) or a
// connection's socket-id subscription.
type hubSub interface {
	// deliver hands over a broadcast; it must not block.
	deliver(f *Frame, msg *pubsub.Message)
	// subID identifies the receiver for broadcast_from ("" never matches).
	subID() string
}

// hubTopic is the pubsub.Subscriber of one topic on this node.
type hubTopic struct {
	topic string

	mu   sync.RWMutex
	subs []hubSub
	idx  map[hubSub]int
}

func newHub(ps pubsub.PubSub) *hub {
	return &hub{ps: ps, topics: make(map[string]*hubTopic)}
}

// add subscribes s to topic, subscribing the node to the PubSub on first use.
func (h *hub) add(ctx context.Context, topic string, s hubSub) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[topic]
	if t == nil {
		t = &hubTopic{topic: topic, idx: make(map[hubSub]int)}
		if err := h.ps.Subscribe(ctx, topic, t); err != nil {
			return err
		}
		h.topics[topic] = t
	}
	t.mu.Lock()
	if _, ok := t.idx[s]; !ok {
		t.idx[s] = len(t.subs)
		t.subs = append(t.subs, s)
	}
	t.mu.Unlock()
	return nil
}

// remove unsubscribes s from topic and the node from the PubSub when s was
// the last local subscriber.
func (h *hub) remove(ctx context.Context, topic string, s hubSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[topic]
	if t == nil {
		return
	}
	t.mu.Lock()
	if i, ok := t.idx[s]; ok {
		last := len(t.subs) - 1
		if i != last {
			t.subs[i] = t.subs[last]
			t.idx[t.subs[i]] = i
		}
		t.subs[last] = nil
		t.subs = t.subs[:last]
		delete(t.idx, s)
	}
	empty := len(t.subs) == 0
	t.mu.Unlock()
	if empty {
		delete(h.topics, topic)
		_ = h.ps.Unsubscribe(context.WithoutCancel(ctx), topic, t)
	}
}

// deliverLocal hands msg to this node's subscribers of its topic.
func (h *hub) deliverLocal(msg *pubsub.Message) {
	h.mu.Lock()
	t := h.topics[msg.Topic]
	h.mu.Unlock()
	if t != nil {
		t.Deliver(msg)
	}
}

// count returns the number of local subscribers of topic.
func (h *hub) count(topic string) int {
	h.mu.Lock()
	t := h.topics[topic]
	h.mu.Unlock()
	if t == nil {
		return 0
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.subs)
}

// Deliver implements pubsub.Subscriber: one shared frame for every local
// receiver, except the sender named by msg.From.
func (t *hubTopic) Deliver(msg *pubsub.Message) {
	f := newBroadcastFrame(msg)
	t.mu.RLock()
	for _, s := range t.subs {
		if msg.From != "" && s.subID() == msg.From {
			continue
		}
		s.deliver(f, msg)
	}
	t.mu.RUnlock()
}
