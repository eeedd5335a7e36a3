package presence_test

import (
	"context"
	"github.com/pyre-go/pyre/internal/brokertest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/presence"
	"github.com/pyre-go/pyre/pubsub/redis"
)

// startRedis starts a private redis-server (see internal/brokertest) and
// returns its URL.
func startRedis(t *testing.T) string { return brokertest.StartRedis(t).URL() }

func redisNode(t *testing.T, url, id string) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ps, err := redis.New(ctx, &redis.Options{URL: url})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, ps.Close()) })
	n := newNode(t, ps, nil, presence.Options{NodeID: id, HeartbeatInterval: 100 * time.Millisecond})
	require.NoError(t, ps.Sync(ctx))
	return n
}

// Two nodes over a real Redis: replication, convergence, goodbye and
// timeout. Waits use channeltest's (5 s); heartbeats are 100 ms.
func TestRedisTwoNodes(t *testing.T) {
	url := startRedis(t)
	a := redisNode(t, url, "a")
	b := redisNode(t, url, "b")

	obs := b.ep.Client(nil).Join(topic, map[string]any{})
	obs.AssertPush(presence.EventState, wantState(metas{}))
	alice := join(a, "alice", online())
	alice.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {online()}}, nil))
	obs.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {online()}}, nil))
	bob := join(b, "bob", online())
	bob.AssertPush(presence.EventState, wantState(metas{"alice": {online()}}))
	bob.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
	alice.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
	assert.Equal(t, a.tr.List(topic), b.tr.List(topic))

	alice.Push("update", map[string]any{"key": "alice", "meta": meta("status", "away")}).AssertReply("ok", nil)
	bob.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {meta("status", "away")}}, metas{"alice": {online()}}))

	// A node that stops without a goodbye disappears after NodeTimeout.
	require.NoError(t, a.tr.Close())
	bob.AssertPush(presence.EventDiff, wantDiff(nil, metas{"alice": {meta("status", "away")}}))
	assert.Equal(t, metas{"bob": {online()}}, metaView(b.tr.List(topic)))

	// A new node under the same id comes back; its goodbye removes it at once.
	a2 := redisNode(t, url, "a")
	join(a2, "alice", online())
	bob.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {online()}}, nil))
	require.NoError(t, a2.tr.Shutdown(context.Background()))
	bob.AssertPush(presence.EventDiff, wantDiff(nil, metas{"alice": {online()}}))
}
