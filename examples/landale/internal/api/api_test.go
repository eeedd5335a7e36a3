package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/examples/landale/internal/activity"
	"github.com/pyre-go/pyre/examples/landale/internal/channels"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/pubsub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeDemo struct {
	mu      sync.Mutex
	running bool
}

func (d *fakeDemo) Running() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.running }
func (d *fakeDemo) Rate() float64 { return 2 }
func (d *fakeDemo) Start()        { d.mu.Lock(); d.running = true; d.mu.Unlock() }
func (d *fakeDemo) Stop()         { d.mu.Lock(); d.running = false; d.mu.Unlock() }

type fixture struct {
	srv  *httptest.Server
	ctl  *sim.Controller
	ps   *pubsub.Memory
	demo *fakeDemo

	activity *activity.Log

	mu  sync.Mutex
	got map[string][]*pubsub.Message
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{ctl: sim.NewController(0), ps: pubsub.NewMemory(nil), demo: &fakeDemo{}, got: map[string][]*pubsub.Message{}}
	t.Cleanup(func() { _ = f.ps.Close() })
	for _, topic := range []string{events.TopicEvents, events.TopicDashboard} {
		fn := pubsub.SubscriberFunc(func(m *pubsub.Message) {
			f.mu.Lock()
			f.got[m.Topic] = append(f.got[m.Topic], m)
			f.mu.Unlock()
		})
		require.NoError(t, f.ps.Subscribe(context.Background(), topic, &fn))
	}
	f.activity = activity.New(f.ps, 0)
	require.NoError(t, f.activity.Start(context.Background()))
	t.Cleanup(f.activity.Close)
	web := fstest.MapFS{"dashboard.html": {Data: []byte("<h1>dashboard</h1>")}, "overlay.html": {Data: []byte("<h1>overlay</h1>")}}
	h := New(Config{
		Ctl: f.ctl, Bus: events.NewBus(f.ps, nil), Overlays: channels.NewTracker(), Demo: f.demo, Web: web,
		Breakers:       func() map[string]string { return map[string]string{"obs": "open"} },
		Stats:          func() map[string]any { return map[string]any{"connections": 3} },
		AllowedOrigins: []string{"http://localhost:5173"},
		Activity:       f.activity,
		Twitch: func(ctx context.Context) (map[string]any, error) {
			if err := f.ctl.Gate(ctx, sim.Twitch); err != nil {
				return nil, err
			}
			return map[string]any{"connected": true}, nil
		},
	})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) do(t *testing.T, method, path, body string, header ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if method != http.MethodGet && method != http.MethodOptions {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if m == nil {
		m = map[string]any{"_raw": string(b)}
	}
	return resp.StatusCode, m, resp.Header
}

func TestSimulate(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.do(t, "POST", "/api/simulate", `{"service":"obs","mode":"down"}`)
	assert.Equal(t, 200, code)
	assert.Equal(t, "obs", body["service"])
	assert.Equal(t, "down", body["mode"])
	assert.Equal(t, sim.Down, f.ctl.Mode(sim.OBS))

	for _, c := range []struct{ body, field string }{
		{`{"service":"mixer","mode":"down"}`, "service"},
		{`{"mode":"down"}`, "service"},
		{`{"service":"obs","mode":"broken"}`, "mode"},
		{`{"service":"obs","mode":3}`, "mode"},
	} {
		code, body, _ := f.do(t, "POST", "/api/simulate", c.body)
		assert.Equal(t, 400, code, c.body)
		assert.Equal(t, c.field, body["field"], c.body)
		assert.NotEmpty(t, body["error"])
	}
	for _, bad := range []string{``, `[]`, `nope`, `{"service":`} {
		code, body, _ := f.do(t, "POST", "/api/simulate", bad)
		assert.Equal(t, 400, code, bad)
		assert.Contains(t, body["error"], "JSON object", bad)
	}
}

func TestPostEvent(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.do(t, "POST", "/api/events", `{"type":"channel.follow","user_login":"follower","user_name":"Follower"}`)
	require.Equal(t, 200, code)
	e := body["event"].(map[string]any)
	assert.Regexp(t, `^evt_[0-9a-f]{24}$`, e["id"])
	assert.Regexp(t, `^[0-9a-f]{8}$`, e["correlation_id"])
	assert.Equal(t, "twitch", e["source"])
	f.mu.Lock()
	require.Len(t, f.got[events.TopicEvents], 1)
	require.Len(t, f.got[events.TopicDashboard], 1)
	var published map[string]any
	require.NoError(t, json.Unmarshal(f.got[events.TopicEvents][0].Payload, &published))
	f.mu.Unlock()
	assert.Equal(t, e, published, "published exactly as answered")

	for _, c := range []struct{ body, field string }{
		{`{"user_login":"x"}`, "type"},
		{`{"type":""}`, "type"},
		{`{"type":"x.y","source":"myspace"}`, "source"},
		{`{"type":"x.y","timestamp":"yesterday"}`, "timestamp"},
		{`{"type":"x.y","id":12}`, "id"},
	} {
		code, body, _ := f.do(t, "POST", "/api/events", c.body)
		assert.Equal(t, 400, code, c.body)
		assert.Equal(t, c.field, body["field"], c.body)
		assert.True(t, strings.HasPrefix(body["error"].(string), c.field+" "), body["error"])
	}
	code, _, _ = f.do(t, "POST", "/api/events", `{"type":"x.y","blob":"`+strings.Repeat("a", MaxBodyBytes)+`"}`)
	assert.Equal(t, 413, code)
	f.mu.Lock()
	assert.Len(t, f.got[events.TopicEvents], 1, "rejected events are not published")
	f.mu.Unlock()

	code, body, _ = f.do(t, "GET", "/api/events?limit=1", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, float64(1), body["count"])
	code, _, _ = f.do(t, "GET", "/api/events?limit=0", "")
	assert.Equal(t, 400, code)
}

func TestStatusOverlaysDemo(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.ctl.Set(sim.Nurvus, sim.Slow))
	code, body, hdr := f.do(t, "GET", "/api/status", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "application/json; charset=utf-8", hdr.Get("Content-Type"))
	svcs := body["services"].(map[string]any)
	assert.Len(t, svcs, len(sim.Services))
	assert.Equal(t, map[string]any{"mode": "slow", "breaker": "closed"}, svcs["nurvus"])
	assert.Equal(t, map[string]any{"mode": "up", "breaker": "open"}, svcs["obs"])
	assert.Equal(t, float64(3), body["connections"])
	assert.Equal(t, map[string]any{"running": false, "rate": float64(2)}, body["demo"])
	assert.Equal(t, float64(6000), body["slow_delay_ms"])

	code, body, _ = f.do(t, "GET", "/api/overlays", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, []any{}, body["overlays"])
	assert.Equal(t, []any{}, body["topics"])

	code, body, _ = f.do(t, "POST", "/api/demo", `{"running":true}`)
	assert.Equal(t, 200, code)
	assert.Equal(t, true, body["running"])
	assert.True(t, f.demo.Running())
	code, body, _ = f.do(t, "POST", "/api/demo", `{"running":"yes"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "running", body["field"])

	code, _, _ = f.do(t, "GET", "/api/nope", "")
	assert.Equal(t, 404, code)
}

func TestPagesAndCORS(t *testing.T) {
	f := newFixture(t)
	code, _, hdr := f.do(t, "GET", "/", "")
	assert.Equal(t, http.StatusFound, code)
	assert.Equal(t, "/dashboard.html", hdr.Get("Location"))
	code, body, _ := f.do(t, "GET", "/overlay.html", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "<h1>overlay</h1>", body["_raw"])

	code, _, hdr = f.do(t, "OPTIONS", "/api/events", "", "Origin", "http://localhost:5173",
		"Access-Control-Request-Method", "POST")
	assert.Equal(t, http.StatusNoContent, code)
	assert.Equal(t, "http://localhost:5173", hdr.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, hdr.Get("Access-Control-Allow-Headers"), "x-correlation-id")
	_, _, hdr = f.do(t, "GET", "/api/status", "", "Origin", "http://evil.example")
	assert.Empty(t, hdr.Get("Access-Control-Allow-Origin"))
}

func TestNowIsInjectable(t *testing.T) {
	ps := pubsub.NewMemory(nil)
	defer ps.Close()
	at := time.Date(2025, 8, 25, 16, 2, 11, 482913000, time.UTC)
	h := New(Config{Ctl: sim.NewController(0), Bus: events.NewBus(ps, nil), Overlays: channels.NewTracker(),
		Now: func() time.Time { return at }})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/events", strings.NewReader(`{"type":"channel.follow"}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code)
	assert.Contains(t, rec.Body.String(), `"timestamp":"2025-08-25T16:02:11.482913Z"`)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/overlay.html", nil))
	assert.Equal(t, 404, rec.Code, "no pages without Web")
}

// A page on another site can POST text/plain or a form without a CORS
// preflight; before the guard such a POST switched a simulated service
// down. State-changing routes now need JSON and an allowed (or no) Origin.
func TestStateChangesRefuseCrossSite(t *testing.T) {
	f := newFixture(t)
	published := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.got[events.TopicEvents])
	}
	for _, c := range []struct{ path, body string }{
		{"/api/simulate", `{"service":"obs","mode":"down"}`},
		{"/api/events", `{"type":"channel.follow","user_login":"x"}`},
		{"/api/demo", `{"running":true}`},
	} {
		for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
			"multipart/form-data; boundary=x", "", "application/jsonx", "application/json-seq"} {
			code, body, _ := f.do(t, "POST", c.path, c.body, "Content-Type", ct, "Origin", "http://evil.example")
			assert.Contains(t, []int{403, 415}, code, "%s %q", c.path, ct)
			assert.NotEmpty(t, body["error"])
			code, body, _ = f.do(t, "POST", c.path, c.body, "Content-Type", ct)
			assert.Equal(t, http.StatusUnsupportedMediaType, code, "%s %q without Origin", c.path, ct)
			assert.Equal(t, "Content-Type must be application/json", body["error"])
		}
		for _, origin := range []string{"http://evil.example", "null", "http://localhost:5174", "https://localhost:5173",
			"http://localhost:5173.evil.example", strings.Replace(f.srv.URL, "http:", "https:", 1), f.srv.URL + "/x", f.srv.URL} {
			code, body, _ := f.do(t, "POST", c.path, c.body, "Origin", origin)
			assert.Equal(t, http.StatusForbidden, code, "%s from %s", c.path, origin)
			assert.Equal(t, "origin not allowed: "+origin, body["error"])
		}
	}
	assert.Equal(t, sim.Up, f.ctl.Mode(sim.OBS), "no refused request changed a mode")
	assert.Equal(t, 0, published(), "no refused request published an event")
	assert.False(t, f.demo.Running(), "no refused request started the demo")

	// JSON without an Origin (Landale's Python services) and from an
	// allowed origin (the dashboard on vite). The server's own origin is
	// not trusted by its Host header (DNS rebinding): it must be listed.
	code, _, _ := f.do(t, "POST", "/api/simulate", `{"service":"obs","mode":"down"}`, "Content-Type", "application/json; charset=utf-8")
	assert.Equal(t, 200, code)
	assert.Equal(t, sim.Down, f.ctl.Mode(sim.OBS))
	code, _, _ = f.do(t, "POST", "/api/simulate", `{"service":"obs","mode":"slow"}`, "Origin", "http://localhost:5173")
	assert.Equal(t, 200, code)
	assert.Equal(t, sim.Slow, f.ctl.Mode(sim.OBS))
	code, _, _ = f.do(t, "POST", "/api/events", `{"type":"channel.follow"}`, "Origin", f.srv.URL)
	assert.Equal(t, http.StatusForbidden, code, "an Origin equal to the Host is not listed")
	assert.Equal(t, 0, published())
	code, _, _ = f.do(t, "POST", "/api/events", `{"type":"channel.follow"}`, "Origin", "http://localhost:5173")
	assert.Equal(t, 200, code)
	assert.Equal(t, 1, published())
	code, _, _ = f.do(t, "POST", "/api/demo", `{"running":true}`, "Origin", "HTTP://LOCALHOST:5173")
	assert.Equal(t, 200, code)
	assert.True(t, f.demo.Running())

	// Reads stay open to any origin (CORS decides what a page may read).
	code, _, _ = f.do(t, "GET", "/api/status", "", "Origin", "http://evil.example")
	assert.Equal(t, 200, code)
}

// The HTTP server has no ReadTimeout (it would cut WebSockets), so a body
// trickled in must be cut by the API's own read deadline: without it this
// request would hold its connection until the client gave up.
func TestSlowBodyIsCut(t *testing.T) {
	ctl := sim.NewController(0)
	ps := pubsub.NewMemory(nil)
	defer ps.Close()
	srv := httptest.NewServer(New(Config{Ctl: ctl, Bus: events.NewBus(ps, nil), Overlays: channels.NewTracker(),
		BodyReadTimeout: 100 * time.Millisecond}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	// Promise 40 bytes, send 10 and then nothing.
	_, err = io.WriteString(conn, "POST /api/simulate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Content-Length: 40\r\n\r\n{\"service\"")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second))) // a hang fails, not blocks
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the server answers instead of waiting for the rest of the body")
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(b), "cannot read body")
	assert.Equal(t, sim.Up, ctl.Mode(sim.OBS))
}
