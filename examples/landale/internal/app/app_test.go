package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/examples/landale/internal/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newServer(t *testing.T, opts *Options) (*App, *httptest.Server) {
	t.Helper()
	// The pages of the test server are its own origin, as the listener's
	// address gives it (main does the same with SelfOriginsFor).
	srv := httptest.NewUnstartedServer(nil)
	var o Options
	if opts != nil {
		o = *opts
	}
	o.SelfOrigins = append(o.SelfOrigins, "http://"+srv.Listener.Addr().String())
	a, err := New(&o)
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	srv.Config.Handler = a.Handler()
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, a.Shutdown(ctx))
		srv.Close()
	})
	return a, srv
}

// client is a minimal Phoenix V2 client over a real WebSocket.
type client struct {
	t    *testing.T
	c    *websocket.Conn
	resp *http.Response
	ref  int
	kept [][]any // frames next passed over, in arrival order
}

func dial(t *testing.T, srv *httptest.Server, query string, header http.Header) (*client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket/websocket?vsn=2.0.0" + query
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: header, CompressionMode: websocket.CompressionContextTakeover})
	if err != nil {
		return nil, fmt.Errorf("%w (status %d)", err, statusOf(resp))
	}
	cl := &client{t: t, c: c, resp: resp}
	t.Cleanup(func() { _ = c.CloseNow() })
	return cl, nil
}

func statusOf(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}

func (cl *client) send(joinRef any, topic, event string, payload any) string {
	cl.t.Helper()
	cl.ref++
	ref := fmt.Sprint(cl.ref)
	if joinRef == "self" {
		joinRef = ref
	}
	b, err := json.Marshal([]any{joinRef, ref, topic, event, payload})
	require.NoError(cl.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(cl.t, cl.c.Write(ctx, websocket.MessageText, b))
	return ref
}

// next returns the first frame match accepts, like a selective receive:
// frames it passes over are kept for later calls, because frames of
// different channels (a reply on one, a push on another) have no order.
func (cl *client) next(match func(f []any) bool) []any {
	cl.t.Helper()
	for i, f := range cl.kept {
		if match(f) {
			cl.kept = append(cl.kept[:i], cl.kept[i+1:]...)
			return f
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := cl.c.Read(ctx)
		require.NoError(cl.t, err, "frames passed over: %v", cl.kept)
		var f []any
		require.NoError(cl.t, json.Unmarshal(b, &f))
		if match(f) {
			return f
		}
		cl.kept = append(cl.kept, f)
	}
}

func (cl *client) reply(ref string) map[string]any {
	cl.t.Helper()
	f := cl.next(func(f []any) bool { return f[3] == "phx_reply" && f[1] == ref })
	return f[4].(map[string]any)
}

func (cl *client) push(topic, event string) map[string]any {
	cl.t.Helper()
	f := cl.next(func(f []any) bool { return f[2] == topic && f[3] == event })
	return f[4].(map[string]any)
}

func (cl *client) join(topic string, params map[string]any) {
	cl.t.Helper()
	r := cl.reply(cl.send("self", topic, "phx_join", params))
	require.Equal(cl.t, "ok", r["status"], "join %s: %v", topic, r)
}

func TestSocketOrigins(t *testing.T) {
	_, srv := newServer(t, nil)
	for _, origin := range []string{"", "http://localhost:5173", "http://saya:8008", "http://localhost:8008",
		"https://saya.tailnet-dffc.ts.net:5173", "http://127.0.0.1:5174", "http://zelan.local:5173", srv.URL} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		cl, err := dial(t, srv, "&environment=development", h)
		require.NoError(t, err, origin)
		assert.Equal(t, http.StatusSwitchingProtocols, cl.resp.StatusCode, origin)
	}
	for _, origin := range []string{"http://evil.example", "http://localhost:3000", "https://localhost:5173"} {
		_, err := dial(t, srv, "", http.Header{"Origin": {origin}})
		assert.ErrorContains(t, err, "status 403", origin)
	}
	// DNS rebinding: a foreign page reaches the server under its own name,
	// so Host and Origin agree. Only the listed origins count.
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/socket/websocket?vsn=2.0.0",
		&websocket.DialOptions{Host: "rebind.example:" + port, HTTPHeader: http.Header{"Origin": {"http://rebind.example:" + port}}})
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, statusOf(resp))
	resp, err = http.Get(srv.URL + "/socket/longpoll")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestSocketCompressionAndHeartbeat(t *testing.T) {
	_, srv := newServer(t, nil)
	cl, err := dial(t, srv, "", nil)
	require.NoError(t, err)
	assert.Contains(t, cl.resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	ref := cl.send(nil, "phoenix", "heartbeat", map[string]any{})
	assert.Equal(t, map[string]any{"status": "ok", "response": map[string]any{}}, cl.reply(ref))
	assert.Equal(t, 90*time.Second, IdleTimeout)
}

func TestConnectionsShareAnEightHexCorrelationID(t *testing.T) {
	_, srv := newServer(t, nil)
	ids := map[string]bool{}
	for i := 0; i < 2; i++ {
		cl, err := dial(t, srv, "&environment=development&correlation_id=client-chosen", nil)
		require.NoError(t, err)
		cl.join("transcription:live", nil)
		cl.join("transcription:session:s1", nil)
		ref := cl.send("1", "transcription:live", "submit_transcription", map[string]any{
			"timestamp": "2024-01-01T00:00:00Z", "duration": 1.5, "text": "hi", "stream_session_id": "s1"})
		require.Equal(t, "ok", cl.reply(ref)["status"])
		live := cl.push("transcription:live", "new_transcription")
		sess := cl.push("transcription:session:s1", "new_transcription")
		id, _ := live["correlation_id"].(string)
		assert.Regexp(t, `^[0-9a-f]{8}$`, id)
		assert.Equal(t, id, sess["correlation_id"])
		ids[id] = true
	}
	assert.Len(t, ids, 2, "each connection has its own id")
}

func TestEnvironmentParamAndOverlayList(t *testing.T) {
	_, srv := newServer(t, nil)
	dev, err := dial(t, srv, "&environment=obs", nil)
	require.NoError(t, err)
	dev.join("overlay:obs", nil)
	prod, err := dial(t, srv, "", nil)
	require.NoError(t, err)
	prod.join("stream:overlays", map[string]any{"overlay_type": "omnibar"})

	resp, err := http.Get(srv.URL + "/api/overlays")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Overlays []map[string]any `json:"overlays"`
		Topics   []string         `json:"topics"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Len(t, body.Overlays, 2)
	assert.Equal(t, "obs", body.Overlays[0]["environment"])
	assert.Equal(t, "production", body.Overlays[1]["environment"])
	assert.Equal(t, "omnibar", body.Overlays[1]["name"])
	assert.Equal(t, []string{"overlay:obs", "stream:overlays"}, body.Topics)
}

func TestSimulateAndEventsThroughTheSocket(t *testing.T) {
	a, srv := newServer(t, &Options{Simulate: map[string]sim.Mode{sim.Rainwave: sim.Failing}})
	assert.Equal(t, sim.Failing, a.Ctl.Mode(sim.Rainwave))
	cl, err := dial(t, srv, "", nil)
	require.NoError(t, err)
	cl.join("overlay:obs", nil)
	cl.join("events:interactions", nil)

	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, post("/api/simulate", `{"service":"obs","mode":"down"}`))
	lost := cl.push("overlay:obs", "obs_event")
	assert.Equal(t, "obs.connection_lost", lost["type"])
	ref := cl.send("1", "overlay:obs", "obs:status", nil)
	assert.Equal(t, map[string]any{"status": "error", "response": map[string]any{"message": "OBS WebSocket not connected"}}, cl.reply(ref))

	require.Equal(t, 200, post("/api/events", `{"type":"channel.follow","user_login":"follower","user_name":"Follower"}`))
	f := cl.push("events:interactions", "follower")
	assert.Equal(t, "Follower", f["user_name"])
	require.Equal(t, 400, post("/api/events", `{"user_login":"x"}`))
}

func TestDemoRunsAndShutdownIsClean(t *testing.T) {
	a, srv := newServer(t, &Options{Demo: true, DemoRate: 200})
	cl, err := dial(t, srv, "", nil)
	require.NoError(t, err)
	cl.join("events:all", nil)
	cl.next(func(f []any) bool { return f[2] == "events:all" && f[3] != "phx_reply" })
	assert.True(t, a.Demo.Running())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closed := make(chan error, 1)
	go func() { // a client keeps reading, so it answers the close handshake
		for {
			if _, _, err := cl.c.Read(ctx); err != nil {
				closed <- err
				return
			}
		}
	}()
	require.NoError(t, a.Shutdown(ctx))
	assert.Equal(t, websocket.StatusCode(1012), websocket.CloseStatus(<-closed), "clients are told to reconnect")
	assert.False(t, a.Demo.Running())
}

func TestBreakerStateInStatusAndResetBySimulate(t *testing.T) {
	_, srv := newServer(t, nil)
	cl, err := dial(t, srv, "", nil)
	require.NoError(t, err)
	cl.join("overlay:twitch", nil)
	status := func() map[string]any {
		resp, err := http.Get(srv.URL + "/api/status")
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return body["services"].(map[string]any)["twitch"].(map[string]any)
	}
	simulate := func(mode string) {
		resp, err := http.Post(srv.URL+"/api/simulate", "application/json", strings.NewReader(`{"service":"twitch","mode":"`+mode+`"}`))
		require.NoError(t, err)
		resp.Body.Close()
	}
	simulate("failing")
	for i := 0; i < BreakerThreshold; i++ {
		r := cl.reply(cl.send("1", "overlay:twitch", "twitch:status", nil))
		assert.Equal(t, "error", r["status"])
	}
	assert.Equal(t, map[string]any{"mode": "failing", "breaker": "open"}, status())
	simulate("up")
	assert.Equal(t, map[string]any{"mode": "up", "breaker": "closed"}, status())
	assert.Equal(t, "ok", cl.reply(cl.send("1", "overlay:twitch", "twitch:status", nil))["status"])
}

func TestInitialPushesFollowTheJoinReply(t *testing.T) {
	_, srv := newServer(t, nil)
	cl, err := dial(t, srv, "", nil)
	require.NoError(t, err)
	for topic, event := range map[string]string{"dashboard:main": "initial_state", "overlay:system": "initial_state",
		"stream:overlays": "stream_state", "stream:queue": "queue_state", "transcription:live": "connection_established"} {
		ref := cl.send("self", topic, "phx_join", map[string]any{})
		first := cl.next(func(f []any) bool { return f[2] == topic })
		assert.Equal(t, []any{ref, ref, topic, "phx_reply"}, first[:4], topic)
		second := cl.next(func(f []any) bool { return f[2] == topic })
		assert.Equal(t, []any{ref, nil, topic, event}, second[:4], topic)
	}
}

// The HTTP API refuses cross-site state changes with the socket's origin
// list: the dashboard on vite (an allowed origin), the server's own pages
// and the Python services (no Origin) may POST JSON; other sites may not.
func TestAPIStateChangesUseTheOriginList(t *testing.T) {
	a, srv := newServer(t, nil)
	post := func(ct, origin, body string) int {
		req, err := http.NewRequest("POST", srv.URL+"/api/simulate", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", ct)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnsupportedMediaType, post("text/plain", "", `{"service":"obs","mode":"down"}`))
	assert.Equal(t, http.StatusForbidden, post("application/json", "http://evil.example", `{"service":"obs","mode":"down"}`))
	assert.Equal(t, sim.Up, a.Ctl.Mode(sim.OBS))
	for i, origin := range append([]string{"", srv.URL}, AllowedOrigins...) {
		mode := []string{"down", "up"}[i%2]
		require.Equal(t, http.StatusOK, post("application/json", origin, `{"service":"obs","mode":"`+mode+`"}`), origin)
		assert.Equal(t, sim.Mode(mode), a.Ctl.Mode(sim.OBS), origin)
	}
}

// The routes Landale's apps call are served from the App's own log and
// simulators: an event published on the bus shows in the Activity Log's
// history, the Twitch status is the simulator's.
func TestLandaleRoutesAreWired(t *testing.T) {
	_, srv := newServer(t, nil)
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return resp.StatusCode, m
	}
	resp, err := http.Post(srv.URL+"/api/events", "application/json",
		strings.NewReader(`{"type":"channel.follow","user_login":"ana","user_name":"Ana"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	code, body := get("/api/activity/events?limit=50")
	require.Equal(t, 200, code)
	evs := body["data"].(map[string]any)["events"].([]any)
	require.NotEmpty(t, evs)
	assert.Equal(t, "channel.follow", evs[0].(map[string]any)["event_type"])
	code, body = get("/api/twitch/status")
	assert.Equal(t, 200, code)
	assert.Equal(t, true, body["data"].(map[string]any)["connected"])
	code, body = get("/api/oauth/status")
	assert.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"connected": false}, body)
}

// A fresh server's world and stream producer agree on the show: Landale's
// StreamProducer starts on variety (A47), and the simulated Twitch channel
// starts in a category that maps to variety.
func TestFreshServerShowAgreesWithTheWorld(t *testing.T) {
	a, _ := newServer(t, nil)
	info, err := a.World.Twitch.ChannelInfo(context.Background())
	require.NoError(t, err)
	ch := info[0].(map[string]any)
	assert.Equal(t, "variety", a.Producer.Show())
	assert.Equal(t, a.Producer.Show(), stream.ShowForGame(ch["game_id"].(string), ch["game_name"].(string)))
	lm, err := a.Producer.LayerMappings(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "variety", lm["current_show"])
}

// GET /metrics serves Prometheus text, outside the API's origin guard:
// after a real WebSocket join the join and the connection are counted, and
// a tripped breaker shows as open.
func TestMetricsCountAWebSocketJoin(t *testing.T) {
	a, srv := newServer(t, nil)
	joined := make(chan channel.JoinInfo, 4)
	a.Server.Observe(&channel.Observer{Join: func(i channel.JoinInfo) { joined <- i }}) // after the metrics' own
	scrape := func(origin string) string {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	before := scrape("")
	assert.NotContains(t, before, "pyre_channel_joins_total")
	assert.Contains(t, before, `pyre_connections{transport="websocket"} 0`)

	cl, err := dial(t, srv, "", nil)
	require.NoError(t, err)
	cl.join("overlay:twitch", nil)
	select {
	case <-joined:
	case <-time.After(5 * time.Second):
		t.Fatal("join not observed")
	}
	simulate, err := http.Post(srv.URL+"/api/simulate", "application/json", strings.NewReader(`{"service":"twitch","mode":"failing"}`))
	require.NoError(t, err)
	simulate.Body.Close()
	for range BreakerThreshold {
		assert.Equal(t, "error", cl.reply(cl.send("1", "overlay:twitch", "twitch:status", nil))["status"])
	}

	body := scrape("http://evil.example") // read-only: no origin check
	for _, want := range []string{
		`pyre_channel_joins_total{pattern="overlay:*"} 1`,
		`pyre_connections{transport="websocket"} 1`,
		`pyre_connections_accepted_total 1`,
		`pyre_breaker_state{service="twitch",state="open"} 1`,
		`pyre_channel_handler_duration_seconds_count{event="phx_join",pattern="overlay:*"} 1`,
		"go_goroutines ",
	} {
		assert.Contains(t, body, want)
	}

	resp, err := http.Post(srv.URL+"/metrics", "text/plain", nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.NotContains(t, string(b), "pyre_", "only GET serves the metrics")
}
