package benchserver

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/internal/brokertest"
	"github.com/pyre-go/pyre/pubsub"
)

func TestCountingPubSubCounts(t *testing.T) {
	ctx := context.Background()
	mem := pubsub.NewMemory(nil)
	defer mem.Close()
	c := NewCountingPubSub(mem)
	got := 0
	sub := pubsub.SubscriberFunc(func(*pubsub.Message) { got++ })
	require.NoError(t, c.Subscribe(ctx, "room:a", &sub))
	require.NoError(t, c.Subscribe(ctx, "room:a", &sub), "a second Subscribe is the same subscription")
	for range 3 {
		require.NoError(t, c.Broadcast(ctx, &pubsub.Message{Topic: "room:a", Event: "e", Payload: []byte(`{}`)}))
	}
	require.NoError(t, c.BroadcastFrom(ctx, "x", &pubsub.Message{Topic: "room:b", Event: "e", Payload: []byte(`{}`)}))
	assert.Equal(t, BusCounts{Published: 4, Received: 3, Subscribes: 1}, c.Counts())
	assert.Equal(t, 3, got)

	require.NoError(t, c.Unsubscribe(ctx, "room:a", &sub))
	require.NoError(t, c.Unsubscribe(ctx, "room:a", &sub), "unknown pair: no-op")
	require.NoError(t, c.Broadcast(ctx, &pubsub.Message{Topic: "room:a", Event: "e", Payload: []byte(`{}`)}))
	assert.Equal(t, 3, got, "unsubscribed")
	assert.Equal(t, int64(3), c.Counts().Received)
}

// runNode runs a bench server on a free port with the given pubsub and
// returns its address; it stops when the test ends.
func runNode(t *testing.T, ps string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Addr: "127.0.0.1:0", PubSub: ps}, func(a string) { addrc <- a }) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	select {
	case a := <-addrc:
		return a
	case err := <-done:
		t.Fatalf("node did not start: %v", err)
	}
	return ""
}

func nodeMem(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/debug/mem")
	require.NoError(t, err)
	defer resp.Body.Close()
	out := map[string]float64{}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

// TestTwoNodesOnABroker: with -pubsub on a broker, a broadcast published on
// node A reaches the subscribers of node B, and each broadcast goes to the
// broker once and reaches each node once, however many sockets joined.
func TestTwoNodesOnABroker(t *testing.T) {
	for name, start := range map[string]func(testing.TB) *brokertest.Broker{
		"redis": brokertest.StartRedis,
		"nats":  brokertest.StartNATS,
	} {
		t.Run(name, func(t *testing.T) {
			b := start(t)
			a, bn := runNode(t, b.URL()), runNode(t, b.URL())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var conns []*websocket.Conn
			for range 3 {
				ws, _, err := websocket.Dial(ctx, "ws://"+bn+"/socket/websocket?vsn=2.0.0", nil)
				require.NoError(t, err)
				defer ws.CloseNow()
				require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`["1","1","room:bench","phx_join",{}]`)))
				_, msg, err := ws.Read(ctx)
				require.NoError(t, err)
				require.Contains(t, string(msg), `"status":"ok"`)
				conns = append(conns, ws)
			}
			// The node's broker subscription completes in the background:
			// publish one at a time until B's subscribers get one.
			post := func(rate, seconds int) PublishResult {
				resp, err := http.Post("http://"+a+"/publish?channel=room:bench&size=64&rate="+itoa(rate)+"&seconds="+itoa(seconds), "", nil)
				require.NoError(t, err)
				defer resp.Body.Close()
				var res PublishResult
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
				return res
			}
			for nodeMem(t, bn)["broker_received"] == 0 && ctx.Err() == nil {
				post(10, 1)
			}
			require.Positive(t, nodeMem(t, bn)["broker_received"])
			// From here each socket reads what was sent; count a clean loop.
			a0, b0 := nodeMem(t, a), nodeMem(t, bn)
			res := post(20, 1)
			require.Equal(t, 20, res.Published)
			for nodeMem(t, bn)["broker_received"] < b0["broker_received"]+20 && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			a1, b1 := nodeMem(t, a), nodeMem(t, bn)
			assert.Equal(t, 20.0, a1["broker_published"]-a0["broker_published"], "one broker publish per broadcast")
			assert.Equal(t, 20.0, b1["broker_received"]-b0["broker_received"], "one message per broadcast for B's 3 sockets")
			assert.Equal(t, 0.0, b1["broker_published"])
			assert.Equal(t, 1.0, b1["broker_subscribes"], "one subscription per node and topic")
			assert.Equal(t, 3.0, b1["subscribers"])
			// And the sockets got the pushes (the last one has seq 19).
			for _, ws := range conns {
				for {
					_, msg, err := ws.Read(ctx)
					require.NoError(t, err)
					if strings.Contains(string(msg), `"seq":19,`) && strings.HasPrefix(string(msg), `[null,null,"room:bench","msg",`) {
						break
					}
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
