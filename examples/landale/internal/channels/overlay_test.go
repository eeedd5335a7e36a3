package channels_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

func TestOverlayInitialState(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		sys := s.Join("overlay:system", nil)
		sys.AssertPush("initial_state", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
			m := asMap(p)
			assert.Equal(t, "system", m["type"])
			d := m["data"].(map[string]any)
			assert.Equal(t, true, d["connected"])
			isInt(t, d["timestamp"])
		}))
		st, err := h.world.OBS.Status(context.Background())
		require.NoError(t, err)
		s.Join("overlay:obs", nil).AssertPush("initial_state",
			map[string]any{"type": "obs", "data": map[string]any{"connected": true, "status": st}})
		s.Join("overlay:twitch", nil).AssertPush("initial_state",
			channeltest.Subset(map[string]any{"type": "twitch", "data": map[string]any{"connected": true}}))
		for _, typ := range []string{"ironmon", "music", "whatever"} {
			s.Join("overlay:"+typ, nil).AssertPush("initial_state",
				map[string]any{"type": typ, "data": map[string]any{"connected": true}})
		}
		h.set(sim.OBS, sim.Down)
		h.socket().Join("overlay:obs", nil).AssertPush("initial_state",
			map[string]any{"type": "obs", "data": map[string]any{"connected": false}})
		h.set(sim.Twitch, sim.Slow)
		h.socket().Join("overlay:twitch", nil).AssertPush("initial_state",
			map[string]any{"type": "twitch", "data": map[string]any{"connected": false}})
	})
}

func TestOverlayPingEchoes(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("overlay:obs", nil)
		ch.Push("ping", map[string]any{"hello": "there", "pong": "client"}).AssertReply("ok",
			channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
				m := asMap(p)
				assert.Equal(t, "there", m["hello"])
				assert.Equal(t, true, m["pong"], "server keys win")
				assert.Equal(t, "obs", m["overlay_type"])
				isInt(t, m["timestamp"])
				assert.NotContains(t, m, "success")
			}))
	})
}

func TestOverlayServiceCommandsReplyRawData(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("overlay:obs", nil)
		w := h.world
		ctx := context.Background()
		calls := map[string]func(context.Context) (map[string]any, error){
			"obs:status": w.OBS.Status, "obs:scenes": w.OBS.SceneList, "obs:stream_status": w.OBS.StreamStatus,
			"obs:record_status": w.OBS.RecordStatus, "obs:version": w.OBS.Version,
			"obs:virtual_cam": w.OBS.VirtualCam, "obs:outputs": w.OBS.Outputs,
			"twitch:status": w.Twitch.Status, "rainwave:status": w.Rainwave.Status, "ironmon:status": w.Ironmon.Status,
		}
		for event, fn := range calls {
			want, err := fn(ctx)
			require.NoError(t, err)
			ch.Push(event, nil).AssertReply("ok", channeltest.Value(want))
		}
		ch.Push("obs:stats", nil).AssertReply("ok", channeltest.Subset(map[string]any{"activeFps": 60}))
		challenges, _ := w.Ironmon.ListChallenges(ctx)
		f := ch.Push("ironmon:challenges", nil).AssertReply("ok", channeltest.Value(challenges))
		assert.Equal(t, byte('['), f.Payload().Bytes()[0], "a JSON array reply")
	})
}

func TestOverlayIronmonParameters(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("overlay:ironmon", nil)
		msg := func(text string) channeltest.JSON { return channeltest.JSON(`{"message":"` + text + `"}`) }
		bad := "Parameter 'challenge_id' must be a positive integer"
		ch.Push("ironmon:checkpoints", map[string]any{}).AssertReply("error", msg("Missing required parameters: challenge_id"))
		for _, v := range []string{`"abc"`, `"12a"`, `"0"`, `"-1"`, `null`, `7.0`, `0`, `-3`, `true`, `[7]`} {
			ch.Push("ironmon:checkpoints", channeltest.JSON(`{"challenge_id":`+v+`}`)).AssertReply("error", msg(bad))
		}
		want, _ := h.world.Ironmon.ListCheckpoints(context.Background(), 7)
		ch.Push("ironmon:checkpoints", map[string]any{"challenge_id": "7"}).AssertReply("ok", channeltest.Value(want))
		ch.Push("ironmon:checkpoints", channeltest.JSON(`{"challenge_id":7}`)).AssertReply("ok", channeltest.Value(want))
		ch.Push("ironmon:checkpoints", map[string]any{"challenge_id": 99}).AssertReply("ok", channeltest.JSON(`[]`))

		ch.Push("ironmon:checkpoint_stats", nil).AssertReply("error", msg("Missing required parameters: checkpoint_id"))
		ch.Push("ironmon:checkpoint_stats", map[string]any{"checkpoint_id": "x"}).AssertReply("error",
			msg("Parameter 'checkpoint_id' must be a positive integer"))
		ch.Push("ironmon:checkpoint_stats", map[string]any{"checkpoint_id": 5}).AssertReply("ok",
			channeltest.Subset(map[string]any{"checkpoint_id": 5, "checkpoint_name": "BROCK"}))
		ch.Push("ironmon:checkpoint_stats", map[string]any{"checkpoint_id": "99"}).AssertReply("error", msg("Checkpoint not found"))

		ch.Push("ironmon:active_challenge", nil).AssertReply("error", msg("Missing required parameters: seed_id"))
		ch.Push("ironmon:active_challenge", map[string]any{"seed_id": "42"}).AssertReply("ok",
			channeltest.Subset(map[string]any{"seed_id": 42, "active": true}))

		limit := "Parameter 'limit' must be an integer between 1 and 100"
		for _, v := range []string{`101`, `0`, `null`, `1.5`, `"x"`, `-1`} {
			ch.Push("ironmon:recent_results", channeltest.JSON(`{"limit":`+v+`}`)).AssertReply("error", msg(limit))
		}
		ch.Push("ironmon:recent_results", map[string]any{"limit": "5"}).AssertReply("ok",
			channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
				var list []map[string]any
				require.NoError(t, decodeInto(p, &list))
				assert.Len(t, list, 5)
				assert.Subset(t, keys(list[0]), []string{"id", "seed_id", "checkpoint_name", "trainer", "challenge_name", "result"})
			}))
		ch.Push("ironmon:recent_results", nil).AssertReply("ok", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
			var list []any
			require.NoError(t, decodeInto(p, &list))
			assert.Len(t, list, 10, "default limit")
		}))
		ch.Push("ironmon:recent_results", map[string]any{"limit": 100}).AssertReply("ok", nil)
	})
}

func TestOverlayErrorsAreMessages(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("overlay:obs", nil)
		ch.Push("foo:bar", nil).AssertReply("error", channeltest.JSON(`{"message":"Unknown command: foo:bar"}`))
		ch.Push("unknown:command", nil).AssertReply("error", channeltest.JSON(`{"message":"Unknown command: unknown:command"}`))
		h.set(sim.OBS, sim.Down)
		ch.Push("obs:status", nil).AssertReply("error", channeltest.JSON(`{"message":"OBS WebSocket not connected"}`))
		h.set(sim.Ironmon, sim.Failing)
		ch.Push("ironmon:challenges", nil).AssertReply("error", channeltest.JSON(`{"message":"IronMON query failed: simulated failure"}`))
		h.set(sim.Rainwave, sim.Slow)
		start := time.Now()
		ch.Push("rainwave:status", nil).AssertReply("error", channeltest.JSON(`{"message":":timeout"}`))
		assert.Equal(t, 5*time.Second, time.Since(start))
		h.set(sim.Stream, sim.Down)
		ch.Push("get_layer_mappings", nil).AssertReply("error", channeltest.JSON(`{"message":"StreamProducer service is not available"}`))
		ch.Push("ping", nil).AssertReply("ok", channeltest.Subset(map[string]any{"pong": true}))
	})
}

func TestOverlaySystemStatus(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("overlay:system", nil)
		f := ch.Push("system:status", nil).AssertReply("ok", nil)
		m := decode(t, f)
		assert.Equal(t, "healthy", m["status"])
		isInt(t, m["timestamp"])
		up := m["uptime"].(map[string]any)
		isInt(t, up["seconds"])
		assert.Equal(t, "0s", up["formatted"])
		mem := m["memory"].(map[string]any)
		for _, k := range []string{"total", "processes", "system"} {
			assert.Regexp(t, `^\d+(\.\d{1,2})? (B|KB|MB|GB)$`, mem[k])
		}
		assert.ElementsMatch(t, []string{"obs", "twitch", "ironmon_tcp", "database"}, keys(m["services"]))
		assert.Equal(t, map[string]any{"healthy_services": float64(4), "total_services": float64(4), "health_percentage": float64(100)}, m["summary"])

		h.set(sim.OBS, sim.Down)
		m = decode(t, ch.Push("system:status", nil).AssertReply("ok", nil))
		assert.Equal(t, "degraded", m["status"])
		assert.Equal(t, map[string]any{"connected": false}, m["services"].(map[string]any)["obs"])
		assert.Equal(t, float64(75), m["summary"].(map[string]any)["health_percentage"])
	})
}

func TestOverlaySystemServices(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("overlay:system", nil)
		m := decode(t, ch.Push("system:services", nil).AssertReply("ok", nil))
		obs := m["obs"].(map[string]any)
		assert.Equal(t, "obs_websocket", obs["service_type"])
		assert.Equal(t, float64(len(sim.OBSScenes)), obs["scene_count"])
		assert.Equal(t, "Coding", obs["current_scene"])
		twitch := m["twitch"].(map[string]any)
		assert.Equal(t, map[string]any{"total_subscriptions": float64(sim.Subscriptions), "enabled_subscriptions": float64(sim.Subscriptions)}, twitch["subscriptions"])
		im := m["ironmon_tcp"].(map[string]any)
		assert.Equal(t, "tcp_server", im["service_type"])
		assert.Equal(t, float64(8080), im["port"])
		db := m["database"].(map[string]any)
		assert.Equal(t, true, db["connected"])
		assert.Contains(t, db, "seed_count")
	})
}

func TestOverlayLayerMappings(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("overlay:system", nil)
		ch.Push("get_layer_mappings", nil).AssertReply("ok", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
			m := asMap(p)
			assert.Equal(t, "variety", m["current_show"])
			assert.Equal(t, []any{"coding", "ironmon", "variety"}, m["available_shows"])
			mp := m["mappings"].(map[string]any)
			assert.Equal(t, "foreground", mp["alert"])
			assert.Equal(t, "midground", mp["sub_train"])
			assert.Equal(t, "background", mp["emote_stats"])
		}))
	})
}

func TestOverlayForwardsItsSourceOnly(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		for _, typ := range []string{"obs", "twitch", "ironmon", "music", "system", "rainwave"} {
			s.Join("overlay:"+typ, nil).AssertPush("initial_state", nil)
		}
		h.set(sim.Stream, sim.Down)
		h.publish("rainwave.update", map[string]any{"station_id": 2, "station_name": "Covers"})
		h.publish("obs.scene_changed", map[string]any{"scene_name": "BRB"})
		h.publish("channel.chat.message", chat)
		h.publish("ironmon.checkpoint", map[string]any{"checkpoint_id": "5"})
		h.publish("system.health_check", map[string]any{"service": "seed"})
		h.publishRaw(map[string]any{"type": "stream.takeover_cleared"})
		got := map[string][]string{}
		for _, f := range s.Pending() {
			got[f.Topic()] = append(got[f.Topic()], f.Event()+" "+asMap(f.Payload())["type"].(string))
		}
		assert.Equal(t, map[string][]string{
			"overlay:music":   {"music_event rainwave.update"},
			"overlay:obs":     {"obs_event obs.scene_changed"},
			"overlay:twitch":  {"twitch_event channel.chat.message"},
			"overlay:ironmon": {"ironmon_event ironmon.checkpoint"},
			"overlay:system":  {"system_event system.health_check"},
		}, got, "overlay:rainwave is not special")
	})
}

func TestOverlayTracker(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		obs := s.Join("overlay:obs", nil)
		s.Join("stream:overlays", map[string]any{"overlay_type": "omnibar"})
		s.Join("stream:queue", nil)
		list := h.tracker.List()
		require.Len(t, list, 2)
		assert.Equal(t, "overlay:obs", list[0].Topic)
		assert.Equal(t, "obs", list[0].Name)
		assert.Equal(t, "development", list[0].Environment)
		assert.Equal(t, s.CorrelationID(), list[0].CorrelationID)
		assert.Equal(t, "stream:overlays", list[1].Topic)
		assert.Equal(t, "omnibar", list[1].Name)
		obs.Leave().AssertReply("ok", nil)
		obs.AssertTerminated(channel.ErrLeft)
		assert.Len(t, h.tracker.List(), 1)
		s.Close()
		assert.Empty(t, h.tracker.List())
	})
}
