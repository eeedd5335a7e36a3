package pubsubtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pyre-go/pyre/pubsub"
)

func testSubscribeDeliver(t *testing.T, ps pubsub.PubSub, prefix string) {
	c := NewCollector("c", 8)
	topic := prefix + "room:1"
	mustSubscribe(t, ps, topic, c)
	Sync(t, ps)
	want := &pubsub.Message{Topic: topic, Event: "new_msg", Payload: []byte(`{"body":"hi"}`)}
	mustBroadcast(t, ps, want)
	// Broadcast returns after local delivery.
	if c.Pending() != 1 {
		t.Fatalf("after Broadcast returned the local subscriber has %d messages, want 1", c.Pending())
	}
	sameMessage(t, want, c.Next(t))
}

func testMultipleSubscribers(t *testing.T, ps pubsub.PubSub, prefix string) {
	topic := prefix + "room:many"
	f := newFence(prefix)
	cs := []*Collector{NewCollector("c0", 8), NewCollector("c1", 8), NewCollector("c2", 8)}
	for _, c := range cs {
		mustSubscribe(t, ps, topic, c)
	}
	f.join(t, ps, cs...)
	Sync(t, ps)
	want := &pubsub.Message{Topic: topic, Event: "e", Payload: []byte(`1`)}
	mustBroadcast(t, ps, want)
	end := f.send(t, ps)
	for _, c := range cs {
		got := c.Until(t, end)
		if len(got) != 1 {
			t.Fatalf("%s got %d messages, want 1:%s", c.name, len(got), summary(got))
		}
		sameMessage(t, want, got[0])
	}
}

func testUnsubscribe(t *testing.T, ps pubsub.PubSub, prefix string) {
	topic := prefix + "room:unsub"
	f := newFence(prefix)
	gone, stays := NewCollector("gone", 8), NewCollector("stays", 8)
	mustSubscribe(t, ps, topic, gone)
	mustSubscribe(t, ps, topic, stays)
	f.join(t, ps, gone, stays)
	Sync(t, ps)
	mustUnsubscribe(t, ps, topic, gone)
	Sync(t, ps)
	want := &pubsub.Message{Topic: topic, Event: "after", Payload: []byte(`{}`)}
	mustBroadcast(t, ps, want)
	end := f.send(t, ps)
	if got := gone.Until(t, end); len(got) != 0 {
		t.Fatalf("unsubscribed subscriber got %d messages:%s", len(got), summary(got))
	}
	got := stays.Until(t, end)
	if len(got) != 1 {
		t.Fatalf("remaining subscriber got %d messages, want 1:%s", len(got), summary(got))
	}
	sameMessage(t, want, got[0])

	// The last subscriber leaving, then coming back, works.
	mustUnsubscribe(t, ps, topic, stays)
	mustSubscribe(t, ps, topic, stays)
	Sync(t, ps)
	mustBroadcast(t, ps, want)
	end = f.send(t, ps)
	if got := stays.Until(t, end); len(got) != 1 {
		t.Fatalf("resubscribed subscriber got %d messages, want 1:%s", len(got), summary(got))
	}
}

func testUnsubscribeUnknown(t *testing.T, ps pubsub.PubSub, prefix string) {
	ctx := context.Background()
	topic := prefix + "room:known"
	c, stranger := NewCollector("c", 8), NewCollector("stranger", 8)
	if err := ps.Unsubscribe(ctx, prefix+"never-subscribed", c); err != nil {
		t.Fatalf("Unsubscribe of an unknown topic: %v", err)
	}
	mustSubscribe(t, ps, topic, c)
	if err := ps.Unsubscribe(ctx, topic, stranger); err != nil {
		t.Fatalf("Unsubscribe of an unknown subscriber: %v", err)
	}
	if err := ps.Unsubscribe(ctx, prefix+"room:other", c); err != nil {
		t.Fatalf("Unsubscribe from a topic it is not subscribed to: %v", err)
	}
	Sync(t, ps)
	mustBroadcast(t, ps, &pubsub.Message{Topic: topic, Event: "still-here"})
	if got := c.Next(t); got.Event != "still-here" {
		t.Fatalf("got %q, want still-here", got.Event)
	}
}

func testDoubleSubscribe(t *testing.T, ps pubsub.PubSub, prefix string) {
	topic := prefix + "room:double"
	f := newFence(prefix)
	c := NewCollector("c", 8)
	mustSubscribe(t, ps, topic, c)
	mustSubscribe(t, ps, topic, c)
	f.join(t, ps, c)
	Sync(t, ps)
	mustBroadcast(t, ps, &pubsub.Message{Topic: topic, Event: "once"})
	if got := c.Until(t, f.send(t, ps)); len(got) != 1 {
		t.Fatalf("double subscription delivered %d times, want 1:%s", len(got), summary(got))
	}
	// Subscriptions are a set: one Unsubscribe removes it.
	mustUnsubscribe(t, ps, topic, c)
	Sync(t, ps)
	mustBroadcast(t, ps, &pubsub.Message{Topic: topic, Event: "never"})
	if got := c.Until(t, f.send(t, ps)); len(got) != 0 {
		t.Fatalf("after one Unsubscribe got %d messages:%s", len(got), summary(got))
	}
}

func testSubscriberFunc(t *testing.T, ps pubsub.PubSub, prefix string) {
	topic := prefix + "room:func"
	got := make(chan string, 4)
	f := pubsub.SubscriberFunc(func(m *pubsub.Message) { got <- m.Event })
	mustSubscribe(t, ps, topic, &f)
	Sync(t, ps)
	mustBroadcast(t, ps, &pubsub.Message{Topic: topic, Event: "a"})
	select {
	case e := <-got:
		if e != "a" {
			t.Fatalf("got %q", e)
		}
	default:
		t.Fatalf("SubscriberFunc not called before Broadcast returned")
	}
	mustUnsubscribe(t, ps, topic, &f)
	mustBroadcast(t, ps, &pubsub.Message{Topic: topic, Event: "b"})
	if len(got) != 0 {
		t.Fatalf("unsubscribed SubscriberFunc still called: %q", <-got)
	}
}

func testTopicIsolation(t *testing.T, ps pubsub.PubSub, prefix string) {
	isolation(t, ps, ps, prefix)
}

// isolation subscribes one collector per nasty topic on sub and checks that
// each receives exactly the message pub broadcasts on its topic.
func isolation(t *testing.T, pub, sub pubsub.PubSub, prefix string) {
	f := newFence(prefix)
	topics := NastyTopics()
	cs := make([]*Collector, len(topics))
	for i, topic := range topics {
		cs[i] = NewCollector(fmt.Sprintf("topic[%d]", i), 8)
		mustSubscribe(t, sub, prefix+topic, cs[i])
	}
	f.join(t, sub, cs...)
	Sync(t, sub)
	for i, topic := range topics {
		mustBroadcast(t, pub, &pubsub.Message{Topic: prefix + topic, Event: fmt.Sprint(i)})
	}
	Sync(t, pub)
	end := f.send(t, pub)
	for i, c := range cs {
		got := c.Until(t, end)
		if len(got) != 1 || got[0].Event != fmt.Sprint(i) || got[0].Topic != prefix+topics[i] {
			t.Errorf("subscriber of %.40q got %d messages, want only its own:%s", topics[i], len(got), summary(got))
		}
	}
}

func testMessageFields(t *testing.T, ps pubsub.PubSub, prefix string) {
	fields(t, ps, ps, prefix)
}

// fields broadcasts each field case on pub and checks what sub receives.
func fields(t *testing.T, pub, sub pubsub.PubSub, prefix string) {
	topic := prefix + "room:fields"
	c := NewCollector("c", 32)
	mustSubscribe(t, sub, topic, c)
	Sync(t, sub)
	for _, want := range fieldCases(topic) {
		sent := cloneMessage(want)
		mustBroadcast(t, pub, sent)
		sameMessage(t, want, sent) // Broadcast left the message alone.
		sameMessage(t, want, c.Next(t))
	}
}

func testBroadcastFrom(t *testing.T, ps pubsub.PubSub, prefix string) {
	broadcastFrom(t, ps, ps, prefix)
}

func broadcastFrom(t *testing.T, pub, sub pubsub.PubSub, prefix string) {
	topic := prefix + "room:from"
	c := NewCollector("c", 8)
	mustSubscribe(t, sub, topic, c)
	Sync(t, sub)
	for _, from := range []string{"sender-1", "", "n0de:λ:7"} {
		msg := &pubsub.Message{Topic: topic, Event: "e", Payload: []byte(`{}`), From: "overwritten"}
		if err := pub.BroadcastFrom(context.Background(), from, msg); err != nil {
			t.Fatalf("BroadcastFrom: %v", err)
		}
		if msg.From != "overwritten" {
			t.Fatalf("BroadcastFrom modified the caller's message (From=%q)", msg.From)
		}
		if got := c.Next(t); got.From != from {
			t.Fatalf("From = %q, want %q", got.From, from)
		}
	}
}

func testOrdering(t *testing.T, ps pubsub.PubSub, prefix string) {
	ordering(t, ps, ps, prefix)
}

func ordering(t *testing.T, pub, sub pubsub.PubSub, prefix string) {
	const n = 1000
	a, b := prefix+"room:order-a", prefix+"room:order-b"
	c := NewCollector("c", 2*n)
	mustSubscribe(t, sub, a, c)
	mustSubscribe(t, sub, b, c)
	Sync(t, sub)
	for i := range n {
		topic := a
		if i%3 == 0 {
			topic = b // order holds across topics too
		}
		mustBroadcast(t, pub, &pubsub.Message{Topic: topic, Event: fmt.Sprint(i), Payload: []byte(fmt.Sprint(i))})
	}
	for i := range n {
		if got := c.Next(t); got.Event != fmt.Sprint(i) {
			t.Fatalf("message %d: got event %q", i, got.Event)
		}
	}
	if c.Dropped() != 0 {
		t.Fatalf("dropped %d", c.Dropped())
	}
}

func testConcurrent(t *testing.T, ps pubsub.PubSub, prefix string) {
	concurrent(t, []pubsub.PubSub{ps}, prefix)
}

// concurrent runs publishers on every node of nodes (two per node) while
// subscribers join and leave; stable subscribers on every node must see
// every message once, in per-publisher order.
func concurrent(t *testing.T, nodes []pubsub.PubSub, prefix string) {
	const perPublisher, churners = 200, 4
	topics := []string{prefix + "c:0", prefix + "c:1", prefix + "c:2"}
	publishers := 2 * len(nodes)
	total := publishers * perPublisher
	f := newFence(prefix)
	var stable []*Collector
	for n, ps := range nodes {
		for i := range 2 {
			c := NewCollector(fmt.Sprintf("node%d/stable%d", n, i), total+16)
			for _, topic := range topics {
				mustSubscribe(t, ps, topic, c)
			}
			f.join(t, ps, c)
			stable = append(stable, c)
		}
		Sync(t, ps)
	}

	stop := make(chan struct{})
	var churn, pubs sync.WaitGroup
	for i := range churners {
		ps := nodes[i%len(nodes)]
		churn.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				c := NewCollector("churn", 4)
				topic := topics[k%len(topics)]
				if err := ps.Subscribe(context.Background(), topic, c); err != nil {
					t.Errorf("churn Subscribe: %v", err)
					return
				}
				if err := ps.Unsubscribe(context.Background(), topic, c); err != nil {
					t.Errorf("churn Unsubscribe: %v", err)
					return
				}
			}
		})
	}
	for p := range publishers {
		ps := nodes[p%len(nodes)]
		pubs.Go(func() {
			for i := range perPublisher {
				msg := &pubsub.Message{Topic: topics[i%len(topics)], Event: fmt.Sprintf("%d/%d", p, i)}
				if err := ps.Broadcast(context.Background(), msg); err != nil {
					t.Errorf("publisher %d: %v", p, err)
					return
				}
			}
		})
	}
	pubs.Wait()
	close(stop)
	churn.Wait()
	for _, ps := range nodes {
		Sync(t, ps)
	}

	// One fence per node: a collector has everything once it saw the fence
	// of every node.
	var ends []func(*pubsub.Message) bool
	for _, ps := range nodes {
		ends = append(ends, f.send(t, ps))
	}
	for _, c := range stable {
		got := c.UntilAll(t, ends...)
		checkPerPublisher(t, c.name, got, publishers, perPublisher)
	}
}

func checkPerPublisher(t *testing.T, name string, got []*pubsub.Message, publishers, perPublisher int) {
	t.Helper()
	next := make([]int, publishers)
	for _, m := range got {
		var p, i int
		if _, err := fmt.Sscanf(m.Event, "%d/%d", &p, &i); err != nil || p >= publishers {
			t.Fatalf("%s: unexpected event %q", name, m.Event)
		}
		if i != next[p] {
			t.Fatalf("%s: publisher %d: got message %d, want %d (lost, duplicated or reordered)", name, p, i, next[p])
		}
		next[p]++
	}
	for p, n := range next {
		if n != perPublisher {
			t.Fatalf("%s: publisher %d: got %d messages, want %d", name, p, n, perPublisher)
		}
	}
}

func testSlowSubscriber(t *testing.T, ps pubsub.PubSub, prefix string) {
	const n = 100
	topic := prefix + "room:slow"
	slow, fast := NewCollector("slow", 1), NewCollector("fast", n)
	mustSubscribe(t, ps, topic, slow)
	mustSubscribe(t, ps, topic, fast)
	Sync(t, ps)
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := ps.Broadcast(context.Background(), &pubsub.Message{Topic: topic, Event: fmt.Sprint(i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-timer.C:
		t.Fatalf("publisher blocked by a subscriber whose queue is full")
	}
	for i := range n {
		if got := fast.Next(t); got.Event != fmt.Sprint(i) {
			t.Fatalf("fast subscriber: message %d is %q", i, got.Event)
		}
	}
	if slow.Pending() != 1 || slow.Dropped() < n-1 {
		t.Fatalf("slow subscriber: %d queued, %d dropped; want 1 and %d", slow.Pending(), slow.Dropped(), n-1)
	}
}

func testInvalidInput(t *testing.T, ps pubsub.PubSub, prefix string) {
	ctx := context.Background()
	c := NewCollector("c", 1)
	for name, err := range map[string]error{
		"Subscribe":     ps.Subscribe(ctx, "", c),
		"Unsubscribe":   ps.Unsubscribe(ctx, "", c),
		"Broadcast":     ps.Broadcast(ctx, &pubsub.Message{Event: "e"}),
		"BroadcastFrom": ps.BroadcastFrom(ctx, "x", &pubsub.Message{Event: "e"}),
	} {
		if !errors.Is(err, pubsub.ErrInvalidTopic) {
			t.Errorf("%s with an empty topic: got %v, want ErrInvalidTopic", name, err)
		}
	}
	if err := ps.Subscribe(ctx, prefix+"room:nil", nil); err == nil {
		t.Errorf("Subscribe of a nil Subscriber succeeded")
	}
}

func testCanceledContext(t *testing.T, ps pubsub.PubSub, prefix string) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	topic := prefix + "room:ctx"
	c, witness := NewCollector("c", 8), NewCollector("witness", 8)
	mustSubscribe(t, ps, topic, witness)

	if err := ps.Subscribe(canceled, topic, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with a canceled ctx: got %v, want context.Canceled", err)
	}
	if err := ps.Broadcast(canceled, &pubsub.Message{Topic: topic, Event: "canceled"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Broadcast with a canceled ctx: got %v, want context.Canceled", err)
	}
	if err := ps.BroadcastFrom(canceled, "x", &pubsub.Message{Topic: topic, Event: "canceled"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("BroadcastFrom with a canceled ctx: got %v, want context.Canceled", err)
	}
	Sync(t, ps)
	mustBroadcast(t, ps, &pubsub.Message{Topic: topic, Event: "live"})
	if got := witness.Next(t); got.Event != "live" {
		t.Fatalf("a Broadcast with a canceled ctx was delivered: %q", got.Event)
	}
	if c.Pending() != 0 {
		t.Fatalf("a Subscribe with a canceled ctx took effect")
	}

	// Unsubscribe works on a dead context: cleanup must not leak.
	if err := ps.Unsubscribe(canceled, topic, witness); err != nil {
		t.Fatalf("Unsubscribe with a canceled ctx: %v", err)
	}
	mustSubscribe(t, ps, topic, c)
	Sync(t, ps)
	mustBroadcast(t, ps, &pubsub.Message{Topic: topic, Event: "after"})
	if got := c.Next(t); got.Event != "after" {
		t.Fatalf("got %q", got.Event)
	}
	if witness.Pending() != 0 {
		t.Fatalf("Unsubscribe with a canceled ctx did not remove the subscription")
	}
}

func testClose(t *testing.T, ps pubsub.PubSub, prefix string) {
	ctx := context.Background()
	c := NewCollector("c", 1)
	topic := prefix + "room:close"
	mustSubscribe(t, ps, topic, c)
	if err := ps.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	msg := &pubsub.Message{Topic: topic, Event: "e"}
	for name, err := range map[string]error{
		"Subscribe":     ps.Subscribe(ctx, topic, c),
		"Unsubscribe":   ps.Unsubscribe(ctx, topic, c),
		"Broadcast":     ps.Broadcast(ctx, msg),
		"BroadcastFrom": ps.BroadcastFrom(ctx, "x", msg),
	} {
		if !errors.Is(err, pubsub.ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
		}
	}
	if c.Pending() != 0 {
		t.Errorf("a message was delivered after Close")
	}
	if err := ps.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// testCloseConcurrent closes a PubSub that has subscriptions from several
// goroutines at once: every Close returns nil, none panics or hangs.
func testCloseConcurrent(t *testing.T, ps pubsub.PubSub, prefix string) {
	for i := range 4 {
		mustSubscribe(t, ps, fmt.Sprintf("%sroom:close:%d", prefix, i), NewCollector("c", 1))
	}
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { errs <- ps.Close() }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Close: %v", err)
		}
	}
	if err := ps.Broadcast(context.Background(), &pubsub.Message{Topic: prefix + "room:close:0"}); !errors.Is(err, pubsub.ErrClosed) {
		t.Errorf("Broadcast after Close: got %v, want ErrClosed", err)
	}
}
