package channels_test

import (
	"context"
	"encoding/json"
	"regexp"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/examples/landale/internal/channels"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/examples/landale/internal/stream"
	"github.com/pyre-go/pyre/examples/landale/internal/transcript"
	"github.com/pyre-go/pyre/pubsub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	isoRe  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)
	uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

// harness is one server with its simulated world, built inside a synctest
// bubble so that timeouts, rate windows and refute windows take no time.
type harness struct {
	t       *testing.T
	ep      *channeltest.Endpoint
	ps      pubsub.PubSub
	ctl     *sim.Controller
	bus     *events.Bus
	world   *sim.World
	prod    *stream.Producer
	store   *transcript.Store
	tracker *channels.Tracker
	deps    *channels.Deps
}

func newHarness(t *testing.T, tweak ...func(*channels.Deps)) *harness {
	t.Helper()
	ps := pubsub.NewMemory(nil)
	t.Cleanup(func() { _ = ps.Close() })
	h := &harness{t: t, ps: ps, ctl: sim.NewController(sim.DefaultSlowDelay)}
	h.bus = events.NewBus(ps, nil)
	h.world = sim.NewWorld(h.ctl, h.bus, nil)
	h.prod = stream.New(h.bus, h.ctl, nil)
	h.store = transcript.NewStore(0)
	h.tracker = channels.NewTracker()
	t.Cleanup(func() { _ = h.tracker.Close() })
	h.deps = &channels.Deps{Bus: h.bus, World: h.world, Producer: h.prod, Transcripts: h.store, Overlays: h.tracker}
	for _, fn := range tweak {
		fn(h.deps)
	}
	h.ep = channeltest.New(t, channels.Router(h.deps), &channeltest.Options{
		Server:  channel.Options{PubSub: ps},
		Wire:    true,
		Timeout: time.Minute, // fake time: waits cost nothing, and slow calls take 5-6 s
	})
	require.NoError(t, h.prod.Start(context.Background()))
	t.Cleanup(h.prod.Close)
	return h
}

// run runs fn in a synctest bubble with a fresh harness.
func run(t *testing.T, fn func(t *testing.T, h *harness)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) { fn(t, newHarness(t)) })
}

var sockN int

// socket connects a client like the app's Connect does: an 8-hex
// correlation id and the environment assign.
func (h *harness) socket() *channeltest.Client {
	sockN++
	return h.ep.Client(&channel.ConnectInfo{
		CorrelationID: "c0ffee0" + string(rune('0'+sockN%10)),
		Assigns:       map[string]any{"environment": "development"},
	})
}

func (h *harness) set(service string, mode sim.Mode) {
	h.t.Helper()
	require.NoError(h.t, h.ctl.Set(service, mode))
}

// publish publishes an event as a webhook would and lets it propagate.
func (h *harness) publish(typ string, data map[string]any) events.Event {
	h.t.Helper()
	e, err := h.bus.Publish(context.Background(), typ, data)
	require.NoError(h.t, err)
	synctest.Wait()
	return e
}

// publishRaw publishes a normalized event built by hand.
func (h *harness) publishRaw(e events.Event) {
	h.t.Helper()
	c, err := events.Complete(e, time.Now())
	require.NoError(h.t, err)
	require.NoError(h.t, h.bus.PublishEvent(context.Background(), c))
	synctest.Wait()
}

// pushes returns the events of the pending push frames of topic, in order,
// without taking them.
func pushes(s *channeltest.Client, topic string) []string {
	synctest.Wait()
	var out []string
	for _, f := range s.Pending() {
		if f.Topic() == topic && f.Kind() != channel.FrameReply {
			out = append(out, f.Event())
		}
	}
	return out
}

// asMap decodes a JSON object payload.
func asMap(p channel.Payload) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(p.Bytes(), &m)
	return m
}

// decodeInto decodes a JSON payload into v.
func decodeInto(p channel.Payload, v any) error { return json.Unmarshal(p.Bytes(), v) }

// decode returns a frame's payload as a map.
func decode(t *testing.T, f *channel.Frame) map[string]any {
	t.Helper()
	return channeltest.Decode[map[string]any](t, f.Payload())
}

// envelopeOK matches ResponseBuilder.success with data.
func envelopeOK(data any) channeltest.Matcher {
	return channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(p.Bytes(), &m))
		assert.Equal(t, true, m["success"])
		meta, _ := m["meta"].(map[string]any)
		assert.Equal(t, "0.1.0", meta["server_version"])
		assert.Regexp(t, isoRe, meta["timestamp"])
		assert.Len(t, m, 3)
		if data != nil {
			matchData(t, m["data"], data)
		}
	})
}

// envelopeErr matches ResponseBuilder.error with code and message.
func envelopeErr(code, message string) channeltest.Matcher {
	return channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(p.Bytes(), &m))
		assert.Equal(t, false, m["success"])
		assert.NotContains(t, m, "meta")
		e, _ := m["error"].(map[string]any)
		assert.Equal(t, code, e["code"])
		assert.Equal(t, message, e["message"])
		assert.Regexp(t, isoRe, e["timestamp"])
	})
}

// matchData compares a decoded value with want (a Matcher or a Go value).
func matchData(t *channeltest.CollectT, got, want any) {
	m, ok := want.(channeltest.Matcher)
	if !ok {
		m = channeltest.Value(want)
	}
	if err := m.MatchPayload(channel.JSONPayload(mustJSON(got))); err != nil {
		t.Errorf("data: %v", err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// isInt checks a JSON number is an integer.
func isInt(t assert.TestingT, v any) bool {
	n, ok := v.(float64)
	return assert.True(t, ok && n == float64(int64(n)), "want an integer, got %v", v)
}

// Fixture inputs of the events of spec §4.
var (
	bcast  = map[string]any{"broadcaster_user_id": "123456", "broadcaster_user_login": "streamer", "broadcaster_user_name": "Streamer"}
	follow = merge(bcast, map[string]any{"user_id": "789012", "user_login": "follower", "user_name": "Follower",
		"followed_at": "2024-01-01T12:00:00Z"})
	subscribe = merge(bcast, map[string]any{"user_id": "789012", "user_login": "follower", "user_name": "Follower", "tier": "1000"})
	gift      = merge(bcast, map[string]any{"user_id": "789012", "user_login": "follower", "tier": "1000", "total": 5})
	cheer     = merge(bcast, map[string]any{"user_id": "789012", "user_login": "follower", "bits": 100, "message": "Cheer100 nice"})
	chat      = merge(bcast, map[string]any{"message_id": "m-1", "chatter_user_id": "42", "chatter_user_login": "viewer",
		"chatter_user_name": "Viewer", "message": map[string]any{"text": "Hello avalonHype", "fragments": []any{
			map[string]any{"type": "text", "text": "Hello "}, map[string]any{"type": "emote", "text": "avalonHype"}}}})
)

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
