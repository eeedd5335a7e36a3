package promchannel_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/promchannel"
	"github.com/pyre-go/pyre/fallback"
	"github.com/pyre-go/pyre/internal/brokertest"
	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/redis"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// histCounts returns the sample count of every series of the histogram
// name, keyed by its label values joined with "/".
func histCounts(t *testing.T, g prometheus.Gatherer, name string) map[string]uint64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	out := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[labelKey(m)] = m.GetHistogram().GetSampleCount()
		}
	}
	return out
}

func labelKey(m *dto.Metric) string {
	var vs []string
	for _, l := range m.GetLabel() {
		vs = append(vs, l.GetValue())
	}
	return strings.Join(vs, "/")
}

func TestJoinsRefusalsEventsAndLeavesAfterRealTraffic(t *testing.T) {
	e, _ := newEndpoint(t, &channel.Options{MaxChannels: 2}, nil)
	c := e.dial(t)

	require.Equal(t, "ok", c.join("room:a", nil))
	require.Equal(t, "error", c.join("nomatch:1", nil))
	require.Equal(t, "error", c.join("room:b", map[string]any{"reject": true}))
	require.Equal(t, "error", c.join("room:c", map[string]any{"crash": true}))
	require.Equal(t, "ok", c.join("lobby", nil))
	require.Equal(t, "error", c.join("room:d", nil), "MaxChannels")
	wait(t, e.joined, 6)

	assert.Equal(t, "ok", c.Reply(c.push("room:a", "echo")))
	assert.Equal(t, "error", c.Reply(c.push("room:a", "err")))
	assert.Equal(t, "queued", c.Reply(c.push("room:a", "custom")))
	c.push("room:a", "noreply")
	c.push("room:a", "no-such-event")
	c.push("room:a", "stop") // the channel closes
	c.push("lobby", "boom")  // the channel crashes
	wait(t, e.handled, 7)
	wait(t, e.left, 2)

	require.Equal(t, "ok", c.join("room:a", nil))
	ref := c.Push(c.JoinRef("room:a"), "room:a", "phx_leave", nil)
	assert.Equal(t, "ok", c.Reply(ref))
	require.Equal(t, "ok", c.join("room:a", nil))
	require.Equal(t, "ok", c.join("room:a", nil)) // replaces the previous one
	wait(t, e.joined, 3)
	wait(t, e.left, 2)
	c.Close()
	wait(t, e.left, 1)

	e.compare(t, `
# HELP pyre_channel_joins_total Successful channel joins, by channel pattern.
# TYPE pyre_channel_joins_total counter
pyre_channel_joins_total{pattern="lobby"} 1
pyre_channel_joins_total{pattern="room:*"} 4
# HELP pyre_channel_join_refusals_total Refused channel joins, by channel pattern (empty when refused before routing) and reason.
# TYPE pyre_channel_join_refusals_total counter
pyre_channel_join_refusals_total{pattern="",reason="unmatched_topic"} 1
pyre_channel_join_refusals_total{pattern="room:*",reason="channel"} 1
pyre_channel_join_refusals_total{pattern="room:*",reason="crashed"} 1
pyre_channel_join_refusals_total{pattern="room:*",reason="too_many_channels"} 1
# HELP pyre_channel_leaves_total Channels that ended, by channel pattern and reason (leave, closed, duplicate_join, stop, crash).
# TYPE pyre_channel_leaves_total counter
pyre_channel_leaves_total{pattern="lobby",reason="crash"} 1
pyre_channel_leaves_total{pattern="room:*",reason="closed"} 1
pyre_channel_leaves_total{pattern="room:*",reason="duplicate_join"} 1
pyre_channel_leaves_total{pattern="room:*",reason="leave"} 1
pyre_channel_leaves_total{pattern="room:*",reason="stop"} 1
# HELP pyre_channel_events_total Client events handled, by channel pattern, event and status (ok, error, noreply, unhandled, stop, crash, other).
# TYPE pyre_channel_events_total counter
pyre_channel_events_total{event="boom",pattern="lobby",status="crash"} 1
pyre_channel_events_total{event="custom",pattern="room:*",status="other"} 1
pyre_channel_events_total{event="echo",pattern="room:*",status="ok"} 1
pyre_channel_events_total{event="err",pattern="room:*",status="error"} 1
pyre_channel_events_total{event="noreply",pattern="room:*",status="noreply"} 1
pyre_channel_events_total{event="other",pattern="room:*",status="unhandled"} 1
pyre_channel_events_total{event="stop",pattern="room:*",status="stop"} 1
`, "pyre_channel_joins_total", "pyre_channel_join_refusals_total", "pyre_channel_leaves_total", "pyre_channel_events_total")

	problems, err := testutil.GatherAndLint(e.reg)
	require.NoError(t, err)
	assert.Empty(t, problems, "metric names and help follow Prometheus conventions")

	// Durations: one per event handled, and one per join that reached a
	// channel (the ok ones, "channel" and "crashed" refusals), none for the
	// refusals made before a channel existed.
	// Keys are event/pattern (labels sort by name).
	assert.Equal(t, map[string]uint64{
		"phx_join/lobby": 1, "phx_join/room:*": 6, "boom/lobby": 1, "custom/room:*": 1, "echo/room:*": 1,
		"err/room:*": 1, "noreply/room:*": 1, "other/room:*": 1, "stop/room:*": 1,
	}, histCounts(t, e.reg, "pyre_channel_handler_duration_seconds"))
}

func TestEventNamesAreBoundedPerPattern(t *testing.T) {
	e, _ := newEndpoint(t, &channel.Options{}, &promchannel.Options{MaxEventsPerPattern: 2})
	c := e.dial(t)
	require.Equal(t, "ok", c.join("room:a", nil))
	require.Equal(t, "ok", c.join("lobby", nil))
	for _, ev := range []string{"any:1", "any:2", "any:3", "any:4", "any:1"} {
		assert.Equal(t, "ok", c.Reply(c.push("room:a", ev)))
	}
	assert.Equal(t, "ok", c.Reply(c.push("lobby", "any:9")), "each pattern has its own allowance")
	for i := range 20 {
		c.push("room:a", fmt.Sprintf("client-chosen-%d", i)) // unhandled: never a label
	}
	wait(t, e.handled, 26)
	e.compare(t, `
# HELP pyre_channel_events_total Client events handled, by channel pattern, event and status (ok, error, noreply, unhandled, stop, crash, other).
# TYPE pyre_channel_events_total counter
pyre_channel_events_total{event="any:1",pattern="room:*",status="ok"} 2
pyre_channel_events_total{event="any:2",pattern="room:*",status="ok"} 1
pyre_channel_events_total{event="other",pattern="room:*",status="ok"} 2
pyre_channel_events_total{event="other",pattern="room:*",status="unhandled"} 20
pyre_channel_events_total{event="any:9",pattern="lobby",status="ok"} 1
`, "pyre_channel_events_total")
}

func TestServerCountersTransportsAndQueuedBytes(t *testing.T) {
	e, _ := newEndpoint(t, &channel.Options{LongPoll: &channel.LongPollOptions{}}, nil)
	a, b := e.dial(t), e.dial(t)
	require.Equal(t, "ok", a.join("room:a", nil))
	require.Equal(t, "ok", b.join("room:a", nil))

	// A LongPoll client, over real HTTP: open a session, join, and do not
	// poll, so that broadcasts wait in its queue.
	lp := newLongPollClient(t, e.hs.URL+"/socket/longpoll?vsn=2.0.0")
	lp.post(`["1","1","room:a","phx_join",{}]`)
	assert.Contains(t, lp.poll(), `\"status\":\"ok\"`)
	wait(t, e.joined, 3)

	require.NoError(t, e.srv.Broadcast(context.Background(), "room:a", "n", map[string]int{"i": 1}))
	frame := `[null,null,"room:a","n",{"i":1}]`
	e.compare(t, `
# HELP pyre_connections Open connections, by transport (websocket, longpoll, other).
# TYPE pyre_connections gauge
pyre_connections{transport="longpoll"} 1
pyre_connections{transport="other"} 0
pyre_connections{transport="websocket"} 2
# HELP pyre_connections_accepted_total Connections accepted.
# TYPE pyre_connections_accepted_total counter
pyre_connections_accepted_total 3
# HELP pyre_longpoll_sessions Open LongPoll sessions.
# TYPE pyre_longpoll_sessions gauge
pyre_longpoll_sessions 1
# HELP pyre_broadcasts_total Broadcasts fanned out to subscribers on this node.
# TYPE pyre_broadcasts_total counter
pyre_broadcasts_total 1
# HELP pyre_broadcast_deliveries_total Subscribers the broadcasts were handed to.
# TYPE pyre_broadcast_deliveries_total counter
pyre_broadcast_deliveries_total 3
`, "pyre_connections", "pyre_connections_accepted_total", "pyre_longpoll_sessions",
		"pyre_broadcasts_total", "pyre_broadcast_deliveries_total")
	// The WebSocket copies leave their queues as the write pool writes
	// them, with no signal to wait for; the LongPoll copy stays queued
	// until the client polls.
	queued := fmt.Sprintf(`
# HELP pyre_outbound_queued_bytes Outbound bytes queued on the connections, not yet written or polled.
# TYPE pyre_outbound_queued_bytes gauge
pyre_outbound_queued_bytes %d
`, len(frame))
	require.Eventually(t, func() bool {
		return testutil.GatherAndCompare(e.reg, strings.NewReader(queued), "pyre_outbound_queued_bytes") == nil
	}, timeout, time.Millisecond)
	assert.Contains(t, lp.poll(), `room:a\",\"n\"`)
	e.compare(t, strings.Replace(queued, fmt.Sprint(len(frame)), "0", 1), "pyre_outbound_queued_bytes")

	// A refused connection (unsupported vsn) and the counters that exist
	// from the start.
	resp, err := http.Get(e.hs.URL + "/socket/websocket?vsn=9.9.9")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	e.compare(t, `
# HELP pyre_connections_refused_total Connections refused (origin, vsn, subprotocol, Connect).
# TYPE pyre_connections_refused_total counter
pyre_connections_refused_total 1
# HELP pyre_slow_consumer_closes_total Connections closed because their outbound queue overflowed (code 3008).
# TYPE pyre_slow_consumer_closes_total counter
pyre_slow_consumer_closes_total 0
# HELP pyre_mailbox_drops_total Broadcasts and infos dropped at a full channel mailbox.
# TYPE pyre_mailbox_drops_total counter
pyre_mailbox_drops_total 0
`, "pyre_connections_refused_total", "pyre_slow_consumer_closes_total", "pyre_mailbox_drops_total")
}

// longPollClient speaks phoenix.js's LongPoll protocol over real HTTP.
type longPollClient struct {
	t     *testing.T
	base  string
	token string
}

func newLongPollClient(t *testing.T, base string) *longPollClient {
	c := &longPollClient{t: t, base: base}
	body := c.do(http.MethodGet, "")
	i := strings.Index(body, `"token":"`)
	require.Positive(t, i, body)
	c.token = strings.SplitN(body[i+len(`"token":"`):], `"`, 2)[0]
	return c
}

func (c *longPollClient) do(method, body string) string {
	c.t.Helper()
	u := c.base
	if c.token != "" {
		u += "&token=" + url.QueryEscape(c.token)
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(c.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return string(b)
}

func (c *longPollClient) post(line string) {
	c.t.Helper()
	require.Equal(c.t, `{"status":200}`, c.do(http.MethodPost, line))
}

func (c *longPollClient) poll() string { return c.do(http.MethodGet, "") }

// A broadcast a client's filter drops is counted in
// pyre_broadcast_filtered_total, not in the deliveries.
func TestFilteredBroadcastsAreCounted(t *testing.T) {
	e, _ := newEndpoint(t, &channel.Options{}, nil)
	a, b := e.dial(t), e.dial(t)
	require.Equal(t, "ok", a.join("feed:1", map[string]any{"filter": map[string]any{"events": []string{"keep"}}}))
	require.Equal(t, "ok", b.join("feed:1", nil))
	wait(t, e.joined, 2)

	require.NoError(t, e.srv.Broadcast(context.Background(), "feed:1", "drop", map[string]int{"i": 1}))
	require.NoError(t, e.srv.Broadcast(context.Background(), "feed:1", "keep", map[string]int{"i": 2}))
	e.compare(t, `
# HELP pyre_broadcasts_total Broadcasts fanned out to subscribers on this node.
# TYPE pyre_broadcasts_total counter
pyre_broadcasts_total 2
# HELP pyre_broadcast_deliveries_total Subscribers the broadcasts were handed to.
# TYPE pyre_broadcast_deliveries_total counter
pyre_broadcast_deliveries_total 3
# HELP pyre_broadcast_filtered_total Deliveries dropped by the clients' broadcast filters (channel.Filter).
# TYPE pyre_broadcast_filtered_total counter
pyre_broadcast_filtered_total 1
`, "pyre_broadcasts_total", "pyre_broadcast_deliveries_total", "pyre_broadcast_filtered_total")
}

func TestBreakerStateIsOneHot(t *testing.T) {
	breakers := fallback.NewRegistry(&fallback.BreakerOptions{FailureThreshold: 1, Logger: slog.New(slog.DiscardHandler)})
	e, _ := newEndpoint(t, &channel.Options{Breakers: breakers}, nil)
	fail := func(context.Context) (int, error) { return 0, errors.New("down") }
	fb := func(context.Context, error) (int, error) { return 0, nil }
	_, err := fallback.Call(context.Background(), breakers.Breaker("obs"), fail, fb)
	require.NoError(t, err)
	breakers.Breaker("twitch")
	require.NoError(t, breakers.Wait(context.Background()))
	e.compare(t, `
# HELP pyre_breaker_state Circuit breaker state by service: 1 for the current state (closed, open, half-open), 0 for the others.
# TYPE pyre_breaker_state gauge
pyre_breaker_state{service="obs",state="closed"} 0
pyre_breaker_state{service="obs",state="half-open"} 0
pyre_breaker_state{service="obs",state="open"} 1
pyre_breaker_state{service="twitch",state="closed"} 1
pyre_breaker_state{service="twitch",state="half-open"} 0
pyre_breaker_state{service="twitch",state="open"} 0
`, "pyre_breaker_state")
	problems, err := testutil.GatherAndLint(e.reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// TestPubSubMetricsWithRedis kills a private Redis under a Server and
// sees the failed publish, the lost connection and the reconnection.
func TestPubSubMetricsWithRedis(t *testing.T) {
	b := brokertest.StartRedis(t)
	log, logs := brokertest.NewLogger(t)
	ps, err := redis.New(context.Background(), &redis.Options{URL: b.URL(), Logger: log,
		HealthCheckInterval: 100 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, ps.Close()) })
	e, _ := newEndpoint(t, &channel.Options{PubSub: ps}, nil)
	names := []string{"pyre_pubsub_publish_errors_total", "pyre_pubsub_reconnects_total", "pyre_pubsub_connected"}
	want := func(errs, reconnects, connected int) string {
		return fmt.Sprintf(`
# HELP pyre_pubsub_publish_errors_total Broadcasts whose publish to the broker failed.
# TYPE pyre_pubsub_publish_errors_total counter
pyre_pubsub_publish_errors_total %d
# HELP pyre_pubsub_reconnects_total Connections to the broker re-established after a loss.
# TYPE pyre_pubsub_reconnects_total counter
pyre_pubsub_reconnects_total %d
# HELP pyre_pubsub_connected 1 when the connection to the broker is up, else 0.
# TYPE pyre_pubsub_connected gauge
pyre_pubsub_connected %d
`, errs, reconnects, connected)
	}
	e.compare(t, want(0, 0, 1), names...)

	b.Kill()
	logs.WaitFor(t, "lost the Redis subscription connection")
	err = e.srv.Broadcast(context.Background(), "room:a", "x", nil)
	require.ErrorIs(t, err, pubsub.ErrUnavailable)
	e.compare(t, want(1, 0, 0), names...)

	b.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	require.NoError(t, ps.Sync(ctx))
	e.compare(t, want(1, 1, 1), names...)
	problems, err := testutil.GatherAndLint(e.reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestMemoryPubSubHasNoBrokerMetrics(t *testing.T) {
	e, _ := newEndpoint(t, &channel.Options{}, nil)
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		assert.NotContains(t, mf.GetName(), "pubsub")
	}
}

func TestNewRegistersAndCloseUnregisters(t *testing.T) {
	srv := channel.NewServer(&channel.Options{Router: newRouter(), Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m, err := promchannel.New(srv, &promchannel.Options{Registerer: reg, Namespace: "app", ConstLabels: prometheus.Labels{"node": "a"}})
	require.NoError(t, err)

	_, err = promchannel.New(srv, &promchannel.Options{Registerer: reg, Namespace: "app", ConstLabels: prometheus.Labels{"node": "a"}})
	var are prometheus.AlreadyRegisteredError
	require.ErrorAs(t, err, &are, "the same metrics twice on one registry")
	other, err := promchannel.New(srv, &promchannel.Options{Registerer: reg, Namespace: "app", ConstLabels: prometheus.Labels{"node": "b"}})
	require.NoError(t, err, "distinct ConstLabels")
	other.Close()

	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.NotEmpty(t, mfs)
	for _, mf := range mfs {
		assert.True(t, strings.HasPrefix(mf.GetName(), "app_"), mf.GetName())
		assert.Equal(t, "a", mf.GetMetric()[0].GetLabel()[0].GetValue(), mf.GetName())
	}
	m.Close()
	m.Close()
	mfs, err = reg.Gather()
	require.NoError(t, err)
	assert.Empty(t, mfs)
	_, err = promchannel.New(srv, &promchannel.Options{Registerer: reg})
	require.NoError(t, err, "registers again after Close")
}

// Importing package channel must not compile Prometheus.
func TestChannelDoesNotDependOnPrometheus(t *testing.T) {
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command runs this test and must be on PATH")
	out, err := exec.Command(gobin, "list", "-deps", "github.com/pyre-go/pyre/channel").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "github.com/pyre-go/pyre/channel\n")
	assert.NotContains(t, string(out), "prometheus")
}

// The write pool's delay is exported: a fixed WriteDelay shows in the
// gauge, and the counter integrating it starts at zero.
func TestWriteDelayIsExported(t *testing.T) {
	e, _ := newEndpoint(t, &channel.Options{WriteDelay: 20 * time.Millisecond}, nil)
	e.compare(t, `
# HELP pyre_websocket_write_delay_seconds The WebSocket write pool's current write delay (channel.Options.MaxWriteDelay, or WriteDelay when set).
# TYPE pyre_websocket_write_delay_seconds gauge
pyre_websocket_write_delay_seconds 0.02
# HELP pyre_websocket_write_delay_seconds_total The write delay integrated over the time the write pool was busy: its rate is the mean delay.
# TYPE pyre_websocket_write_delay_seconds_total counter
pyre_websocket_write_delay_seconds_total 0
`, "pyre_websocket_write_delay_seconds", "pyre_websocket_write_delay_seconds_total")
}
