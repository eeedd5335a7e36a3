package pubsub

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// ErrInvalidSubscriber is returned when subscribing a nil Subscriber or one
// whose dynamic type is not comparable (subscriptions are a set keyed by the
// Subscriber value; subscribe pointers).
var ErrInvalidSubscriber = errors.New("pubsub: invalid subscriber")

// localShards is the number of independently locked parts of a Local. Topics
// are spread over them by hash so that joins on different topics rarely
// contend.
const localShards = 16

// LocalOptions configures a Local. The zero value and nil are valid.
type LocalOptions struct {
	// Logger receives a record when a Subscriber panics in Deliver.
	// Defaults to discarding.
	Logger *slog.Logger
}

// Local is the set of subscriptions of one node together with synchronous
// fan-out to them. It is the building block of [Memory] and of the broker
// adapters, which use the first/last results of Subscribe and Unsubscribe to
// keep exactly one broker subscription per topic per node.
//
// Local is safe for concurrent use. Its zero value is not usable; call
// [NewLocal].
//
// # Locking and cost
//
// Topics are spread over 16 shards, each guarded by a sync.RWMutex. A topic
// keeps its subscribers in a slice plus an index map, so Subscribe and
// Unsubscribe are O(1) amortised (swap-delete; the slice shrinks when it is
// mostly empty). Deliver never holds a lock while it calls subscribers: it
// delivers from an immutable snapshot of the slice, published through an
// atomic pointer. A membership change drops the snapshot; the next Deliver
// on that topic rebuilds it once (one allocation, O(n) copy, which Deliver
// pays anyway in calls). While membership is stable, Deliver does not
// allocate at all, whatever the number of subscribers.
//
// Consequences: a Subscriber may call Subscribe, Unsubscribe or Deliver from
// inside its Deliver method without deadlock; a Deliver that started before
// an Unsubscribe returned may still reach the removed subscriber (on another
// goroutine) after Unsubscribe returns; a Deliver that starts after
// Subscribe (or Unsubscribe) returned always sees the change.
//
// Deliver may be called concurrently from many goroutines, also for one
// topic, so a Subscriber is called concurrently too.
//
// # Panics
//
// A panic in a Subscriber's Deliver is recovered, logged at error level, and
// delivery continues with the next subscriber.
type Local struct {
	seed   maphash.Seed
	log    *slog.Logger
	shards [localShards]localShard
}

type localShard struct {
	mu     sync.RWMutex
	topics map[string]*localTopic
	_      [40]byte // keep shards on separate cache lines
}

type localTopic struct {
	subs  []Subscriber       // guarded by the shard's mu
	index map[Subscriber]int // position in subs; guarded by the shard's mu
	snap  atomic.Pointer[localSnapshot]
}

// localSnapshot is an immutable copy of a topic's subscribers.
type localSnapshot struct {
	subs []Subscriber
}

var emptySnapshot = &localSnapshot{}

// NewLocal returns an empty Local. opts may be nil.
func NewLocal(opts *LocalOptions) *Local {
	l := &Local{seed: maphash.MakeSeed(), log: discardLogger}
	if opts != nil && opts.Logger != nil {
		l.log = opts.Logger
	}
	for i := range l.shards {
		l.shards[i].topics = make(map[string]*localTopic)
	}
	return l
}

var discardLogger = slog.New(slog.DiscardHandler)

func (l *Local) shard(topic string) *localShard {
	return &l.shards[maphash.String(l.seed, topic)%localShards]
}

// Subscribe adds s to the subscribers of topic. first reports whether topic
// had no subscriber before, that is, whether a broker adapter now needs a
// broker subscription for it. Subscribing a pair that is already subscribed
// changes nothing and returns first == false.
//
// It fails with [ErrInvalidTopic] for an empty topic and with
// [ErrInvalidSubscriber] for a nil or non-comparable s.
func (l *Local) Subscribe(topic string, s Subscriber) (first bool, err error) {
	if topic == "" {
		return false, ErrInvalidTopic
	}
	if err := checkSubscriber(s); err != nil {
		return false, err
	}
	sh := l.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.topics[topic]
	if t == nil {
		t = &localTopic{index: make(map[Subscriber]int)}
		sh.topics[topic] = t
		first = true
	} else if _, ok := t.index[s]; ok {
		return false, nil
	}
	t.index[s] = len(t.subs)
	t.subs = append(t.subs, s)
	t.snap.Store(nil)
	return first, nil
}

func checkSubscriber(s Subscriber) error {
	if s == nil {
		return fmt.Errorf("%w: nil", ErrInvalidSubscriber)
	}
	if typ := reflect.TypeOf(s); !typ.Comparable() {
		return fmt.Errorf("%w: %v is not comparable (subscribe a pointer)", ErrInvalidSubscriber, typ)
	}
	return nil
}

// Unsubscribe removes s from the subscribers of topic. last reports whether
// topic has no subscriber left, that is, whether a broker adapter can drop
// its broker subscription. Removing a pair that is not subscribed is a no-op
// and returns last == false.
func (l *Local) Unsubscribe(topic string, s Subscriber) (last bool) {
	if topic == "" || s == nil || !reflect.TypeOf(s).Comparable() {
		return false
	}
	sh := l.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.topics[topic]
	if t == nil {
		return false
	}
	i, ok := t.index[s]
	if !ok {
		return false
	}
	end := len(t.subs) - 1
	if i != end {
		moved := t.subs[end]
		t.subs[i] = moved
		t.index[moved] = i
	}
	t.subs[end] = nil
	t.subs = t.subs[:end]
	delete(t.index, s)
	if end == 0 {
		delete(sh.topics, topic)
		t.snap.Store(emptySnapshot)
		return true
	}
	if cap(t.subs) > 64 && len(t.subs) < cap(t.subs)/4 {
		subs := make([]Subscriber, len(t.subs), 2*len(t.subs))
		copy(subs, t.subs)
		t.subs = subs
	}
	t.snap.Store(nil)
	return false
}

// Count returns the number of subscribers of topic.
func (l *Local) Count(topic string) int {
	sh := l.shard(topic)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if t := sh.topics[topic]; t != nil {
		return len(t.subs)
	}
	return 0
}

// Topics returns the topics that have at least one subscriber, in no
// particular order.
func (l *Local) Topics() []string {
	var out []string
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.RLock()
		for topic := range sh.topics {
			out = append(out, topic)
		}
		sh.mu.RUnlock()
	}
	return out
}

// Subscribers returns the subscribers of topic, in no particular order, or
// an empty slice when it has none. The slice is the snapshot Deliver
// delivers from: it is shared, so the caller must not modify it, and it
// stays as it is when subscribers come and go later (they publish a new
// snapshot). It reflects every Subscribe and Unsubscribe that returned
// before the call, and it does not allocate while membership is stable.
//
// It serves fan-outs that call their subscribers in their own way (for
// instance through another interface, handing every receiver one shared
// encoding of the message): the caller iterates the slice with no lock of
// Local held, so the remarks on concurrency made under Local apply to it as
// to Deliver, and the panic policy is the caller's own.
func (l *Local) Subscribers(topic string) []Subscriber {
	sh := l.shard(topic)
	sh.mu.RLock()
	t := sh.topics[topic]
	sh.mu.RUnlock()
	if t == nil {
		return nil
	}
	return t.snapshot(sh).subs
}

// Deliver calls Deliver(msg) on every subscriber of msg.Topic, on the
// calling goroutine, and returns how many subscribers it called. msg must
// not be nil.
func (l *Local) Deliver(msg *Message) int {
	subs := l.Subscribers(msg.Topic)
	for i := 0; i < len(subs); {
		i = l.deliverFrom(subs, i, msg)
	}
	return len(subs)
}

// snapshot returns the current immutable subscriber list of t, building it
// if a membership change dropped it.
func (t *localTopic) snapshot(sh *localShard) *localSnapshot {
	if s := t.snap.Load(); s != nil {
		return s
	}
	// Allocate the copy before taking the lock for it, so that Subscribe
	// and Unsubscribe (which need the write lock) wait for a copy of the
	// slice only, not for the allocation of a large one.
	sh.mu.RLock()
	n := len(t.subs)
	sh.mu.RUnlock()
	buf := make([]Subscriber, 0, n+n/8+1)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	// Writers hold the write lock while they drop the snapshot, so the
	// slice cannot change under this read lock; concurrent rebuilders store
	// equal copies.
	s := t.snap.Load()
	if s == nil {
		s = &localSnapshot{subs: append(buf, t.subs...)} // allocates only if the topic grew past the headroom
		t.snap.Store(s)
	}
	return s
}

// deliverFrom delivers msg to subs[start:] and returns len(subs), or the
// index after a subscriber that panicked.
func (l *Local) deliverFrom(subs []Subscriber, start int, msg *Message) (next int) {
	next = start
	defer func() {
		if v := recover(); v != nil {
			l.log.Error("pubsub: subscriber panicked in Deliver",
				slog.String("topic", msg.Topic), slog.String("event", msg.Event),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			next++
		}
	}()
	for ; next < len(subs); next++ {
		subs[next].Deliver(msg)
	}
	return next
}
