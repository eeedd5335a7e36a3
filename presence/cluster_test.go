package presence_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/presence"
	"github.com/pyre-go/pyre/pubsub"
)

// Two or three trackers on one in-memory bus act as nodes; each node's
// server has a private PubSub, so clients only hear their own node's
// diffs. The tests run in a synctest bubble: time passes only when every
// goroutine waits, and synctest.Wait lets replication finish.

const (
	heartbeat   = 1500 * time.Millisecond
	nodeTimeout = 5 * heartbeat
	topic       = "room:cluster"
)

func join(n *node, key string, m map[string]any) *channeltest.Channel {
	return n.ep.Client(nil).Join(topic, map[string]any{"key": key, "meta": m})
}

// listen joins topic without tracking and takes the state.
func listen(n *node, state metas) *channeltest.Channel {
	ch := n.ep.Client(nil).Join(topic, map[string]any{})
	ch.AssertPush(presence.EventState, wantState(state))
	return ch
}

func TestClusterConverges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		a := newNode(t, nil, bus, presence.Options{NodeID: "a"})
		b := newNode(t, nil, bus, presence.Options{NodeID: "b"})
		synctest.Wait()
		assert.Equal(t, []string{"b"}, a.tr.Nodes())
		assert.Equal(t, []string{"a"}, b.tr.Nodes())

		alice := join(a, "alice", online())
		alice.AssertPush(presence.EventState, wantState(metas{}))
		alice.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {online()}}, nil))
		synctest.Wait()

		bob := join(b, "bob", online())
		bob.AssertPush(presence.EventState, wantState(metas{"alice": {online()}}))
		bob.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
		alice.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
		synctest.Wait()
		assert.Equal(t, a.tr.List(topic), b.tr.List(topic), "same list, same refs on both nodes")
		assert.Equal(t, metas{"alice": {online()}, "bob": {online()}}, metaView(a.tr.List(topic)))

		bob.Push("update", map[string]any{"key": "bob", "meta": meta("status", "away")}).AssertReply("ok", nil)
		alice.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {meta("status", "away")}}, metas{"bob": {online()}}))
		bob.Leave().AssertReply("ok", nil)
		alice.AssertPush(presence.EventDiff, wantDiff(nil, metas{"bob": {meta("status", "away")}}))
		synctest.Wait()
		alice.RefutePush(presence.EventDiff, nil, 0) // each diff once
		assert.Equal(t, a.tr.List(topic), b.tr.List(topic))
		assert.Equal(t, metas{"alice": {online()}}, metaView(b.tr.List(topic)))
	})
}

// A node that starts late asks every node for its state at once, without
// waiting for their heartbeats.
func TestClusterLateNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		a := newNode(t, nil, bus, presence.Options{NodeID: "a"})
		join(a, "alice", online())
		join(a, "alice", meta("status", "busy"))
		synctest.Wait()
		start := time.Now()
		c := newNode(t, nil, bus, presence.Options{NodeID: "c"})
		synctest.Wait()
		assert.Zero(t, time.Since(start))
		assert.Equal(t, a.tr.List(topic), c.tr.List(topic))
		assert.Len(t, c.tr.List(topic)["alice"].Metas, 2)
	})
}

func TestClusterNodeDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		a := newNode(t, nil, bus, presence.Options{NodeID: "a"})
		b := newNode(t, nil, bus, presence.Options{NodeID: "b"})
		obs := listen(a, metas{})
		join(b, "bob", online())
		obs.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
		synctest.Wait()

		require.NoError(t, b.tr.Close()) // a crash: no goodbye
		start := time.Now()
		time.Sleep(nodeTimeout - heartbeat)
		synctest.Wait()
		assert.Contains(t, a.tr.List(topic), "bob", "still listed before the timeout")
		obs.AssertPush(presence.EventDiff, wantDiff(nil, metas{"bob": {online()}}))
		gone := time.Since(start)
		assert.True(t, gone > nodeTimeout && gone <= nodeTimeout+heartbeat, "removed after %v", gone)
		assert.Empty(t, a.tr.List(topic))
		assert.Empty(t, a.tr.Nodes())
	})
}

func TestClusterShutdownSaysGoodbye(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		a := newNode(t, nil, bus, presence.Options{NodeID: "a"})
		b := newNode(t, nil, bus, presence.Options{NodeID: "b"})
		obs := listen(a, metas{})
		join(b, "bob", online())
		obs.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
		synctest.Wait()

		start := time.Now()
		require.NoError(t, b.tr.Shutdown(context.Background()))
		synctest.Wait()
		assert.Zero(t, time.Since(start))
		assert.Empty(t, a.tr.List(topic), "dropped at once")
		assert.Empty(t, a.tr.Nodes())
		obs.AssertPush(presence.EventDiff, wantDiff(nil, metas{"bob": {online()}}))
	})
}

// A node restarted under the same NodeID replaces its former presences as
// soon as it is heard, before the timeout.
func TestClusterRestartSameNodeID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		a := newNode(t, nil, bus, presence.Options{NodeID: "a"})
		b := newNode(t, nil, bus, presence.Options{NodeID: "b"})
		obs := listen(a, metas{})
		join(b, "bob", online())
		obs.AssertPush(presence.EventDiff, nil)
		synctest.Wait()

		require.NoError(t, b.tr.Close())
		start := time.Now()
		b2 := newNode(t, nil, bus, presence.Options{NodeID: "b"})
		synctest.Wait()
		assert.Zero(t, time.Since(start))
		obs.AssertPush(presence.EventDiff, wantDiff(nil, metas{"bob": {online()}}))
		join(b2, "bob", online())
		obs.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
		synctest.Wait()
		assert.Equal(t, b2.tr.List(topic), a.tr.List(topic))
	})
}

func TestClusterPartitionHeals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		pb := newPartition(bus)
		a := newNode(t, nil, bus, presence.Options{NodeID: "a"})
		b := newNode(t, nil, pb, presence.Options{NodeID: "b"})
		alice := join(a, "alice", online())
		alice.AssertPush(presence.EventDiff, nil)
		synctest.Wait()
		bob := join(b, "bob", online())
		bob.AssertPush(presence.EventState, wantState(metas{"alice": {online()}}))
		bob.AssertPush(presence.EventDiff, nil)
		alice.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
		synctest.Wait()

		pb.cut.Store(true)
		time.Sleep(nodeTimeout + heartbeat)
		synctest.Wait()
		alice.AssertPush(presence.EventDiff, wantDiff(nil, metas{"bob": {online()}}))
		bob.AssertPush(presence.EventDiff, wantDiff(nil, metas{"alice": {online()}}))
		assert.Equal(t, metas{"alice": {online()}}, metaView(a.tr.List(topic)))
		assert.Equal(t, metas{"bob": {online()}}, metaView(b.tr.List(topic)))

		// Changes on both sides during the partition.
		carol := join(a, "carol", online())
		carol.AssertPush(presence.EventDiff, nil)
		alice.AssertPush(presence.EventDiff, wantDiff(metas{"carol": {online()}}, nil))
		bob.Push("update", map[string]any{"key": "bob", "meta": meta("status", "away")}).AssertReply("ok", nil)
		bob.AssertPush(presence.EventDiff, nil)
		synctest.Wait()

		pb.cut.Store(false)
		start := time.Now()
		time.Sleep(heartbeat)
		synctest.Wait()
		assert.LessOrEqual(t, time.Since(start), heartbeat)
		alice.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {meta("status", "away")}}, nil))
		// One diff per state transfer.
		bob.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {online()}, "carol": {online()}}, nil))
		alice.RefutePush(presence.EventDiff, nil, 0)
		bob.RefutePush(presence.EventDiff, nil, 0)
		assert.Equal(t, a.tr.List(topic), b.tr.List(topic))
		assert.Equal(t, metas{"alice": {online()}, "bob": {meta("status", "away")}, "carol": {online()}}, metaView(a.tr.List(topic)))
	})
}

// A lost delta is noticed at the next heartbeat and repaired with a state
// transfer.
func TestClusterLostDelta(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		pa := newPartition(bus)
		a := newNode(t, nil, pa, presence.Options{NodeID: "a"})
		b := newNode(t, nil, bus, presence.Options{NodeID: "b"})
		obs := listen(a, metas{})
		synctest.Wait()

		pa.dropNext("delta", 1)
		join(b, "bob", online())
		synctest.Wait()
		assert.Empty(t, a.tr.List(topic), "the delta was lost")

		time.Sleep(heartbeat)
		synctest.Wait()
		obs.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
		assert.Equal(t, b.tr.List(topic), a.tr.List(topic))

		// Deltas apply again after the repair.
		join(b, "bill", online())
		obs.AssertPush(presence.EventDiff, wantDiff(metas{"bill": {online()}}, nil))
	})
}

// Interleaved changes on three nodes converge to one list.
func TestClusterManyChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		nodes := []*node{
			newNode(t, nil, bus, presence.Options{NodeID: "a"}),
			newNode(t, nil, bus, presence.Options{NodeID: "b"}),
			newNode(t, nil, bus, presence.Options{NodeID: "c"}),
		}
		synctest.Wait()
		want := metas{}
		var chans []*channeltest.Channel
		for i := range 30 {
			n := nodes[i%3]
			key := fmt.Sprintf("user%d", i%7)
			m := meta("i", float64(i))
			ch := join(n, key, m)
			chans = append(chans, ch)
			want[key] = append(want[key], m)
		}
		for i, ch := range chans {
			if i%4 == 0 {
				ch.Push("untrack_all", map[string]any{}).AssertReply("ok", nil)
				key := fmt.Sprintf("user%d", i%7)
				want[key] = deleteMeta(want[key], i)
				if len(want[key]) == 0 {
					delete(want, key)
				}
			}
		}
		synctest.Wait()
		for _, n := range nodes {
			got := metaView(n.tr.List(topic))
			assert.Len(t, got, len(want), n.tr.NodeID())
			for k, ms := range want {
				assert.ElementsMatch(t, ms, got[k], "%s: %s", n.tr.NodeID(), k)
			}
		}
	})
}

func deleteMeta(ms []map[string]any, i int) []map[string]any {
	var out []map[string]any
	for _, m := range ms {
		if m["i"] != float64(i) {
			out = append(out, m)
		}
	}
	return out
}

// Two trackers that share a NodeID ignore each other (and warn once)
// instead of replacing each other's presences back and forth.
func TestClusterDuplicateNodeID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		a1 := newNode(t, nil, bus, presence.Options{NodeID: "a"})
		a2 := newNode(t, nil, bus, presence.Options{NodeID: "a"})
		join(a1, "alice", online())
		time.Sleep(2 * heartbeat)
		synctest.Wait()
		assert.Empty(t, a1.tr.Nodes())
		assert.Empty(t, a2.tr.Nodes())
		assert.Empty(t, a2.tr.List(topic))
	})
}
