package channel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/pubsub"
)

// hangLimit bounds waits on operations that must not block; reaching it
// means the operation hung (it takes microseconds when it works).
const hangLimit = 20 * time.Second

// returnsWithin runs fn on a goroutine and fails the test if fn has not
// returned within hangLimit. It waits for fn in any case (so that no
// goroutine outlives the test), after release is called when fn hung.
func returnsWithin(t *testing.T, what string, fn func(), release func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(hangLimit):
		t.Errorf("%s did not return: it waits for something it must not", what)
		release()
		<-done
	}
}

// recSub is a hub receiver that records what it gets. If gate is set,
// deliver signals entered (once) and waits for gate to close.
type recSub struct {
	id      string
	n       atomic.Int64
	frames  chan *Frame
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func newRecSub(id string) *recSub { return &recSub{id: id, frames: make(chan *Frame, 16)} }

func (s *recSub) deliver(f *Frame, _ *pubsub.Message) {
	s.n.Add(1)
	select {
	case s.frames <- f:
	default:
	}
	if s.gate != nil {
		s.once.Do(func() { close(s.entered) })
		<-s.gate
	}
}
func (s *recSub) subID() string               { return s.id }
func (s *recSub) Deliver(msg *pubsub.Message) { deliverOne(s, msg) }

// brokerPS is a PubSub in front of a Memory that checks how the hub uses
// it: at most one subscription per topic and subscriber, no unsubscribe of
// what is not subscribed. subscribeHook, when set, runs first in Subscribe.
type brokerPS struct {
	*pubsub.Memory
	subscribeHook func(topic string) error

	mu         sync.Mutex
	subs       map[string]int // live subscriptions per topic
	calls      map[string]int // Subscribe calls per topic
	violations []string
}

func newBrokerPS() *brokerPS {
	return &brokerPS{Memory: pubsub.NewMemory(nil), subs: make(map[string]int), calls: make(map[string]int)}
}

func (b *brokerPS) Subscribe(ctx context.Context, topic string, s pubsub.Subscriber) error {
	if b.subscribeHook != nil {
		if err := b.subscribeHook(topic); err != nil {
			return err
		}
	}
	runtime.Gosched() // widen the window a racing join or leave could use
	b.mu.Lock()
	b.calls[topic]++
	if b.subs[topic] > 0 {
		b.violations = append(b.violations, "second subscription to "+topic)
	}
	b.subs[topic]++
	b.mu.Unlock()
	return b.Memory.Subscribe(ctx, topic, s)
}

func (b *brokerPS) Unsubscribe(ctx context.Context, topic string, s pubsub.Subscriber) error {
	runtime.Gosched()
	b.mu.Lock()
	if b.subs[topic] == 0 {
		b.violations = append(b.violations, "unsubscribe of "+topic+" while not subscribed")
	}
	b.subs[topic]--
	b.mu.Unlock()
	return b.Memory.Unsubscribe(ctx, topic, s)
}

func (b *brokerPS) subscribed(topic string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subs[topic]
}

func (b *brokerPS) subscribeCalls(topic string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[topic]
}

func (b *brokerPS) checkViolations(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Empty(t, b.violations)
}

// hubTopics counts the topics the hub tracks a PubSub subscription for.
func hubTopics(h *hub) int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		n += len(sh.topics)
		sh.mu.Unlock()
	}
	return n
}

func broadcast(t *testing.T, ps pubsub.PubSub, topic, from string) {
	t.Helper()
	msg := &pubsub.Message{Topic: topic, Event: "e", Payload: []byte(`{}`)}
	if from != "" {
		require.NoError(t, ps.BroadcastFrom(context.Background(), from, msg))
		return
	}
	require.NoError(t, ps.Broadcast(context.Background(), msg))
}

// A join or leave on a topic must not wait for a broadcast being delivered
// on that topic (with 10 000 receivers that is a whole fan-out).
func TestHubJoinDuringDelivery(t *testing.T) {
	ctx := context.Background()
	ps := pubsub.NewMemory(nil)
	h := newHub(ps)
	slow := newRecSub("slow")
	slow.gate, slow.entered = make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(slow.gate) })
	defer release()
	require.NoError(t, h.add(ctx, "room:a", slow))

	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		broadcast(t, ps, "room:a", "")
	}()
	<-slow.entered // a delivery to room:a is now in progress

	late := newRecSub("late")
	returnsWithin(t, "a join during a delivery on its topic", func() {
		assert.NoError(t, h.add(ctx, "room:a", late))
	}, release)
	other := newRecSub("other")
	require.NoError(t, h.add(ctx, "room:a", other))
	returnsWithin(t, "a leave during a delivery on its topic", func() {
		h.remove(ctx, "room:a", other)
	}, release)

	release()
	<-delivered
	assert.Equal(t, int64(0), late.n.Load(), "a delivery that began before the join does not reach the joiner")
	broadcast(t, ps, "room:a", "")
	assert.Equal(t, int64(1), late.n.Load(), "a broadcast after the join reaches the joiner")
	assert.Equal(t, int64(2), slow.n.Load())
	assert.Equal(t, 2, h.count("room:a"))
}

// The PubSub call of one topic must not hold up joins on other topics, and
// a second join on the topic returns only once the node is subscribed.
func TestHubBrokerCallBlocksOnlyItsTopic(t *testing.T) {
	ctx := context.Background()
	ps := newBrokerPS()
	entered, gate := make(chan struct{}), make(chan struct{})
	enter := sync.OnceFunc(func() { close(entered) })
	release := sync.OnceFunc(func() { close(gate) })
	defer release()
	ps.subscribeHook = func(topic string) error {
		if topic == "room:slow" {
			enter()
			<-gate
		}
		return nil
	}
	h := newHub(ps)

	a, b := newRecSub("a"), newRecSub("b")
	firstDone := make(chan struct{})
	go func() {
		defer close(firstDone)
		assert.NoError(t, h.add(ctx, "room:slow", a))
	}()
	<-entered // the node's subscription to room:slow is under way

	returnsWithin(t, "a join on another topic during a broker subscribe", func() {
		fast := newRecSub("fast")
		assert.NoError(t, h.add(ctx, "room:fast", fast))
		h.remove(ctx, "room:fast", fast)
	}, release)

	secondDone := make(chan struct{})
	go func() {
		defer close(secondDone)
		assert.NoError(t, h.add(ctx, "room:slow", b))
		// Returned: the node must be subscribed by now.
		assert.Equal(t, 1, ps.subscribed("room:slow"))
	}()
	release()
	<-firstDone
	<-secondDone

	broadcast(t, ps, "room:slow", "")
	assert.Equal(t, int64(1), a.n.Load())
	assert.Equal(t, int64(1), b.n.Load())
	assert.Equal(t, 1, ps.subscribeCalls("room:slow"), "one broker subscription per topic per node")
	h.remove(ctx, "room:slow", a)
	assert.Equal(t, 1, ps.subscribed("room:slow"), "kept while a receiver is left")
	h.remove(ctx, "room:slow", b)
	assert.Equal(t, 0, ps.subscribed("room:slow"), "released with the last receiver")
	assert.Equal(t, 0, hubTopics(h))
	ps.checkViolations(t)
}

// Joins and leaves on a few topics from many goroutines, with the first
// join and the last leave of a topic interleaving all the time: the node
// holds at most one broker subscription per topic, holds one whenever a
// join has returned, and none once every receiver is gone.
func TestHubSubscribeUnsubscribeRace(t *testing.T) {
	ctx := context.Background()
	ps := newBrokerPS()
	h := newHub(ps)
	const (
		workers = 16
		rounds  = 300
	)
	topics := []string{"room:0", "room:1", "room:2"}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				topic := topics[(w+i)%len(topics)]
				s := newRecSub(fmt.Sprintf("w%d.%d", w, i))
				if !assert.NoError(t, h.add(ctx, topic, s)) {
					return
				}
				if ps.subscribed(topic) != 1 {
					t.Errorf("join on %s returned while the node is not subscribed", topic)
					return
				}
				// A broadcast after the join reaches the receiver, which
				// therefore also proves the subscription is live.
				broadcast(t, ps, topic, "")
				if s.n.Load() == 0 {
					t.Errorf("broadcast on %s after the join was missed", topic)
					return
				}
				h.remove(ctx, topic, s)
			}
		})
	}
	wg.Wait()
	for _, topic := range topics {
		assert.Equal(t, 0, ps.subscribed(topic), topic)
		assert.Equal(t, 0, h.count(topic), topic)
	}
	assert.Equal(t, 0, hubTopics(h), "no subscription state left behind")
	ps.checkViolations(t)
}

// A failed broker subscribe fails the join and leaves nothing behind; a
// later join subscribes again.
func TestHubSubscribeError(t *testing.T) {
	ctx := context.Background()
	ps := newBrokerPS()
	errBroker := errors.New("broker down")
	var fail atomic.Bool
	fail.Store(true)
	ps.subscribeHook = func(string) error {
		if fail.Load() {
			return errBroker
		}
		return nil
	}
	h := newHub(ps)
	s := newRecSub("s")
	require.ErrorIs(t, h.add(ctx, "room:a", s), errBroker)
	assert.Equal(t, 0, h.count("room:a"))
	assert.Equal(t, 0, hubTopics(h))

	fail.Store(false)
	require.NoError(t, h.add(ctx, "room:a", s))
	broadcast(t, ps, "room:a", "")
	assert.Equal(t, int64(1), s.n.Load())
	h.remove(ctx, "room:a", s)
	assert.Equal(t, 0, ps.subscribed("room:a"))
	assert.Equal(t, 0, hubTopics(h))
	ps.checkViolations(t)
}

// Each receiver gets each broadcast once, all of them the same frame,
// except the sender of a broadcast_from; LocalBroadcast's path
// (deliverLocal) delivers the same way without the PubSub.
func TestHubFanout(t *testing.T) {
	ctx := context.Background()
	ps := pubsub.NewMemory(nil)
	h := newHub(ps)
	subs := []*recSub{newRecSub("a"), newRecSub("b"), newRecSub(""), newRecSub("d")}
	for _, s := range subs {
		require.NoError(t, h.add(ctx, "room:a", s))
	}
	require.NoError(t, h.add(ctx, "room:a", subs[0]), "adding twice is a no-op")
	assert.Equal(t, 4, h.count("room:a"))

	broadcast(t, ps, "room:a", "")
	var first *Frame
	for _, s := range subs {
		require.Equal(t, int64(1), s.n.Load(), s.id)
		f := <-s.frames
		if first == nil {
			first = f
		}
		assert.Same(t, first, f, "one frame shared by every receiver")
	}

	broadcast(t, ps, "room:a", "b")
	h.deliverLocal(&pubsub.Message{Topic: "room:a", Event: "e", Payload: []byte(`{}`), From: "d"})
	assert.Equal(t, int64(3), subs[0].n.Load())
	assert.Equal(t, int64(2), subs[1].n.Load(), "broadcast_from skips its sender")
	assert.Equal(t, int64(3), subs[2].n.Load(), `the id "" never matches`)
	assert.Equal(t, int64(2), subs[3].n.Load())

	h.deliverLocal(&pubsub.Message{Topic: "room:none", Event: "e"})
	for _, s := range subs {
		h.remove(ctx, "room:a", s)
	}
	h.remove(ctx, "room:a", subs[0]) // a no-op
	broadcast(t, ps, "room:a", "")
	assert.Equal(t, int64(3), subs[0].n.Load(), "no delivery after remove returned")
	assert.Equal(t, 0, hubTopics(h))
}

// A router hook is called once per join, so the Handler it returns may keep
// per-channel state, also for channels without hooks of their own
// (ratelimit's PerChannel limiter relies on it).
func TestRouterHookIsBuiltPerJoin(t *testing.T) {
	var built atomic.Int32
	r := NewRouter()
	r.Use(func(next Handler) Handler {
		built.Add(1)
		return next
	})
	r.Handle("bare:*", func() Channel { return &bareChannel{} })
	srv := NewServer(&Options{Router: r, Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	for _, topic := range []string{"bare:a", "bare:b", "bare:c"} {
		p := newProc(&Conn{srv: srv, ctx: context.Background()}, "bare:*", &bareChannel{}, &Message{Topic: topic})
		p.cancel()
	}
	assert.Equal(t, int32(3), built.Load())
}

type bareChannel struct{}

func (*bareChannel) Join(context.Context, *Socket, Payload) (any, error) { return nil, nil }
func (*bareChannel) HandleIn(context.Context, *Socket, *Message) (Reply, error) {
	return NoReply, ErrUnhandled
}
