package nats_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/internal/brokertest"
	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/nats"
	"github.com/pyre-go/pyre/pubsub/pubsubtest"
)

// fastOptions detect failures and reconnect quickly, for tests.
func fastOptions(url string, log *slog.Logger) *nats.Options {
	return &nats.Options{
		URL:                 url,
		Logger:              log,
		ConnectTimeout:      500 * time.Millisecond,
		HealthCheckInterval: 100 * time.Millisecond,
		WriteTimeout:        500 * time.Millisecond,
		MinBackoff:          10 * time.Millisecond,
		MaxBackoff:          100 * time.Millisecond,
	}
}

func newNode(t testing.TB, opts *nats.Options) *nats.PubSub {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger, _ = brokertest.NewLogger(t)
	}
	p, err := nats.New(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Close()) })
	return p
}

// rawConn is a caller-owned connection, with echo on.
func rawConn(t testing.TB, b *brokertest.Broker) *natsgo.Conn {
	t.Helper()
	nc, err := natsgo.Connect(b.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func syncNode(t testing.TB, p *nats.PubSub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pubsubtest.WaitTimeout)
	defer cancel()
	require.NoError(t, p.Sync(ctx))
}

func TestConformance(t *testing.T) {
	b := brokertest.StartNATS(t)
	t.Run("Owned", func(t *testing.T) {
		pubsubtest.Run(t, func(t *testing.T) pubsub.PubSub { return newNode(t, &nats.Options{URL: b.URL()}) })
	})
	t.Run("Owned/Cluster", func(t *testing.T) {
		pubsubtest.RunCluster(t, func(t *testing.T) (pubsub.PubSub, pubsub.PubSub) {
			return newNode(t, &nats.Options{URL: b.URL()}), newNode(t, &nats.Options{URL: b.URL()})
		})
	})
	// A caller's connection has echo on: the node must drop its own
	// messages coming back by node id.
	t.Run("CallerConn", func(t *testing.T) {
		pubsubtest.Run(t, func(t *testing.T) pubsub.PubSub { return newNode(t, &nats.Options{Conn: rawConn(t, b)}) })
	})
	t.Run("CallerConn/Cluster", func(t *testing.T) {
		pubsubtest.RunCluster(t, func(t *testing.T) (pubsub.PubSub, pubsub.PubSub) {
			return newNode(t, &nats.Options{Conn: rawConn(t, b)}), newNode(t, &nats.Options{Conn: rawConn(t, b)})
		})
	})
}

// TestFaults runs the fault suite with default timeouts, on an owned
// connection and on a caller's connection with nats.go's default reconnect
// buffer, where a publish made while reconnecting is buffered.
func TestFaults(t *testing.T) {
	t.Run("Owned", func(t *testing.T) {
		pubsubtest.RunFaults(t, func(t *testing.T) (pubsub.PubSub, pubsub.PubSub, pubsubtest.Broker) {
			b := brokertest.StartNATS(t)
			return newNode(t, &nats.Options{URL: b.URL()}), newNode(t, &nats.Options{URL: b.URL()}), b
		})
	})
	t.Run("CallerConn", func(t *testing.T) {
		pubsubtest.RunFaults(t, func(t *testing.T) (pubsub.PubSub, pubsub.PubSub, pubsubtest.Broker) {
			b := brokertest.StartNATS(t)
			conn := func() *natsgo.Conn {
				nc, err := natsgo.Connect(b.URL(), natsgo.MaxReconnects(-1), natsgo.ReconnectWait(50*time.Millisecond),
					natsgo.PingInterval(time.Second), natsgo.MaxPingsOutstanding(2))
				require.NoError(t, err)
				t.Cleanup(nc.Close)
				return nc
			}
			return newNode(t, &nats.Options{Conn: conn()}), newNode(t, &nats.Options{Conn: conn()}), b
		})
	})
}

func TestSubjectMapping(t *testing.T) {
	b := brokertest.StartNATS(t)
	p := newNode(t, &nats.Options{URL: b.URL(), Prefix: "app.one"})
	assert.Equal(t, "app.one.t.cm9vbTox", p.Subject("room:1"))
	seen := map[string]string{}
	for _, topic := range pubsubtest.NastyTopics() {
		subj := p.Subject(topic)
		assert.LessOrEqual(t, len(subj), len("app.one.t.")+256)
		assert.False(t, strings.ContainsAny(subj, " \t\r\n*>\x00"), "subject %q", subj)
		tokens := strings.Split(subj, ".")
		assert.Len(t, tokens, 4, "topic %.40q is one token", topic)
		for _, tok := range tokens {
			assert.NotEmpty(t, tok)
		}
		if prev, dup := seen[subj]; dup {
			t.Errorf("topics %.40q and %.40q share subject %q", prev, topic, subj)
		}
		seen[subj] = topic
	}
	assert.True(t, strings.HasPrefix(p.Subject(strings.Repeat("x", 193)), "app.one.h."))
}

func TestBadOptions(t *testing.T) {
	for _, opts := range []*nats.Options{
		nil, // the zero Options: no Conn, no URL
		{},
		{URL: "nats://127.0.0.1:1", Prefix: "a b"},
		{URL: "nats://127.0.0.1:1", Prefix: "a.*"},
		{URL: "nats://127.0.0.1:1", Prefix: "a..b"},
	} {
		_, err := nats.New(context.Background(), opts)
		assert.ErrorIs(t, err, nats.ErrConfig, "%+v", opts)
	}
}

// TestRefCountedBrokerSubscriptions counts the node's NATS subscriptions on
// its connection and checks that one publish is received once.
func TestRefCountedBrokerSubscriptions(t *testing.T) {
	b := brokertest.StartNATS(t)
	ctx := context.Background()
	nc := rawConn(t, b)
	a := newNode(t, &nats.Options{Conn: nc})
	pub := newNode(t, &nats.Options{URL: b.URL()})
	subs := []*pubsubtest.Collector{pubsubtest.NewCollector("0", 8), pubsubtest.NewCollector("1", 8), pubsubtest.NewCollector("2", 8)}
	for _, s := range subs {
		require.NoError(t, a.Subscribe(ctx, "room:1", s))
	}
	require.NoError(t, a.Subscribe(ctx, "room:2", subs[0]))
	assert.Equal(t, 2, nc.NumSubscriptions(), "one NATS subscription per topic")
	syncNode(t, a)

	before := nc.Stats().InMsgs
	require.NoError(t, pub.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "one"}))
	require.NoError(t, pub.Broadcast(ctx, &pubsub.Message{Topic: "room:2", Event: "fence"}))
	for _, s := range subs {
		assert.Equal(t, "one", s.Next(t).Event)
	}
	assert.Equal(t, "fence", subs[0].Next(t).Event)
	assert.Equal(t, uint64(2), nc.Stats().InMsgs-before, "each message received once from the server")

	require.NoError(t, a.Unsubscribe(ctx, "room:1", subs[0]))
	require.NoError(t, a.Unsubscribe(ctx, "room:1", subs[1]))
	assert.Equal(t, 2, nc.NumSubscriptions())
	require.NoError(t, a.Unsubscribe(ctx, "room:1", subs[2]))
	assert.Equal(t, 1, nc.NumSubscriptions(), "last local subscriber left")
	require.NoError(t, a.Unsubscribe(ctx, "room:2", subs[0]))
	assert.Equal(t, 0, nc.NumSubscriptions())
}

func TestBrokerDownAtStart(t *testing.T) {
	b := brokertest.StartNATS(t)
	b.Kill()
	log, logs := brokertest.NewLogger(t)
	a := newNode(t, fastOptions(b.URL(), log))
	assert.Contains(t, logs.String(), "NATS unavailable at start")
	assert.False(t, a.Connected())

	ctx := context.Background()
	local := pubsubtest.NewCollector("local", 8)
	require.NoError(t, a.Subscribe(ctx, "room:1", local))
	err := a.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "offline"})
	require.ErrorIs(t, err, pubsub.ErrUnavailable)
	assert.Equal(t, "offline", local.Next(t).Event, "local delivery works without NATS")

	b.Restart()
	syncNode(t, a)
	assert.True(t, a.Connected())
	other := newNode(t, fastOptions(b.URL(), nil))
	require.NoError(t, other.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "online"}))
	assert.Equal(t, "online", local.Next(t).Event, "subscribed once NATS appeared")
}

// TestRestart kills NATS under two nodes, checks local delivery and fast
// failure during the outage, restarts it on the same port and checks that
// both nodes resubscribed.
func TestRestart(t *testing.T) {
	b := brokertest.StartNATS(t)
	ctx := context.Background()
	log, logs := brokertest.NewLogger(t)
	na, nb := newNode(t, fastOptions(b.URL(), log)), newNode(t, fastOptions(b.URL(), nil))
	ca, cb := pubsubtest.NewCollector("a", 16), pubsubtest.NewCollector("b", 16)
	require.NoError(t, na.Subscribe(ctx, "room:1", ca))
	require.NoError(t, nb.Subscribe(ctx, "room:1", cb))
	syncNode(t, na)
	syncNode(t, nb)
	require.NoError(t, na.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "before"}))
	assert.Equal(t, "before", ca.Next(t).Event)
	assert.Equal(t, "before", cb.Next(t).Event)
	assert.Equal(t, pubsub.BrokerStats{}, na.BrokerStats())

	b.Kill()
	logs.WaitFor(t, "disconnected from NATS")
	err := na.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "during"})
	require.ErrorIs(t, err, pubsub.ErrUnavailable)
	assert.Equal(t, "during", ca.Next(t).Event, "local delivery during the outage")
	assert.EqualValues(t, 1, na.BrokerStats().PublishErrors)
	// Subscriptions made during the outage are sent on reconnection.
	late := pubsubtest.NewCollector("late", 8)
	require.NoError(t, na.Subscribe(ctx, "room:late", late))

	b.Restart()
	syncNode(t, na)
	syncNode(t, nb)
	// nats.go counts a reconnection when the socket is back, so one
	// reconnection may count twice if the handshake failed in between.
	assert.GreaterOrEqual(t, na.BrokerStats().Reconnects, uint64(1))
	assert.GreaterOrEqual(t, nb.BrokerStats().Reconnects, uint64(1))
	assert.Zero(t, nb.BrokerStats().PublishErrors)
	require.NoError(t, na.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "after-a"}))
	require.NoError(t, nb.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "after-b"}))
	require.NoError(t, nb.Broadcast(ctx, &pubsub.Message{Topic: "room:late", Event: "late"}))
	for _, c := range []*pubsubtest.Collector{ca, cb} {
		got := map[string]bool{c.Next(t).Event: true, c.Next(t).Event: true}
		assert.Equal(t, map[string]bool{"after-a": true, "after-b": true}, got, c)
	}
	assert.Equal(t, "late", late.Next(t).Event)
}

// TestFrozenBroker checks that a server that stops answering cannot hang
// Broadcast, and that the node recovers when it answers again.
func TestFrozenBroker(t *testing.T) {
	b := brokertest.StartNATS(t)
	ctx := context.Background()
	log, logs := brokertest.NewLogger(t)
	na, nb := newNode(t, fastOptions(b.URL(), log)), newNode(t, fastOptions(b.URL(), nil))
	ca, cb := pubsubtest.NewCollector("a", 16), pubsubtest.NewCollector("b", 16)
	require.NoError(t, na.Subscribe(ctx, "room:1", ca))
	require.NoError(t, nb.Subscribe(ctx, "room:1", cb))
	syncNode(t, na)
	syncNode(t, nb)

	b.Freeze()
	logs.WaitFor(t, "disconnected from NATS") // unanswered pings
	err := na.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "frozen"})
	require.ErrorIs(t, err, pubsub.ErrUnavailable)
	assert.Equal(t, "frozen", ca.Next(t).Event)

	b.Thaw()
	syncNode(t, na)
	syncNode(t, nb)
	require.NoError(t, na.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "thawed"}))
	assert.Equal(t, "thawed", ca.Next(t).Event)
	assert.Equal(t, "thawed", cb.Next(t).Event)
}

// TestAsyncConfirm checks that with AsyncConfirm a broadcast NATS does not
// confirm is counted and logged instead of failing, and that confirmed
// ones are not counted.
func TestAsyncConfirm(t *testing.T) {
	b := brokertest.StartNATS(t)
	ctx := context.Background()
	log, logs := brokertest.NewLogger(t)
	opts := &nats.Options{URL: b.URL(), Logger: log, AsyncConfirm: true}
	a := newNode(t, opts)
	c := pubsubtest.NewCollector("c", 16)
	require.NoError(t, a.Subscribe(ctx, "room:1", c))
	require.NoError(t, a.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "confirmed"}))
	syncNode(t, a) // its round trip follows the broadcast's
	assert.Zero(t, a.Stats().Unconfirmed)

	b.Freeze()
	require.NoError(t, a.Broadcast(ctx, &pubsub.Message{Topic: "room:1", Event: "unconfirmed"}))
	logs.WaitFor(t, "broadcasts not confirmed by NATS") // logged after counting
	assert.Equal(t, uint64(1), a.Stats().Unconfirmed)
	assert.Contains(t, logs.String(), "count=1")
	b.Thaw()
	assert.Equal(t, "confirmed", c.Next(t).Event)
	assert.Equal(t, "unconfirmed", c.Next(t).Event, "delivered locally")
}

func TestMaxPayload(t *testing.T) {
	b := brokertest.StartNATS(t) // max_payload 4 MiB
	ctx := context.Background()
	a := newNode(t, &nats.Options{URL: b.URL()})
	c := pubsubtest.NewCollector("c", 1)
	require.NoError(t, a.Subscribe(ctx, "room:big", c))
	err := a.Broadcast(ctx, &pubsub.Message{Topic: "room:big", Payload: bytes.Repeat([]byte("x"), 5<<20)})
	require.ErrorIs(t, err, natsgo.ErrMaxPayload)
	assert.NotErrorIs(t, err, pubsub.ErrUnavailable)
	assert.Len(t, c.Next(t).Payload, 5<<20, "delivered locally")
	assert.Equal(t, pubsub.BrokerStats{PublishErrors: 1}, a.BrokerStats(), "a refused message is a failed publish")
}

func BenchmarkBroadcastTwoNodes(b *testing.B) {
	broker := brokertest.StartNATS(b)
	pubsubtest.Bench(b, newNode(b, &nats.Options{URL: broker.URL()}), newNode(b, &nats.Options{URL: broker.URL()}))
}

// BenchmarkBroadcastTwoNodesParallel has 16 goroutines broadcast, which
// share NATS round trips.
func BenchmarkBroadcastTwoNodesParallel(b *testing.B) {
	broker := brokertest.StartNATS(b)
	pubsubtest.BenchParallel(b, newNode(b, &nats.Options{URL: broker.URL()}), newNode(b, &nats.Options{URL: broker.URL()}), 16)
}

func BenchmarkBroadcastTwoNodesAsyncConfirm(b *testing.B) {
	broker := brokertest.StartNATS(b)
	opts := &nats.Options{URL: broker.URL(), AsyncConfirm: true}
	pubsubtest.Bench(b, newNode(b, opts), newNode(b, &nats.Options{URL: broker.URL()}))
}
