package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/internal/brokertest"
)

// startAnchor serves a new Anchor on an httptest server.
func startAnchor(t *testing.T, c Config) (*Anchor, string) {
	t.Helper()
	a, err := New(c)
	require.NoError(t, err)
	hs := httptest.NewServer(a)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	return a, hs.URL
}

// subscriber is a client of the centrifuge JSON protocol, as pyrebench
// speaks it: connect with id 1, subscribe with id 2, then publications.
type subscriber struct {
	t  *testing.T
	ws *websocket.Conn
}

func subscribe(t *testing.T, ctx context.Context, base, channel string) *subscriber {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/connection/websocket", nil)
	require.NoError(t, err)
	t.Cleanup(func() { ws.CloseNow() })
	s := &subscriber{t: t, ws: ws}
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`{"id":1,"connect":{"name":"pyrebench"}}`)))
	line := s.next(ctx)
	assert.True(t, strings.HasPrefix(line, `{"id":1,"connect":{`), line)
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`{"id":2,"subscribe":{"channel":"`+channel+`"}}`)))
	line = s.next(ctx)
	assert.True(t, strings.HasPrefix(line, `{"id":2,"subscribe":{`), line)
	return s
}

// next returns the next protocol line (a frame may carry several,
// newline-separated; pings {} are answered and skipped).
func (s *subscriber) next(ctx context.Context) string {
	s.t.Helper()
	for {
		_, msg, err := s.ws.Read(ctx)
		require.NoError(s.t, err)
		for line := range bytes.SplitSeq(msg, []byte{'\n'}) {
			if string(line) == "{}" {
				require.NoError(s.t, s.ws.Write(ctx, websocket.MessageText, []byte(`{}`)))
				continue
			}
			if len(line) > 0 {
				return string(line) // the tests read one line per frame
			}
		}
	}
}

func publish(t *testing.T, base, channel string, rate, seconds, size int) map[string]any {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("%s/publish?channel=%s&rate=%d&seconds=%d&size=%d", base, channel, rate, seconds, size), "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func mem(t *testing.T, base, channel string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/debug/mem?channel=" + channel)
	require.NoError(t, err)
	defer resp.Body.Close()
	out := map[string]float64{}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

// pushTS checks that line is a publication on channel and returns the
// payload's seq.
func pushSeq(t *testing.T, line, channel string) int {
	t.Helper()
	var v struct {
		Push struct {
			Channel string `json:"channel"`
			Pub     struct {
				Data struct {
					TS  int64 `json:"ts"`
					Seq int   `json:"seq"`
				} `json:"data"`
			} `json:"pub"`
		} `json:"push"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &v), line)
	assert.Equal(t, channel, v.Push.Channel)
	assert.Positive(t, v.Push.Pub.Data.TS)
	return v.Push.Pub.Data.Seq
}

func TestConnectSubscribeAndPublishInMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, base := startAnchor(t, Config{})
	s := subscribe(t, ctx, base, "bench")
	m := mem(t, base, "bench")
	assert.Equal(t, 1.0, m["connections"])
	assert.Equal(t, 1.0, m["subscribers"])

	res := publish(t, base, "bench", 10, 1, 128)
	assert.Equal(t, 10.0, res["published"])
	for i := range 10 {
		assert.Equal(t, i, pushSeq(t, s.next(ctx), "bench"))
	}
	assert.Equal(t, 10.0, mem(t, base, "bench")["publishes"])
	_, hasBroker := mem(t, base, "bench")["broker_published"]
	assert.False(t, hasBroker, "no broker counters with the in-memory broker")
}

func TestPublishRefusesBadRequests(t *testing.T) {
	_, base := startAnchor(t, Config{})
	for _, q := range []string{"channel=bench&rate=0&seconds=1&size=128", "rate=1&seconds=1&size=128", "channel=bench&rate=1&seconds=1&size=8"} {
		resp, err := http.Post(base+"/publish?"+q, "", nil)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, q)
	}
	resp, err := http.Get(base + "/publish?channel=bench&rate=1&seconds=1&size=128")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestNewRefusesUnknownBroker(t *testing.T) {
	_, err := New(Config{Broker: "kafka://127.0.0.1:9092"})
	assert.ErrorIs(t, err, ErrUnknownBroker)
}

func TestRunRefusesNonLoopback(t *testing.T) {
	err := run(context.Background(), "0.0.0.0:0", Config{}, func(string) {})
	assert.ErrorIs(t, err, errNotLoopback)
}

// TestRedisBrokerCountsOnePublishPerBroadcast runs two nodes on one Redis:
// a broadcast published on A reaches B's subscribers, and it goes to the
// broker once (A's Publish) and comes back once per node, however many
// clients are subscribed.
func TestRedisBrokerCountsOnePublishPerBroadcast(t *testing.T) {
	redis := brokertest.StartRedis(t) // a private redis-server, skipped when none is installed
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{Broker: redis.URL(), RedisPrefix: fmt.Sprintf("anchortest%d", rand.Int64())}
	_, a := startAnchor(t, cfg)
	_, b := startAnchor(t, cfg)
	var subs []*subscriber
	for range 3 {
		subs = append(subs, subscribe(t, ctx, b, "bench"))
	}
	local := subscribe(t, ctx, a, "bench")
	// The subscription reaches Redis asynchronously: publish until B gets one.
	deadline := time.Now().Add(10 * time.Second)
	for mem(t, b, "bench")["broker_received"] == 0 && time.Now().Before(deadline) {
		publish(t, a, "bench", 10, 1, 64)
	}
	require.Positive(t, mem(t, b, "bench")["broker_received"], "B never got a publication through Redis")
	// Drain what the warm-up delivered, then count one clean publish loop.
	a0, b0 := mem(t, a, "bench"), mem(t, b, "bench")
	res := publish(t, a, "bench", 20, 1, 128)
	require.Equal(t, 20.0, res["published"])
	waitFor := func(base, key string, want float64) float64 {
		for time.Now().Before(deadline.Add(10 * time.Second)) {
			if v := mem(t, base, "bench")[key]; v >= want {
				return v
			}
			time.Sleep(20 * time.Millisecond)
		}
		return mem(t, base, "bench")[key]
	}
	assert.Equal(t, 20.0, mem(t, a, "bench")["broker_published"]-a0["broker_published"])
	assert.Equal(t, 20.0, waitFor(b, "broker_received", b0["broker_received"]+20)-b0["broker_received"])
	assert.Equal(t, 1.0, mem(t, b, "bench")["broker_subscribes"], "one broker subscription per node and channel")
	assert.Equal(t, 0.0, mem(t, b, "bench")["broker_published"])
	_ = local
	_ = subs
}
