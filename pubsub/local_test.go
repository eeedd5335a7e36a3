package pubsub_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/pubsub"
)

type counter struct{ n atomic.Int64 }

func (c *counter) Deliver(*pubsub.Message) { c.n.Add(1) }

func TestLocalFirstLast(t *testing.T) {
	l := pubsub.NewLocal(nil)
	a, b := &counter{}, &counter{}
	first, err := l.Subscribe("t", a)
	require.NoError(t, err)
	assert.True(t, first)
	first, err = l.Subscribe("t", b)
	require.NoError(t, err)
	assert.False(t, first)
	first, err = l.Subscribe("t", a)
	require.NoError(t, err)
	assert.False(t, first, "double subscribe is not a first")
	assert.Equal(t, 2, l.Count("t"))
	assert.Equal(t, []string{"t"}, l.Topics())

	assert.False(t, l.Unsubscribe("t", &counter{}), "unknown subscriber")
	assert.False(t, l.Unsubscribe("nope", a), "unknown topic")
	assert.False(t, l.Unsubscribe("t", a))
	assert.False(t, l.Unsubscribe("t", a), "second unsubscribe is a no-op")
	assert.True(t, l.Unsubscribe("t", b))
	assert.Equal(t, 0, l.Count("t"))
	assert.Empty(t, l.Topics())

	first, err = l.Subscribe("t", a)
	require.NoError(t, err)
	assert.True(t, first, "topic came back")
}

func TestLocalSwapDeleteKeepsEveryone(t *testing.T) {
	// Remove subscribers from the middle, the ends and all but a few, and
	// check that exactly the remaining ones receive, which exercises the
	// index bookkeeping and the shrinking of the slice.
	l := pubsub.NewLocal(nil)
	subs := make([]*counter, 1000)
	for i := range subs {
		subs[i] = &counter{}
		_, err := l.Subscribe("t", subs[i])
		require.NoError(t, err)
	}
	keep := map[int]bool{0: true, 1: true, 499: true, 998: true}
	order := []int{}
	for i := range subs {
		order = append(order, (i*7919)%len(subs)) // a permutation
	}
	slices.Sort(order)
	order = slices.Compact(order)
	require.Len(t, order, len(subs))
	for k, i := range order {
		if keep[i] {
			continue
		}
		l.Unsubscribe("t", subs[i])
		if k%100 == 0 {
			l.Deliver(&pubsub.Message{Topic: "t"}) // rebuild snapshots midway
		}
	}
	for _, c := range subs {
		c.n.Store(0)
	}
	assert.Equal(t, len(keep), l.Deliver(&pubsub.Message{Topic: "t"}))
	for i, c := range subs {
		want := int64(0)
		if keep[i] {
			want = 1
		}
		assert.Equal(t, want, c.n.Load(), "subscriber %d", i)
	}
}

func TestLocalDeliverDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	l := pubsub.NewLocal(nil)
	for range 10000 {
		_, err := l.Subscribe("room:big", &counter{})
		require.NoError(t, err)
	}
	msg := &pubsub.Message{Topic: "room:big", Event: "e"}
	l.Deliver(msg) // build the snapshot
	allocs := testing.AllocsPerRun(20, func() { l.Deliver(msg) })
	assert.Zero(t, allocs)
}

func TestLocalSubscribers(t *testing.T) {
	l := pubsub.NewLocal(nil)
	assert.Empty(t, l.Subscribers("t"))
	a, b, c := &counter{}, &counter{}, &counter{}
	for _, s := range []*counter{a, b} {
		_, err := l.Subscribe("t", s)
		require.NoError(t, err)
	}
	snap := l.Subscribers("t")
	assert.ElementsMatch(t, []pubsub.Subscriber{a, b}, snap)

	// Later changes publish a new slice and leave the one handed out alone.
	_, err := l.Subscribe("t", c)
	require.NoError(t, err)
	l.Unsubscribe("t", a)
	assert.ElementsMatch(t, []pubsub.Subscriber{a, b}, snap)
	assert.ElementsMatch(t, []pubsub.Subscriber{b, c}, l.Subscribers("t"))

	l.Unsubscribe("t", b)
	l.Unsubscribe("t", c)
	assert.Empty(t, l.Subscribers("t"))
	assert.Empty(t, l.Subscribers("other"))
}

func TestLocalSubscribersDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	l := pubsub.NewLocal(nil)
	for range 1000 {
		_, err := l.Subscribe("room:big", &counter{})
		require.NoError(t, err)
	}
	l.Subscribers("room:big") // build the snapshot
	allocs := testing.AllocsPerRun(20, func() { l.Subscribers("room:big") })
	assert.Zero(t, allocs)
}

func TestLocalInvalid(t *testing.T) {
	l := pubsub.NewLocal(nil)
	_, err := l.Subscribe("", &counter{})
	assert.ErrorIs(t, err, pubsub.ErrInvalidTopic)
	_, err = l.Subscribe("t", nil)
	assert.ErrorIs(t, err, pubsub.ErrInvalidSubscriber)
	assert.False(t, l.Unsubscribe("t", nil))
	assert.Zero(t, l.Deliver(&pubsub.Message{Topic: "none"}))
}

func BenchmarkLocalDeliver10k(b *testing.B) {
	l := pubsub.NewLocal(nil)
	for range 10000 {
		_, _ = l.Subscribe("room:big", &counter{})
	}
	msg := &pubsub.Message{Topic: "room:big"}
	b.ReportAllocs()
	for b.Loop() {
		l.Deliver(msg)
	}
}

func BenchmarkLocalChurn10k(b *testing.B) {
	// Join and leave on a 10k topic: O(1) each, no slice copies.
	l := pubsub.NewLocal(nil)
	for range 10000 {
		_, _ = l.Subscribe("room:big", &counter{})
	}
	subs := make([]*counter, 1024)
	for i := range subs {
		subs[i] = &counter{}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := subs[i%len(subs)]
		_, _ = l.Subscribe("room:big", s)
		l.Unsubscribe("room:big", s)
		i++
	}
}

func ExampleLocal() {
	l := pubsub.NewLocal(nil)
	f := pubsub.SubscriberFunc(func(m *pubsub.Message) { fmt.Println("got", m.Event) })
	first, _ := l.Subscribe("room:1", &f)
	fmt.Println("first:", first)
	l.Deliver(&pubsub.Message{Topic: "room:1", Event: "hello"})
	fmt.Println("last:", l.Unsubscribe("room:1", &f))
	// Output:
	// first: true
	// got hello
	// last: true
}
