// Package pubsubtest is the conformance suite every pubsub.PubSub
// implementation runs, in the style of testing/slogtest.
//
// [Run] checks one node: delivery, subscription sets, topic isolation
// (including topics made of separator and wildcard characters), message
// fields carried unchanged, ordering, concurrency, slow subscribers, invalid
// input, canceled contexts and Close. [RunCluster] checks two nodes that
// share a broker: a message reaches every node's subscribers exactly once,
// fields (From included) survive the trip, and the publishing node does not
// deliver the copy that comes back from the broker a second time.
// [RunFaults] checks two nodes while the test freezes or kills their
// broker: Broadcast must then fail (with pubsub.ErrUnavailable, within
// [WaitTimeout] even without a ctx deadline) rather than report success
// for a message the broker never got, and both nodes must recover.
//
// Waits are bounded by [WaitTimeout] and driven by deliveries, never by
// sleeps. A broker adapter whose subscriptions complete asynchronously
// implements [Syncer]; the suite calls it after subscribing and before it
// asks another node to publish.
//
// # Contract checked beyond the pubsub package doc
//
//   - Subscribe, Broadcast and BroadcastFrom with an already-canceled ctx
//     fail with an error wrapping context.Canceled and have no effect.
//   - Unsubscribe with a canceled ctx still removes the subscription and
//     returns nil, so cleanup on a dead context works.
//   - BroadcastFrom does not modify the caller's Message, nor does Broadcast.
//   - An empty topic fails with pubsub.ErrInvalidTopic in all four methods;
//     a nil Subscriber fails.
//   - After Close, Subscribe, Unsubscribe, Broadcast and BroadcastFrom fail
//     with an error matching pubsub.ErrClosed and deliver nothing; Close is
//     idempotent (later calls, also concurrent ones, return nil).
package pubsubtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/pyre-go/pyre/pubsub"
)

// Run runs the single-node conformance suite, one subtest per property.
// newPubSub is called once per subtest and must return a fresh, empty
// PubSub; it should register its own cleanup (Close) with t.Cleanup. Two
// subtests close the PubSub themselves, so that cleanup must accept a second
// Close, as the contract requires.
func Run(t *testing.T, newPubSub func(t *testing.T) pubsub.PubSub) {
	tests := []struct {
		name string
		run  func(t *testing.T, ps pubsub.PubSub, prefix string)
	}{
		{"SubscribeDeliver", testSubscribeDeliver},
		{"MultipleSubscribers", testMultipleSubscribers},
		{"Unsubscribe", testUnsubscribe},
		{"UnsubscribeUnknown", testUnsubscribeUnknown},
		{"DoubleSubscribe", testDoubleSubscribe},
		{"SubscriberFunc", testSubscriberFunc},
		{"TopicIsolation", testTopicIsolation},
		{"MessageFields", testMessageFields},
		{"BroadcastFrom", testBroadcastFrom},
		{"Ordering", testOrdering},
		{"Concurrent", testConcurrent},
		{"SlowSubscriber", testSlowSubscriber},
		{"InvalidInput", testInvalidInput},
		{"CanceledContext", testCanceledContext},
		{"Close", testClose},
		{"CloseConcurrent", testCloseConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newPubSub(t), runPrefix())
		})
	}
}

// runPrefix returns a random topic prefix so that runs sharing a broker do
// not see each other's messages.
func runPrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "pst" + hex.EncodeToString(b) + ":"
}

// NastyTopics returns topics that a careless broker mapping confuses: ones
// that differ only in separator, wildcard, space, case or encoding-alphabet
// characters, unicode, invalid UTF-8, control bytes and very long topics.
// Every element is distinct and non-empty.
func NastyTopics() []string {
	long := strings.Repeat("room:lobby.", 1000) // 11 000 bytes
	return []string{
		"room:1", "room:1 ", " room:1", "room:1.", "room.1", "room 1", "room_1", "room-1", "room/1",
		"room:*", "room:>", "room.*", "room.>", "*", ">", ".", ":", " ", "..", "a.*.b", "a.>.b",
		"Room:1", "ROOM:1", "room:%2A", "room:%3E", "room:\\*",
		"cm9vbTox", "726f6f6d3a31", "room:1=", "room:1==", "{room}:1", "{}", "pyre:room:1",
		"комната:1", "部屋:1", "room:🔥", "room:é", "room:e\u0301",
		"\x00", "room:\x00", "room:\n", "room:\t", "room:\r\n", "\xff\xfe", "room:\xc3",
		long, long + "x", long[:len(long)-1], strings.Repeat(">", 300), strings.Repeat("*.", 300),
	}
}

// sameMessage reports whether got carries want's fields; a nil and an empty
// payload are equal.
func sameMessage(t testing.TB, want, got *pubsub.Message) {
	t.Helper()
	if got == nil {
		t.Fatalf("no message, want %.60q/%q", want.Topic, want.Event)
	}
	if got.Topic != want.Topic || got.Event != want.Event || got.Binary != want.Binary || got.From != want.From {
		t.Fatalf("got topic=%.60q event=%q binary=%v from=%q, want topic=%.60q event=%q binary=%v from=%q",
			got.Topic, got.Event, got.Binary, got.From, want.Topic, want.Event, want.Binary, want.From)
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		t.Fatalf("%q: payload differs: got %d bytes, want %d bytes", want.Event, len(got.Payload), len(want.Payload))
	}
}

func cloneMessage(m *pubsub.Message) *pubsub.Message {
	cp := *m
	cp.Payload = bytes.Clone(m.Payload)
	return &cp
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func bigPayload() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// fieldCases are messages whose fields must arrive unchanged.
func fieldCases(topic string) []*pubsub.Message {
	return []*pubsub.Message{
		{Topic: topic, Event: "json", Payload: []byte(`{"body":"hé \u2028 🔥","n":1}`)},
		{Topic: topic, Event: "binary", Payload: allBytes(), Binary: true},
		{Topic: topic, Event: "empty", Payload: nil},
		{Topic: topic, Event: "empty-binary", Payload: []byte{}, Binary: true},
		{Topic: topic, Event: "big", Payload: bigPayload(), Binary: true},
		{Topic: topic, Event: "from", Payload: []byte(`{}`), From: "node-7f:socket:42 ✓"},
		{Topic: topic, Event: "", Payload: []byte(`"no event"`)},
		{Topic: topic, Event: "ev:with.dots *>", Payload: []byte(`[]`), From: "x"},
		{Topic: topic, Event: "phx_reply\x00\xff", Payload: []byte("\x00"), Binary: true, From: "\xff"},
	}
}
