package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/pubsub/redis"
)

const testRedis = "127.0.0.1:6379"

// redisNode returns a Redis PubSub on a key prefix of its own, so that
// the test's nodes see each other and nothing else. Without Redis the test
// is skipped (CI runs Redis).
func redisNode(t *testing.T, prefix string) *redis.PubSub {
	t.Helper()
	if c, err := net.DialTimeout("tcp", testRedis, time.Second); err != nil {
		t.Skipf("no Redis at %s: %v", testRedis, err)
	} else {
		_ = c.Close()
	}
	ps, err := redis.New(context.Background(), &redis.Options{URL: "redis://" + testRedis, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ps.Close() })
	return ps
}

func syncNodes(t *testing.T, nodes ...*redis.PubSub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range nodes {
		require.NoError(t, n.Sync(ctx))
	}
}

func postJSON(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, body)
}

// Two nodes on one Redis: each event reaches each client once. Both nodes'
// producers compute the state from the same event stream; before, both
// broadcast it cluster-wide and every client got every stream_state twice
// (and stream_event twice on events:all). To tell the nodes' states apart,
// node A has seen a channel.update (show "ironmon") before node B started
// (show "variety"): a client must only ever see its own node's show.
func TestTwoNodesDeliverEachStateOnce(t *testing.T) {
	prefix := fmt.Sprintf("landale-test-%s:", events.NewShortID())
	psA, psB := redisNode(t, prefix), redisNode(t, prefix)
	opts := func(ps *redis.PubSub) *Options { return &Options{PubSub: ps, TickerInterval: time.Hour} }

	_, srvA := newServer(t, opts(psA))
	ca, err := dial(t, srvA, "", nil)
	require.NoError(t, err)
	ca.join("stream:overlays", nil)
	ca.push("stream:overlays", "stream_state")
	postJSON(t, srvA.URL+"/api/events", `{"type":"channel.update","category_id":"490100","category_name":"Pokémon FireRed","title":"IronMON"}`)
	for ca.push("stream:overlays", "stream_state")["current_show"] != "ironmon" {
	}

	_, srvB := newServer(t, opts(psB))
	cb, err := dial(t, srvB, "", nil)
	require.NoError(t, err)
	cb.join("stream:overlays", nil)
	assert.Equal(t, "variety", cb.push("stream:overlays", "stream_state")["current_show"])
	ca.join("events:all", nil)
	cb.join("events:all", nil)
	syncNodes(t, psA, psB)

	const n = 5
	for i := 1; i <= n; i++ {
		postJSON(t, srvA.URL+"/api/events", fmt.Sprintf(`{"type":"channel.follow","user_login":"u%d","user_name":"u%d"}`, i, i))
	}
	for _, c := range []struct {
		cl   *client
		show string
	}{{ca, "ironmon"}, {cb, "variety"}} {
		var seen []string
		for len(seen) == 0 || seen[len(seen)-1] != fmt.Sprintf("u%d", n) {
			st := c.cl.push("stream:overlays", "stream_state")
			require.Equal(t, c.show, st["current_show"], "a state computed by the other node reached this node's client")
			base, _ := st["base"].(map[string]any)
			if name, _ := base["user_name"].(string); name != "" { // not the show change's own states
				seen = append(seen, name)
			}
		}
		assert.Equal(t, []string{"u1", "u2", "u3", "u4", "u5"}, seen, "one state per event, in order")
		// events:all: each follow once, each stream.state_updated of this node only.
		follows := 0
		for follows < n {
			f := c.cl.next(func(f []any) bool { return f[2] == "events:all" })
			p := f[4].(map[string]any)
			switch f[3] {
			case "follower":
				follows++
				assert.Equal(t, fmt.Sprintf("u%d", follows), p["user_name"], "each event once, in order")
			case "stream_event":
				if p["type"] == "stream.state_updated" {
					assert.Equal(t, c.show, p["current_show"])
				}
			}
		}
	}
}

// Commands given on one node change the state on every node: a
// force_content on B shows on A with the same id, and remove_queue_item of
// that id on A removes it on B.
func TestTwoNodesShareStreamCommands(t *testing.T) {
	prefix := fmt.Sprintf("landale-test-%s:", events.NewShortID())
	psA, psB := redisNode(t, prefix), redisNode(t, prefix)
	opts := func(ps *redis.PubSub) *Options { return &Options{PubSub: ps, TickerInterval: time.Hour} }
	_, srvA := newServer(t, opts(psA))
	_, srvB := newServer(t, opts(psB))
	ca, err := dial(t, srvA, "", nil)
	require.NoError(t, err)
	cb, err := dial(t, srvB, "", nil)
	require.NoError(t, err)
	ca.join("stream:overlays", nil)
	ca.push("stream:overlays", "stream_state")
	cb.join("stream:overlays", nil)
	cb.push("stream:overlays", "stream_state")
	syncNodes(t, psA, psB)

	alertsOf := func(st map[string]any) []any { a, _ := st["alerts"].([]any); return a }
	ref := cb.send("1", "stream:overlays", "force_content", map[string]any{"type": "manual_override",
		"data": map[string]any{"message": "from B"}, "duration": 60000})
	require.Equal(t, "ok", cb.reply(ref)["status"])
	var onB, onA []any
	for len(onB) == 0 {
		onB = alertsOf(cb.push("stream:overlays", "stream_state"))
	}
	for len(onA) == 0 {
		onA = alertsOf(ca.push("stream:overlays", "stream_state"))
	}
	id := onB[0].(map[string]any)["id"]
	require.Len(t, onA, 1)
	assert.Equal(t, id, onA[0].(map[string]any)["id"], "the same alert on both nodes")
	assert.Equal(t, "from B", onA[0].(map[string]any)["data"].(map[string]any)["message"])

	ref = ca.send("1", "stream:overlays", "remove_queue_item", map[string]any{"id": id})
	require.Equal(t, "ok", ca.reply(ref)["status"])
	for len(alertsOf(cb.push("stream:overlays", "stream_state"))) != 0 {
	}
	for len(alertsOf(ca.push("stream:overlays", "stream_state"))) != 0 {
	}
}
