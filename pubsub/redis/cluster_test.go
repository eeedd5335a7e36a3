package redis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/internal/brokertest"
	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/pubsubtest"
	"github.com/pyre-go/pyre/pubsub/redis"
)

// TestShardedCluster runs the suites in sharded mode on a three-shard
// Redis Cluster, where topics live on different shards and each node keeps
// one subscription connection per hash slot in use.
func TestShardedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node Redis Cluster")
	}
	nodes := brokertest.StartRedisCluster(t, 3)
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr()
	}
	newClient := func(t *testing.T) *goredis.ClusterClient {
		c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, MaxRetries: -1})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	t.Run("Slots", func(t *testing.T) {
		c := newClient(t)
		for _, topic := range append(pubsubtest.NastyTopics(), "{room}:1", "x{}y", "{{a}}", "a{b") {
			key := "pyre:" + topic
			want, err := c.ClusterKeySlot(context.Background(), key).Result()
			require.NoError(t, err)
			assert.Equal(t, want, int64(redis.Slot(key)), "key %.40q", key)
		}
	})
	t.Run("Node", func(t *testing.T) {
		pubsubtest.Run(t, func(t *testing.T) pubsub.PubSub {
			return newNode(t, &redis.Options{Client: newClient(t), Sharded: true})
		})
	})
	// Message order across slots is not preserved in sharded cluster mode,
	// and the two-node suite relies on it (its fences use their own topic),
	// so it runs with a hash-tagged prefix that puts every topic on one slot.
	t.Run("Cluster/OneSlot", func(t *testing.T) {
		pubsubtest.RunCluster(t, func(t *testing.T) (pubsub.PubSub, pubsub.PubSub) {
			return newNode(t, &redis.Options{Client: newClient(t), Sharded: true, Prefix: "{pyre}:"}),
				newNode(t, &redis.Options{Client: newClient(t), Sharded: true, Prefix: "{pyre}:"})
		})
	})
	t.Run("Cluster/ManySlots", func(t *testing.T) {
		a := newNode(t, &redis.Options{Client: newClient(t), Sharded: true})
		b := newNode(t, &redis.Options{Client: newClient(t), Sharded: true})
		manySlots(t, newClient(t), a, b)
	})
}

// manySlots checks exactly-once, in-order delivery per topic for topics
// spread over many slots and shards, and that leaving a slot's last topic
// unsubscribes it.
func manySlots(t *testing.T, adm *goredis.ClusterClient, a, b *redis.PubSub) {
	const topics, perTopic = 12, 20
	ctx := context.Background()
	onA, onB := make([]*pubsubtest.Collector, topics), make([]*pubsubtest.Collector, topics)
	slots := map[uint16]bool{}
	for i := range topics {
		topic := fmt.Sprintf("room:%d", i)
		slots[redis.Slot(a.Channel(topic))] = true
		onA[i], onB[i] = pubsubtest.NewCollector("a/"+topic, 4*perTopic), pubsubtest.NewCollector("b/"+topic, 4*perTopic)
		require.NoError(t, a.Subscribe(ctx, topic, onA[i]))
		require.NoError(t, b.Subscribe(ctx, topic, onB[i]))
	}
	require.Greater(t, len(slots), topics/2, "topics should spread over slots")
	syncNode(t, a)
	syncNode(t, b)
	for k := range perTopic {
		for i := range topics {
			require.NoError(t, a.Broadcast(ctx, &pubsub.Message{Topic: fmt.Sprintf("room:%d", i), Event: fmt.Sprint(k)}))
		}
	}
	for i := range topics {
		require.NoError(t, a.Broadcast(ctx, &pubsub.Message{Topic: fmt.Sprintf("room:%d", i), Event: "fence-a"}))
		require.NoError(t, b.Broadcast(ctx, &pubsub.Message{Topic: fmt.Sprintf("room:%d", i), Event: "fence-b"}))
	}
	isFence := func(m *pubsub.Message) bool { return m.Event == "fence-a" || m.Event == "fence-b" }
	for i := range topics {
		for _, c := range []*pubsubtest.Collector{onA[i], onB[i]} {
			got := c.Until(t, isFence)
			got = append(got, c.Until(t, isFence)...) // both fences
			require.Len(t, got, perTopic, "exactly once")
			for k, m := range got {
				assert.Equal(t, fmt.Sprint(k), m.Event, "in order")
			}
		}
	}

	numsub := func(topic string) int64 { // summed over the shards: only the owner has any
		ch := a.Channel(topic)
		var mu sync.Mutex
		var total int64
		require.NoError(t, adm.ForEachShard(ctx, func(ctx context.Context, c *goredis.Client) error {
			n, err := c.PubSubShardNumSub(ctx, ch).Result()
			mu.Lock()
			total += n[ch]
			mu.Unlock()
			return err
		}))
		return total
	}
	assert.Equal(t, int64(2), numsub("room:0"), "one sharded subscription per node")
	for i := range topics {
		require.NoError(t, b.Unsubscribe(ctx, fmt.Sprintf("room:%d", i), onB[i]))
	}
	syncNode(t, b)
	for i := range topics {
		assert.Equal(t, int64(1), numsub(fmt.Sprintf("room:%d", i)), "b left room:%d", i)
	}
}
