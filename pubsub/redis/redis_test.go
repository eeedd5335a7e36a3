package redis_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/internal/brokertest"
	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/pubsubtest"
	"github.com/pyre-go/pyre/pubsub/redis"
)

func testLogger(t testing.TB) (*slog.Logger, *brokertest.LogBuffer) { return brokertest.NewLogger(t) }

// fastOptions detect failures and reconnect quickly, for tests.
func fastOptions(url string, log *slog.Logger) *redis.Options {
	return &redis.Options{
		URL:                 url,
		Logger:              log,
		PublishTimeout:      500 * time.Millisecond,
		ConnectTimeout:      500 * time.Millisecond,
		HealthCheckInterval: 100 * time.Millisecond,
		MinBackoff:          10 * time.Millisecond,
		MaxBackoff:          100 * time.Millisecond,
	}
}

func newNode(t testing.TB, opts *redis.Options) *redis.PubSub {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger, _ = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := redis.New(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Close()) })
	return p
}

// admin returns a plain client for asserting broker state.
func admin(t testing.TB, b *brokertest.Broker) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: b.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func syncNode(t testing.TB, p *redis.PubSub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pubsubtest.WaitTimeout)
	defer cancel()
	require.NoError(t, p.Sync(ctx))
}

func TestConformance(t *testing.T) {
	b := brokertest.StartRedis(t)
	for _, sharded := range []bool{false, true} {
		name := map[bool]string{false: "PUBLISH", true: "SPUBLISH"}[sharded]
		t.Run(name, func(t *testing.T) {
			opts := &redis.Options{URL: b.URL(), Sharded: sharded}
			pubsubtest.Run(t, func(t *testing.T) pubsub.PubSub { return newNode(t, opts) })
		})
		t.Run(name+"/Cluster", func(t *testing.T) {
			opts := &redis.Options{URL: b.URL(), Sharded: sharded}
			pubsubtest.RunCluster(t, func(t *testing.T) (pubsub.PubSub, pubsub.PubSub) {
				return newNode(t, opts), newNode(t, opts)
			})
		})
	}
}

// TestFaults runs the fault suite with default timeouts, unsharded and
// sharded.
func TestFaults(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		t.Run(map[bool]string{false: "PUBLISH", true: "SPUBLISH"}[sharded], func(t *testing.T) {
			pubsubtest.RunFaults(t, func(t *testing.T) (pubsub.PubSub, pubsub.PubSub, pubsubtest.Broker) {
				b := brokertest.StartRedis(t)
				opts := &redis.Options{URL: b.URL(), Sharded: sharded}
				return newNode(t, opts), newNode(t, opts), b
			})
		})
	}
}

func TestTopicMapping(t *testing.T) {
	b := brokertest.StartRedis(t)
	a := newNode(t, &redis.Options{URL: b.URL(), Prefix: "app1:"})
	assert.Equal(t, "app1:room:*", a.Channel("room:*"))
	topics := pubsubtest.NastyTopics()
	c := pubsubtest.NewCollector("c", 1)
	for _, topic := range topics {
		require.NoError(t, a.Subscribe(context.Background(), topic, c))
	}
	syncNode(t, a)
	ctx := context.Background()
	chans := make([]string, len(topics))
	for i, topic := range topics {
		chans[i] = "app1:" + topic
	}
	counts, err := admin(t, b).PubSubNumSub(ctx, chans...).Result()
	require.NoError(t, err)
	for _, ch := range chans {
		assert.Equal(t, int64(1), counts[ch], "channel %.40q", ch)
	}
	all, err := admin(t, b).PubSubChannels(ctx, "*").Result()
	require.NoError(t, err)
	assert.Len(t, all, len(topics), "one channel per topic, no collisions")
}

func TestRefCountedBrokerSubscriptions(t *testing.T) {
	b := brokertest.StartRedis(t)
	adm := admin(t, b)
	ctx := context.Background()
	a, other := newNode(t, &redis.Options{URL: b.URL()}), newNode(t, &redis.Options{URL: b.URL()})
	numsub := func() int64 {
		t.Helper()
		syncNode(t, a)
		syncNode(t, other)
		n, err := adm.PubSubNumSub(ctx, a.Channel("room:1")).Result()
		require.NoError(t, err)
		return n[a.Channel("room:1")]
	}
	subs := []*pubsubtest.Collector{pubsubtest.NewCollector("0", 1), pubsubtest.NewCollector("1", 1), pubsubtest.NewCollector("2", 1)}
	for _, s := range subs {
		require.NoError(t, a.Subscribe(ctx, "room:1", s))
	}
	assert.Equal(t, int64(1), numsub(), "three local subscribers, one broker subscription")
	require.NoError(t, other.Subscribe(ctx, "room:1", subs[0]))
	assert.Equal(t, int64(2), numsub(), "one per node")
	require.NoError(t, a.Unsubscribe(ctx, "room:1", subs[0]))
	require.NoError(t, a.Unsubscribe(ctx, "room:1", subs[1]))
	assert.Equal(t, int64(2), numsub(), "a still has a subscriber")
	require.NoError(t, a.Unsubscribe(ctx, "room:1", subs[2]))
	assert.Equal(t, int64(1), numsub(), "a's last subscriber left")
	require.NoError(t, other.Unsubscribe(ctx, "room:1", subs[0]))
	assert.Equal(t, int64(0), numsub())
}

func TestBrokerDownAtStart(t *testing.T) {
	b := brokertest.StartRedis(t)
	b.Kill()
	log, logs := testLogger(t)
	a := newNode(t, fastOptions(b.URL(), log))
	assert.Contains(t, logs.String(), "Redis unavailable at start")
	assert.False(t, a.Connected())

	ctx := context.Background()
	local := pubsubtest.NewCollector("local", 8)
	require.NoError(t, a.Subscribe(ctx, "room:1", local))
	err := a.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "offline"})
	require.ErrorIs(t, err, pubsub.ErrUnavailable)
	assert.Equal(t, "offline", local.Next(t).Event, "local delivery works without Redis")

	b.Restart()
	syncNode(t, a)
	assert.True(t, a.Connected())
	other := newNode(t, fastOptions(b.URL(), nil))
	require.NoError(t, other.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "online"}))
	assert.Equal(t, "online", local.Next(t).Event, "subscribed once Redis appeared")
}

// TestRestart kills Redis under two nodes, checks local delivery and fast
// failure during the outage, restarts Redis on the same port and checks
// that both nodes resubscribed.
func TestRestart(t *testing.T) {
	b := brokertest.StartRedis(t)
	adm := admin(t, b)
	ctx := context.Background()
	na, nb := newNode(t, fastOptions(b.URL(), nil)), newNode(t, fastOptions(b.URL(), nil))
	ca, cb := pubsubtest.NewCollector("a", 16), pubsubtest.NewCollector("b", 16)
	require.NoError(t, na.Subscribe(ctx, "room:1", ca))
	require.NoError(t, nb.Subscribe(ctx, "room:1", cb))
	syncNode(t, na)
	syncNode(t, nb)
	require.NoError(t, na.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "before"}))
	assert.Equal(t, "before", ca.Next(t).Event)
	assert.Equal(t, "before", cb.Next(t).Event)
	assert.Equal(t, pubsub.BrokerStats{}, na.BrokerStats(), "the first connection is no reconnection")

	b.Kill()
	for _, n := range []*redis.PubSub{na, na, nb} { // first call may still find a pooled connection
		err := n.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "during"})
		require.ErrorIs(t, err, pubsub.ErrUnavailable)
	}
	assert.Equal(t, "during", ca.Next(t).Event)
	assert.Equal(t, "during", ca.Next(t).Event)
	assert.Equal(t, "during", cb.Next(t).Event, "local delivery during the outage")
	assert.EqualValues(t, 2, na.BrokerStats().PublishErrors)
	assert.EqualValues(t, 1, nb.BrokerStats().PublishErrors)

	b.Restart()
	syncNode(t, na)
	syncNode(t, nb)
	assert.Equal(t, pubsub.BrokerStats{PublishErrors: 2, Reconnects: 1}, na.BrokerStats())
	assert.Equal(t, pubsub.BrokerStats{PublishErrors: 1, Reconnects: 1}, nb.BrokerStats())
	n, err := adm.PubSubNumSub(ctx, na.Channel("room:1")).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(2), n[na.Channel("room:1")], "both nodes resubscribed")
	require.NoError(t, na.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "after-a"}))
	require.NoError(t, nb.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "after-b"}))
	for _, c := range []*pubsubtest.Collector{ca, cb} {
		got := map[string]bool{c.Next(t).Event: true, c.Next(t).Event: true}
		assert.Equal(t, map[string]bool{"after-a": true, "after-b": true}, got, c)
	}
	assert.Zero(t, ca.Pending()+cb.Pending())
}

// TestFrozenBroker checks that a Redis that accepts connections but never
// answers cannot hang Broadcast or local delivery.
func TestFrozenBroker(t *testing.T) {
	b := brokertest.StartRedis(t)
	ctx := context.Background()
	log, logs := testLogger(t)
	na, nb := newNode(t, fastOptions(b.URL(), log)), newNode(t, fastOptions(b.URL(), nil))
	ca, cb := pubsubtest.NewCollector("a", 16), pubsubtest.NewCollector("b", 16)
	require.NoError(t, na.Subscribe(ctx, "room:1", ca))
	require.NoError(t, nb.Subscribe(ctx, "room:1", cb))
	syncNode(t, na)
	syncNode(t, nb)

	b.Freeze()
	err := na.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "frozen"})
	require.ErrorIs(t, err, pubsub.ErrUnavailable, "bounded by PublishTimeout")
	assert.Equal(t, "frozen", ca.Next(t).Event)
	// The health check notices the silence; from then on Broadcast fails
	// without contacting Redis.
	logs.WaitFor(t, "no traffic from Redis")
	assert.False(t, na.Connected())
	err = na.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "known-down"})
	require.ErrorIs(t, err, pubsub.ErrUnavailable)
	assert.Contains(t, err.Error(), "not connected")
	assert.Equal(t, "known-down", ca.Next(t).Event)

	b.Thaw()
	syncNode(t, na)
	syncNode(t, nb)
	require.NoError(t, na.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "thawed"}))
	assert.Equal(t, "thawed", ca.Next(t).Event)
	for {
		// b may or may not have received "frozen" from Redis's backlog.
		if e := cb.Next(t).Event; e == "thawed" {
			break
		}
	}
}

func TestNewErrors(t *testing.T) {
	_, err := redis.New(context.Background(), nil)
	assert.ErrorIs(t, err, redis.ErrConfig, "nil *Options is the zero Options: no Client, no URL")
	_, err = redis.New(context.Background(), &redis.Options{})
	assert.ErrorIs(t, err, redis.ErrConfig)
	_, err = redis.New(context.Background(), &redis.Options{URL: "http://nope"})
	assert.ErrorIs(t, err, redis.ErrConfig)

	// A client that could wait forever for a frozen Redis's answer.
	unbounded := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", ReadTimeout: -1})
	defer unbounded.Close()
	_, err = redis.New(context.Background(), &redis.Options{Client: unbounded})
	assert.ErrorIs(t, err, redis.ErrConfig)
	cluster := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ReadTimeout: -1})
	defer cluster.Close()
	_, err = redis.New(context.Background(), &redis.Options{Client: cluster, Sharded: true})
	assert.ErrorIs(t, err, redis.ErrConfig)
	// Bounded by ctx deadlines instead: accepted.
	ctxBound := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", ReadTimeout: -1, ContextTimeoutEnabled: true})
	defer ctxBound.Close()
	p, err := redis.New(context.Background(), &redis.Options{Client: ctxBound, ConnectTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, p.Close())
}

func TestSyncAfterClose(t *testing.T) {
	b := brokertest.StartRedis(t)
	a := newNode(t, &redis.Options{URL: b.URL()})
	require.NoError(t, a.Close())
	assert.True(t, errors.Is(a.Sync(context.Background()), pubsub.ErrClosed))
}

func BenchmarkBroadcastTwoNodes(b *testing.B) {
	broker := brokertest.StartRedis(b)
	pubsubtest.Bench(b, newNode(b, &redis.Options{URL: broker.URL()}), newNode(b, &redis.Options{URL: broker.URL()}))
}

// BenchmarkBroadcastTwoNodesParallel has 16 goroutines broadcast, over the
// client's connection pool.
func BenchmarkBroadcastTwoNodesParallel(b *testing.B) {
	broker := brokertest.StartRedis(b)
	pubsubtest.BenchParallel(b, newNode(b, &redis.Options{URL: broker.URL()}), newNode(b, &redis.Options{URL: broker.URL()}), 16)
}
