package pubsub

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// MemoryOptions configures a Memory. The zero value and nil are valid.
type MemoryOptions struct {
	// Logger receives a record when a Subscriber panics in Deliver.
	// Defaults to discarding.
	Logger *slog.Logger
}

// Memory is the in-process PubSub, pyre's default. Broadcast delivers to
// every subscriber synchronously, on the caller's goroutine, before it
// returns: messages from one goroutine reach each subscriber in order, and a
// publisher's own subscriber has a message before Broadcast returns.
//
// Fan-out is done by a [Local]; see there for the locking, the cost of each
// operation and the panic policy.
//
// # Context
//
// Nothing in Memory blocks, so ctx only matters when it is already done:
// Subscribe, Broadcast and BroadcastFrom then fail with ctx.Err() (wrapped)
// and change nothing. Unsubscribe ignores ctx so that cleanup on a canceled
// context still removes the subscription.
//
// Memory is safe for concurrent use. Its zero value is not usable; call
// [NewMemory].
type Memory struct {
	local  *Local
	closed atomic.Bool
}

var _ PubSub = (*Memory)(nil)

// NewMemory returns an empty in-memory PubSub. opts may be nil.
func NewMemory(opts *MemoryOptions) *Memory {
	var lopts LocalOptions
	if opts != nil {
		lopts.Logger = opts.Logger
	}
	return &Memory{local: NewLocal(&lopts)}
}

// Subscribe adds s to the subscribers of topic. See [PubSub].
func (m *Memory) Subscribe(ctx context.Context, topic string, s Subscriber) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if topic == "" {
		return ErrInvalidTopic
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pubsub: subscribe: %w", err)
	}
	_, err := m.local.Subscribe(topic, s)
	return err
}

// Unsubscribe removes s from the subscribers of topic. See [PubSub].
func (m *Memory) Unsubscribe(_ context.Context, topic string, s Subscriber) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if topic == "" {
		return ErrInvalidTopic
	}
	m.local.Unsubscribe(topic, s)
	return nil
}

// Broadcast delivers msg to every subscriber of msg.Topic before it
// returns. See [PubSub].
func (m *Memory) Broadcast(ctx context.Context, msg *Message) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if err := CheckMessage(msg); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pubsub: broadcast: %w", err)
	}
	m.local.Deliver(msg)
	return nil
}

// BroadcastFrom is Broadcast of a copy of msg whose From is from; msg itself
// is not modified.
func (m *Memory) BroadcastFrom(ctx context.Context, from string, msg *Message) error {
	if msg == nil {
		return CheckMessage(msg)
	}
	cp := *msg
	cp.From = from
	return m.Broadcast(ctx, &cp)
}

// Close releases the subscriptions. Every method called after Close returns
// [ErrClosed]; Close itself is idempotent and returns nil. Broadcasts that
// are running when Close is called finish normally.
func (m *Memory) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	for _, topic := range m.local.Topics() {
		m.local.dropTopic(topic)
	}
	return nil
}

// CheckMessage reports whether msg can be broadcast: it fails with an error
// wrapping [ErrInvalidTopic] for a nil message or an empty topic.
// Implementations call it first in Broadcast.
func CheckMessage(msg *Message) error {
	if msg == nil {
		return fmt.Errorf("%w: nil message", ErrInvalidTopic)
	}
	if msg.Topic == "" {
		return ErrInvalidTopic
	}
	return nil
}

// dropTopic removes every subscriber of topic.
func (l *Local) dropTopic(topic string) {
	sh := l.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if t := sh.topics[topic]; t != nil {
		delete(sh.topics, topic)
		t.snap.Store(emptySnapshot)
	}
}
