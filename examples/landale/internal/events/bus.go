package events

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/pyre-go/pyre/pubsub"
)

// Bus publishes normalized events on a PubSub, as Landale's
// Server.Events.process_event: every event goes to TopicEvents and then to
// TopicDashboard as a message with event PubSubEvent whose payload is the
// event's JSON. It also keeps the most recent events for the HTTP API.
type Bus struct {
	ps  pubsub.PubSub
	now func() time.Time

	mu     sync.Mutex
	recent []Event // ring of the last RecentSize events
	next   int
	count  uint64
}

// RecentSize is the number of published events a Bus remembers.
const RecentSize = 200

// NewBus returns a Bus publishing on ps. now defaults to time.Now.
func NewBus(ps pubsub.PubSub, now func() time.Time) *Bus {
	if now == nil {
		now = time.Now
	}
	return &Bus{ps: ps, now: now}
}

// PubSub returns the bus's PubSub.
func (b *Bus) PubSub() pubsub.PubSub { return b.ps }

// Publish validates the input data of an event of type typ, normalizes it
// and publishes it. A *ValidationError means nothing was published.
func (b *Bus) Publish(ctx context.Context, typ string, data map[string]any) (Event, error) {
	if err := Validate(typ, data); err != nil {
		return nil, err
	}
	e := Normalize(typ, data, b.now())
	return e, b.PublishEvent(ctx, e)
}

// PublishLocal is Publish to this node's subscribers only: for events that
// every node of a cluster derives for itself from the cluster-wide event
// stream (the stream producer's state), which would reach each client once
// per node if they were broadcast cluster-wide. On a PubSub without a local
// layer (see NodePubSub) it is Publish.
func (b *Bus) PublishLocal(ctx context.Context, typ string, data map[string]any) (Event, error) {
	if err := Validate(typ, data); err != nil {
		return nil, err
	}
	e := Normalize(typ, data, b.now())
	return e, b.publish(ctx, e, true)
}

// PublishEvent publishes an already normalized event on both topics.
func (b *Bus) PublishEvent(ctx context.Context, e Event) error { return b.publish(ctx, e, false) }

func (b *Bus) publish(ctx context.Context, e Event, local bool) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("events: encode %s: %w", e.Type(), err)
	}
	b.remember(e)
	for _, topic := range []string{TopicEvents, TopicDashboard} {
		msg := &pubsub.Message{Topic: topic, Event: PubSubEvent, Payload: payload}
		send := b.ps.Broadcast
		if lb, ok := b.ps.(localBroadcaster); ok && local {
			send = lb.BroadcastLocal
		}
		if err := send(ctx, msg); err != nil {
			return fmt.Errorf("events: publish %s on %s: %w", e.Type(), topic, err)
		}
	}
	return nil
}

func (b *Bus) remember(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count++
	if len(b.recent) < RecentSize {
		b.recent = append(b.recent, e)
		return
	}
	b.recent[b.next] = e
	b.next = (b.next + 1) % RecentSize
}

// Recent returns up to limit of the most recently published events, newest
// first.
func (b *Bus) Recent(limit int) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.recent)
	if limit <= 0 || limit > n {
		limit = n
	}
	out := make([]Event, 0, limit)
	for i := 0; i < limit; i++ {
		idx := (b.next - 1 - i + 2*n) % n
		if n < RecentSize {
			idx = n - 1 - i
		}
		out = append(out, b.recent[idx])
	}
	return out
}

// Published returns the number of events published so far.
func (b *Bus) Published() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count
}

// Header is the part of a published event that routing needs.
type Header struct {
	Type   string `json:"type"`
	Source string `json:"source"`
}

// DecodeHeader reads the type and source of an event message; ok is false
// for messages that are not events.
func DecodeHeader(msg *pubsub.Message) (h Header, ok bool) {
	if msg == nil || msg.Event != PubSubEvent || msg.Binary {
		return h, false
	}
	if err := json.Unmarshal(msg.Payload, &h); err != nil || h.Type == "" {
		return h, false
	}
	return h, true
}

// Decode reads a whole event message.
func Decode(msg *pubsub.Message) (Event, bool) {
	if msg == nil || msg.Event != PubSubEvent || msg.Binary {
		return nil, false
	}
	var e Event
	if err := json.Unmarshal(msg.Payload, &e); err != nil || e.Type() == "" {
		return nil, false
	}
	return e, true
}
