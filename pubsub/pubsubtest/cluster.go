package pubsubtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/pyre-go/pyre/pubsub"
)

// RunCluster runs the two-node conformance suite. newCluster is called once
// per subtest and must return two fresh PubSubs, a and b, that are distinct
// nodes sharing one broker (for example two adapter instances with their
// own connections); it should register their cleanup with t.Cleanup.
func RunCluster(t *testing.T, newCluster func(t *testing.T) (a, b pubsub.PubSub)) {
	tests := []struct {
		name string
		run  func(t *testing.T, a, b pubsub.PubSub, prefix string)
	}{
		{"ExactlyOnce", testExactlyOnce},
		{"BothDirections", testBothDirections},
		{"UnsubscribeRemote", testUnsubscribeRemote},
		{"TopicIsolation", func(t *testing.T, a, b pubsub.PubSub, p string) { isolation(t, a, b, p) }},
		{"MessageFields", func(t *testing.T, a, b pubsub.PubSub, p string) { fields(t, a, b, p) }},
		{"BroadcastFrom", func(t *testing.T, a, b pubsub.PubSub, p string) { broadcastFrom(t, a, b, p) }},
		{"Ordering", func(t *testing.T, a, b pubsub.PubSub, p string) { ordering(t, a, b, p) }},
		{"Concurrent", func(t *testing.T, a, b pubsub.PubSub, p string) { concurrent(t, []pubsub.PubSub{a, b}, p) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newCluster(t)
			tc.run(t, a, b, runPrefix())
		})
	}
}

// testExactlyOnce checks that a message published on a reaches the
// subscribers of both nodes exactly once: in particular a does not deliver
// the copy that comes back from the broker. Each collector waits for two
// fences: a's, sent after the messages (b receives it after them), and b's,
// sent once a's messages were handed to the broker (a receives it after any
// echo of them).
func testExactlyOnce(t *testing.T, a, b pubsub.PubSub, prefix string) {
	const n = 50
	topic := prefix + "room:once"
	f := newFence(prefix)
	onA, onB := NewCollector("a", 4*n), NewCollector("b", 4*n)
	onA2 := NewCollector("a2", 4*n)
	mustSubscribe(t, a, topic, onA)
	mustSubscribe(t, a, topic, onA2)
	mustSubscribe(t, b, topic, onB)
	f.join(t, a, onA, onA2)
	f.join(t, b, onB)
	Sync(t, a)
	Sync(t, b)
	for i := range n {
		mustBroadcast(t, a, &pubsub.Message{Topic: topic, Event: fmt.Sprintf("0/%d", i), Payload: []byte(`{}`)})
	}
	endA := f.send(t, a)
	Sync(t, a)
	endB := f.send(t, b)
	for _, c := range []*Collector{onA, onA2, onB} {
		checkPerPublisher(t, c.name, c.UntilAll(t, endA, endB), 1, n)
	}
}

func testBothDirections(t *testing.T, a, b pubsub.PubSub, prefix string) {
	topic := prefix + "room:both"
	onA, onB := NewCollector("a", 8), NewCollector("b", 8)
	mustSubscribe(t, a, topic, onA)
	mustSubscribe(t, b, topic, onB)
	Sync(t, a)
	Sync(t, b)
	fromA := &pubsub.Message{Topic: topic, Event: "from-a", Payload: []byte(`"a"`)}
	fromB := &pubsub.Message{Topic: topic, Event: "from-b", Payload: []byte(`"b"`), Binary: true, From: "b:1"}
	mustBroadcast(t, a, fromA)
	sameMessage(t, fromA, onA.Next(t))
	sameMessage(t, fromA, onB.Next(t))
	if err := b.BroadcastFrom(context.Background(), "b:1", &pubsub.Message{Topic: topic, Event: "from-b", Payload: []byte(`"b"`), Binary: true}); err != nil {
		t.Fatal(err)
	}
	sameMessage(t, fromB, onB.Next(t))
	sameMessage(t, fromB, onA.Next(t))
}

// testUnsubscribeRemote checks that b stops delivering once its last
// subscriber left, and starts again when one comes back.
func testUnsubscribeRemote(t *testing.T, a, b pubsub.PubSub, prefix string) {
	topic := prefix + "room:remote-unsub"
	f := newFence(prefix)
	onB := NewCollector("b", 8)
	mustSubscribe(t, b, topic, onB)
	f.join(t, b, onB)
	Sync(t, b)
	mustBroadcast(t, a, &pubsub.Message{Topic: topic, Event: "before"})
	if got := onB.Next(t); got.Event != "before" {
		t.Fatalf("got %q, want before", got.Event)
	}
	mustUnsubscribe(t, b, topic, onB)
	Sync(t, b)
	mustBroadcast(t, a, &pubsub.Message{Topic: topic, Event: "while-away"})
	Sync(t, a)
	if got := onB.Until(t, f.send(t, a)); len(got) != 0 {
		t.Fatalf("unsubscribed remote subscriber got:%s", summary(got))
	}
	mustSubscribe(t, b, topic, onB)
	Sync(t, b)
	mustBroadcast(t, a, &pubsub.Message{Topic: topic, Event: "back"})
	if got := onB.Next(t); got.Event != "back" {
		t.Fatalf("got %q, want back", got.Event)
	}
}
