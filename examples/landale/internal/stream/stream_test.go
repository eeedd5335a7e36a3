package stream

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/pubsub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness runs a producer on an in-memory bus and records what it
// publishes.
type harness struct {
	p   *Producer
	bus *events.Bus
	ctl *sim.Controller

	mu  sync.Mutex
	out []events.Event
}

func newHarness(t *testing.T) *harness {
	ps := pubsub.NewMemory(nil)
	h := &harness{bus: events.NewBus(ps, nil), ctl: sim.NewController(time.Second)}
	f := pubsub.SubscriberFunc(func(m *pubsub.Message) {
		if e, ok := events.Decode(m); ok && e.Source() == events.SourceStream {
			h.mu.Lock()
			h.out = append(h.out, e)
			h.mu.Unlock()
		}
	})
	require.NoError(t, ps.Subscribe(context.Background(), events.TopicEvents, &f))
	h.p = New(h.bus, h.ctl, nil)
	require.NoError(t, h.p.Start(context.Background()))
	t.Cleanup(func() {
		h.p.Close()
		_ = ps.Close()
	})
	return h
}

func (h *harness) published(typ string) []events.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []events.Event
	for _, e := range h.out {
		if e.Type() == typ {
			out = append(out, e)
		}
	}
	return out
}

func (h *harness) publish(t *testing.T, typ string, data map[string]any) {
	t.Helper()
	_, err := h.bus.Publish(context.Background(), typ, data)
	require.NoError(t, err)
	synctest.Wait()
}

func TestInitialState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		st, err := h.p.State(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "variety", st["current_show"])
		assert.Equal(t, []any{"emote_stats", "recent_follows", "stream_goals", "daily_stats"}, st["ticker"])
		assert.Equal(t, []any{}, st["alerts"])
		assert.Equal(t, []any{}, st["timeline"])
		base := st["base"].(map[string]any)
		assert.Equal(t, "emote_stats", base["type"])
		assert.Equal(t, PriorityTicker, base["priority"])
		md := st["metadata"].(map[string]any)
		assert.Contains(t, md, "last_updated")
		assert.Equal(t, 0, md["state_version"])
		assert.Empty(t, h.published("stream.state_updated"), "quiet until something happens")
	})
}

func TestEveryEventUpdatesState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.publish(t, "channel.follow", map[string]any{"user_id": "1", "user_login": "a", "user_name": "A",
			"broadcaster_user_id": "2", "broadcaster_user_login": "s", "followed_at": "2024-01-01T12:00:00Z"})
		ups := h.published("stream.state_updated")
		require.Len(t, ups, 1)
		base := ups[0]["base"].(map[string]any)
		assert.Equal(t, "channel.follow", base["type"])
		assert.Equal(t, "A", base["user_name"])
		assert.Equal(t, "background", base["layer"])
		assert.Equal(t, float64(1), ups[0]["version"])

		h.publish(t, "obs.scene_changed", map[string]any{"scene_name": "BRB"})
		assert.Len(t, h.published("stream.state_updated"), 2, "any non-state event refreshes the state")
	})
}

func TestForceContentExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		ctx := context.Background()
		id, err := h.p.ForceContent(ctx, "manual_override", map[string]any{"message": "x", "type": "ignored"}, 5*time.Second)
		require.NoError(t, err)
		assert.Regexp(t, `^[0-9a-f]{16}$`, id)
		st, _ := h.p.State(ctx)
		alerts := st["alerts"].([]any)
		require.Len(t, alerts, 1)
		a := alerts[0].(map[string]any)
		assert.Equal(t, "manual_override", a["type"])
		assert.Equal(t, PriorityAlert, a["priority"])
		assert.Equal(t, int64(5000), a["duration"])
		assert.Equal(t, map[string]any{"type": "manual_override", "message": "x"}, a["data"])
		assert.Equal(t, "foreground", Layer("alert", "variety"))

		time.Sleep(5*time.Second - time.Millisecond)
		synctest.Wait()
		st, _ = h.p.State(ctx)
		assert.Len(t, st["alerts"], 1, "still shown just before its duration")
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		st, _ = h.p.State(ctx)
		assert.Empty(t, st["alerts"], "gone after its duration")
		ups := h.published("stream.state_updated")
		require.NotEmpty(t, ups)
		assert.Empty(t, ups[len(ups)-1]["alerts"], "the expiry was published")
	})
}

func TestRemoveItemPublishesInterruptRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		ctx := context.Background()
		id, err := h.p.ForceContent(ctx, "x", map[string]any{}, time.Minute)
		require.NoError(t, err)
		require.NoError(t, h.p.RemoveItem(ctx, id))
		synctest.Wait()
		st, _ := h.p.State(ctx)
		assert.Empty(t, st["alerts"])
		rem := h.published("stream.interrupt_removed")
		require.Len(t, rem, 1)
		assert.Equal(t, id, rem[0]["interrupt_id"])
		require.NoError(t, h.p.RemoveItem(ctx, "absent"), "absent ids are fine")
	})
}

func TestSubTrainAndRaidAlerts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		sub := map[string]any{"user_id": "1", "user_login": "a", "user_name": "A", "broadcaster_user_id": "2",
			"broadcaster_user_login": "s", "tier": "1000"}
		h.publish(t, "channel.subscribe", sub)
		h.publish(t, "channel.subscribe", sub)
		h.publish(t, "channel.raid", map[string]any{"from_broadcaster_user_name": "R", "viewers": 12})
		st, _ := h.p.State(context.Background())
		alerts := st["alerts"].([]any)
		require.Len(t, alerts, 2)
		assert.Equal(t, "alert", alerts[0].(map[string]any)["type"], "sorted by priority")
		train := alerts[1].(map[string]any)
		assert.Equal(t, "sub_train", train["type"])
		assert.Equal(t, 2, train["data"].(map[string]any)["count"])
		assert.Equal(t, "midground", train["layer"])
	})
}

func TestShowChangeFromChannelUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.publish(t, "channel.update", map[string]any{"broadcaster_user_id": "2", "broadcaster_user_login": "s",
			"category_id": "490100", "category_name": "Pokémon FireRed/LeafGreen", "title": "IronMON!"})
		synctest.Wait()
		assert.Equal(t, "ironmon", h.p.Show())
		ch := h.published("stream.show_changed")
		require.Len(t, ch, 1)
		assert.Equal(t, "ironmon", ch[0]["show"])
		assert.Equal(t, "490100", ch[0]["game_id"])
		assert.Equal(t, "IronMON!", ch[0]["title"])
		st, _ := h.p.State(context.Background())
		assert.Equal(t, []any{"ironmon_run_stats", "ironmon_progression"}, st["ticker"])
		m, err := h.p.LayerMappings(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "ironmon", m["current_show"])
		assert.Equal(t, []string{"coding", "ironmon", "variety"}, m["available_shows"])
	})
}

func TestEmoteIncrementWhileEmoteStatsShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.publish(t, "channel.chat.message", map[string]any{"message_id": "m", "broadcaster_user_id": "2",
			"chatter_user_id": "3", "chatter_user_name": "V", "message": map[string]any{"text": "avalonHype",
				"fragments": []any{map[string]any{"type": "emote", "text": "avalonHype"}}}})
		synctest.Wait()
		inc := h.published("stream.emote_increment")
		require.Len(t, inc, 1)
		assert.Equal(t, []any{"avalonHype"}, inc[0]["native_emotes"])
		assert.Equal(t, "V", inc[0]["user_name"])
	})
}

func TestTickerRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		time.Sleep(15*time.Second + time.Millisecond)
		synctest.Wait()
		ups := h.published("stream.state_updated")
		require.Len(t, ups, 1)
		assert.Equal(t, "recent_follows", ups[0]["base"].(map[string]any)["type"])

		_, err := h.p.ForceContent(context.Background(), "x", map[string]any{}, time.Minute)
		require.NoError(t, err)
		n := len(h.published("stream.state_updated"))
		time.Sleep(15 * time.Second)
		synctest.Wait()
		assert.Len(t, h.published("stream.state_updated"), n, "no rotation update while an alert shows")
	})
}

func TestDownProducer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		require.NoError(t, h.ctl.Set(sim.Stream, sim.Down))
		_, err := h.p.State(context.Background())
		assert.ErrorIs(t, err, ErrUnavailable)
		assert.ErrorIs(t, err, sim.ErrDown)
		_, err = h.p.ForceContent(context.Background(), "x", nil, time.Second)
		assert.Error(t, err)
		h.publish(t, "obs.scene_changed", map[string]any{"scene_name": "BRB"})
		assert.Empty(t, h.published("stream.state_updated"), "a stopped producer emits nothing")
	})
}

func TestFormatQueue(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 10, 0, time.UTC)
	st := map[string]any{
		"alerts": []any{
			map[string]any{"id": "a", "type": "alert", "priority": 100, "started_at": "2025-01-01T00:00:00Z", "duration": 1000, "data": map[string]any{}},
			map[string]any{"id": "b", "type": "cheer_thing", "priority": 10, "started_at": "2025-01-01T00:00:06Z", "duration": 1000},
		},
		"metadata": map[string]any{"last_updated": "x"},
	}
	q := FormatQueue(st, now)
	queue := q["queue"].([]any)
	require.Len(t, queue, 2)
	first := queue[0].(map[string]any)
	assert.Equal(t, "alert", first["type"])
	assert.Equal(t, "pending", first["status"])
	assert.Equal(t, 0, first["position"])
	assert.Equal(t, "ticker", queue[1].(map[string]any)["type"])
	assert.Equal(t, "cheer_thing", queue[1].(map[string]any)["content_type"])
	m := q["metrics"].(map[string]any)
	assert.Equal(t, int64(7000), m["average_wait_time"])
	assert.Equal(t, 2, m["pending_items"])
	assert.Equal(t, 0, m["active_items"])
	assert.Equal(t, "x", m["last_processed"])
	assert.Equal(t, true, q["is_processing"])

	empty := FormatQueue(map[string]any{}, now)
	assert.Equal(t, false, empty["is_processing"])
	assert.Equal(t, int64(0), empty["metrics"].(map[string]any)["average_wait_time"])
}

func TestFallbacks(t *testing.T) {
	fb := FallbackLayerState(time.Now())
	assert.Equal(t, "variety", fb["current_show"])
	assert.Contains(t, fb, "current")
	assert.Equal(t, "ticker", fb["priority_level"])
	assert.NotContains(t, fb, "timeline")
	assert.Equal(t, true, fb["metadata"].(map[string]any)["fallback_mode"])
	assert.Equal(t, map[string]any{"queue": []any{}, "base": nil, "ticker": []any{}, "timeline": []any{}, "alerts": []any{}},
		FallbackRequestQueueState())
	assert.Equal(t, true, FallbackQueueState()["fallback_mode"])
}
