package events

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/pubsub"
)

// Two nodes on one cluster PubSub: a local publish reaches only its node's
// subscribers, a cluster publish every node's, each exactly once.
func TestNodePubSubLocalAndClusterDelivery(t *testing.T) {
	cluster := pubsub.NewMemory(nil)
	defer cluster.Close()
	a, b := NewNodePubSub(cluster), NewNodePubSub(cluster)
	defer a.Close()
	defer b.Close()
	var mu sync.Mutex
	got := map[string][]string{}
	sub := func(node string) *pubsub.SubscriberFunc {
		f := pubsub.SubscriberFunc(func(m *pubsub.Message) {
			mu.Lock()
			got[node] = append(got[node], m.Event)
			mu.Unlock()
		})
		return &f
	}
	sa, sb := sub("a"), sub("b")
	ctx := context.Background()
	require.NoError(t, a.Subscribe(ctx, TopicEvents, sa))
	require.NoError(t, b.Subscribe(ctx, TopicEvents, sb))

	busA := NewBus(a, nil)
	_, err := busA.PublishLocal(ctx, "stream.state_updated", map[string]any{})
	require.NoError(t, err)
	require.NoError(t, a.Broadcast(ctx, &pubsub.Message{Topic: TopicEvents, Event: "cluster"}))
	mu.Lock()
	assert.Equal(t, []string{PubSubEvent, "cluster"}, got["a"], "local and cluster, once each")
	assert.Equal(t, []string{"cluster"}, got["b"], "the other node gets the cluster message only")
	mu.Unlock()

	require.NoError(t, a.Unsubscribe(ctx, TopicEvents, sa))
	require.NoError(t, a.BroadcastLocal(ctx, &pubsub.Message{Topic: TopicEvents, Event: "late"}))
	require.NoError(t, b.Broadcast(ctx, &pubsub.Message{Topic: TopicEvents, Event: "late"}))
	mu.Lock()
	assert.Len(t, got["a"], 2, "unsubscribed from both layers")
	mu.Unlock()
}
