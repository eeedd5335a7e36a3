package pubsub_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/pubsubtest"
)

func TestMemoryConformance(t *testing.T) {
	pubsubtest.Run(t, func(t *testing.T) pubsub.PubSub {
		m := pubsub.NewMemory(nil)
		t.Cleanup(func() { _ = m.Close() })
		return m
	})
}

// TestMemoryClusterOfOne runs the two-node suite with both "nodes" being
// the same Memory: every property it checks must also hold there.
func TestMemoryClusterOfOne(t *testing.T) {
	pubsubtest.RunCluster(t, func(t *testing.T) (pubsub.PubSub, pubsub.PubSub) {
		m := pubsub.NewMemory(nil)
		t.Cleanup(func() { _ = m.Close() })
		return m, m
	})
}

func TestMemoryOwnSubscriberBeforeReturn(t *testing.T) {
	// The channel layer relies on this: a broadcast reaches the sender's own
	// socket before the reply the sender writes next.
	m := pubsub.NewMemory(nil)
	defer m.Close()
	var order []string
	f := pubsub.SubscriberFunc(func(msg *pubsub.Message) { order = append(order, "deliver:"+msg.Event) })
	require.NoError(t, m.Subscribe(context.Background(), "room:1", &f))
	require.NoError(t, m.BroadcastFrom(context.Background(), "me", &pubsub.Message{Topic: "room:1", Event: "shout"}))
	order = append(order, "reply")
	assert.Equal(t, []string{"deliver:shout", "reply"}, order)
}

func TestMemoryPanickingSubscriber(t *testing.T) {
	var logs bytes.Buffer
	m := pubsub.NewMemory(&pubsub.MemoryOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer m.Close()
	ctx := context.Background()
	boom := pubsub.SubscriberFunc(func(*pubsub.Message) { panic("boom") })
	before, after := pubsubtest.NewCollector("before", 4), pubsubtest.NewCollector("after", 4)
	require.NoError(t, m.Subscribe(ctx, "t", before))
	require.NoError(t, m.Subscribe(ctx, "t", &boom))
	require.NoError(t, m.Subscribe(ctx, "t", after))
	require.NoError(t, m.Broadcast(ctx, &pubsub.Message{Topic: "t", Event: "e"}))
	assert.Equal(t, 1, before.Pending())
	assert.Equal(t, 1, after.Pending(), "delivery continues after a panicking subscriber")
	assert.Contains(t, logs.String(), "subscriber panicked")
	assert.Contains(t, logs.String(), "boom")
}

func TestMemoryReentrantSubscriber(t *testing.T) {
	// A subscriber may unsubscribe itself, subscribe others and broadcast
	// from inside Deliver without deadlock.
	m := pubsub.NewMemory(nil)
	defer m.Close()
	ctx := context.Background()
	other := pubsubtest.NewCollector("other", 4)
	var self pubsub.SubscriberFunc
	self = func(msg *pubsub.Message) {
		if msg.Topic != "a" {
			return
		}
		assert.NoError(t, m.Unsubscribe(ctx, "a", &self))
		assert.NoError(t, m.Subscribe(ctx, "b", other))
		assert.NoError(t, m.Broadcast(ctx, &pubsub.Message{Topic: "b", Event: "nested"}))
	}
	require.NoError(t, m.Subscribe(ctx, "a", &self))
	require.NoError(t, m.Broadcast(ctx, &pubsub.Message{Topic: "a", Event: "go"}))
	require.Equal(t, 1, other.Pending())
	assert.Equal(t, "nested", other.Next(t).Event)
	require.NoError(t, m.Broadcast(ctx, &pubsub.Message{Topic: "a", Event: "again"}))
	assert.Equal(t, 0, other.Pending(), "self unsubscribed")
}

type valueSubscriber struct{ seen []string }

func (v valueSubscriber) Deliver(*pubsub.Message) {}

func TestMemoryNonComparableSubscriber(t *testing.T) {
	m := pubsub.NewMemory(nil)
	defer m.Close()
	err := m.Subscribe(context.Background(), "t", valueSubscriber{})
	require.ErrorIs(t, err, pubsub.ErrInvalidSubscriber)
	assert.True(t, strings.Contains(err.Error(), "pointer"), err.Error())
	require.NoError(t, m.Unsubscribe(context.Background(), "t", valueSubscriber{}))
}

func TestMemoryNilMessage(t *testing.T) {
	m := pubsub.NewMemory(nil)
	defer m.Close()
	assert.True(t, errors.Is(m.Broadcast(context.Background(), nil), pubsub.ErrInvalidTopic))
	assert.True(t, errors.Is(m.BroadcastFrom(context.Background(), "x", nil), pubsub.ErrInvalidTopic))
}

func BenchmarkMemoryBroadcast(b *testing.B) {
	m := pubsub.NewMemory(nil)
	defer m.Close()
	pubsubtest.Bench(b, m, m)
}
