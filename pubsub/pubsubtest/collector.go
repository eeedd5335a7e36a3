package pubsubtest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyre-go/pyre/pubsub"
)

// WaitTimeout bounds every wait of the suite for an asynchronous event
// (a delivery, a Sync). It is a hang detector, not a speed requirement.
const WaitTimeout = 15 * time.Second

// Syncer is an optional interface of a PubSub whose broker subscriptions
// complete asynchronously. Sync returns once every Subscribe and Unsubscribe
// made before the call is in effect at the broker and everything published
// before the call has been handed to the broker, or with an error when ctx
// is done first. The suite calls it after Subscribe and Unsubscribe and
// before it makes another node publish.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Sync calls ps.Sync when ps implements [Syncer] and fails t when it returns
// an error. It waits at most [WaitTimeout].
func Sync(t testing.TB, ps pubsub.PubSub) {
	t.Helper()
	s, ok := ps.(Syncer)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := s.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// Collector is a Subscriber that queues messages in a bounded channel, the
// way a real subscriber must: Deliver never blocks; when the queue is full
// the message is dropped and counted.
type Collector struct {
	name    string
	ch      chan *pubsub.Message
	dropped atomic.Int64
}

// NewCollector returns a Collector that holds up to size messages.
func NewCollector(name string, size int) *Collector {
	return &Collector{name: name, ch: make(chan *pubsub.Message, size)}
}

// Deliver queues msg or drops it when the queue is full.
func (c *Collector) Deliver(msg *pubsub.Message) {
	select {
	case c.ch <- msg:
	default:
		c.dropped.Add(1)
	}
}

// Dropped returns how many messages did not fit the queue.
func (c *Collector) Dropped() int64 { return c.dropped.Load() }

// Next waits for the next message and fails t after [WaitTimeout].
func (c *Collector) Next(t testing.TB) *pubsub.Message {
	t.Helper()
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	select {
	case m := <-c.ch:
		return m
	case <-timer.C:
		t.Fatalf("%s: no message within %v", c.name, WaitTimeout)
		return nil
	}
}

// Until receives messages until one satisfies match and returns the
// messages received before it. It fails t after [WaitTimeout].
func (c *Collector) Until(t testing.TB, match func(*pubsub.Message) bool) []*pubsub.Message {
	t.Helper()
	var before []*pubsub.Message
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	for {
		select {
		case m := <-c.ch:
			if match(m) {
				return before
			}
			before = append(before, m)
		case <-timer.C:
			t.Fatalf("%s: awaited message not seen within %v; got %d others: %s",
				c.name, WaitTimeout, len(before), summary(before))
			return nil
		}
	}
}

// UntilAll receives messages until each of ends has matched one and returns
// the messages that matched none. It fails t after [WaitTimeout].
func (c *Collector) UntilAll(t testing.TB, ends ...func(*pubsub.Message) bool) []*pubsub.Message {
	t.Helper()
	seen := make([]bool, len(ends))
	left := len(ends)
	var others []*pubsub.Message
	for left > 0 {
		var matched bool
		others = append(others, c.Until(t, func(m *pubsub.Message) bool {
			for i, end := range ends {
				if end(m) {
					matched = true
					if !seen[i] {
						seen[i] = true
						left--
					}
				}
			}
			return matched
		})...)
	}
	return others
}

// Pending returns how many messages are queued and not yet received.
func (c *Collector) Pending() int { return len(c.ch) }

func summary(ms []*pubsub.Message) string {
	var b strings.Builder
	for i, m := range ms {
		if i == 8 {
			fmt.Fprintf(&b, " …")
			break
		}
		fmt.Fprintf(&b, " [%.40q %.20q]", m.Topic, m.Event)
	}
	return b.String()
}

// fence is a topic and event a test broadcasts after the messages under
// test. Because messages from one publisher reach each subscriber in order,
// a subscriber that has seen the fence has seen everything sent before it.
type fence struct {
	topic string
	n     atomic.Int64
}

func newFence(prefix string) *fence { return &fence{topic: prefix + "fence"} }

// join subscribes every collector to the fence topic.
func (f *fence) join(t testing.TB, ps pubsub.PubSub, cs ...*Collector) {
	t.Helper()
	for _, c := range cs {
		mustSubscribe(t, ps, f.topic, c)
	}
}

// send broadcasts a new fence event on ps and returns a matcher for it.
func (f *fence) send(t testing.TB, ps pubsub.PubSub) func(*pubsub.Message) bool {
	t.Helper()
	event := fmt.Sprintf("fence-%d", f.n.Add(1))
	mustBroadcast(t, ps, &pubsub.Message{Topic: f.topic, Event: event, Payload: []byte("{}")})
	return func(m *pubsub.Message) bool { return m.Topic == f.topic && m.Event == event }
}

func mustSubscribe(t testing.TB, ps pubsub.PubSub, topic string, s pubsub.Subscriber) {
	t.Helper()
	if err := ps.Subscribe(context.Background(), topic, s); err != nil {
		t.Fatalf("Subscribe(%.60q): %v", topic, err)
	}
}

func mustUnsubscribe(t testing.TB, ps pubsub.PubSub, topic string, s pubsub.Subscriber) {
	t.Helper()
	if err := ps.Unsubscribe(context.Background(), topic, s); err != nil {
		t.Fatalf("Unsubscribe(%.60q): %v", topic, err)
	}
}

func mustBroadcast(t testing.TB, ps pubsub.PubSub, msg *pubsub.Message) {
	t.Helper()
	if err := ps.Broadcast(context.Background(), msg); err != nil {
		t.Fatalf("Broadcast(%.60q, %q): %v", msg.Topic, msg.Event, err)
	}
}
