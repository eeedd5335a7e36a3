package channels_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/examples/landale/internal/channels"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

func TestDashboardJoinPushesInitialStateAfterReply(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ch, reply := s.TryJoin("dashboard:main", map[string]any{})
		require.NotNil(t, ch)
		channeltest.AssertPayload(t, reply.Payload(), channeltest.JSON(`{}`))
		f := ch.AssertPush("initial_state", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
			m := asMap(p)
			assert.Equal(t, true, m["connected"])
			isInt(t, m["timestamp"])
			assert.Len(t, m, 2)
		}))
		assert.Equal(t, ch.JoinRef(), f.JoinRef(), "a push, not a broadcast")
	})
}

func TestDashboardPingIsEnvelopedAndNotEchoed(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("dashboard:main", nil)
		ch.Push("ping", map[string]any{"hello": "there"}).AssertReply("ok", envelopeOK(channeltest.Check(
			func(t *channeltest.CollectT, p channel.Payload) {
				m := asMap(p)
				assert.Equal(t, true, m["pong"])
				isInt(t, m["timestamp"])
				assert.NotContains(t, m, "hello")
			})))
	})
}

func TestDashboardShoutBroadcastsWithoutReply(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		a := h.socket().Join("dashboard:main", nil)
		b := h.socket().Join("dashboard:main", nil)
		p := a.Push("shout", map[string]any{"a": 1})
		for _, ch := range []*channeltest.Channel{a, b} {
			f := ch.AssertPush("shout", channeltest.JSON(`{"a":1}`))
			assert.Equal(t, channel.FrameBroadcast, f.Kind(), "join_ref null")
		}
		p.RefuteReply(0)
	})
}

func TestDashboardNoReplyCases(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("dashboard:main", nil)
		for _, c := range []struct {
			event   string
			payload map[string]any
		}{
			{"foo", nil},
			{"totally_unknown_command", map[string]any{"data": "test"}},
			{"obs:set_current_scene", map[string]any{}},
			{"rainwave:set_enabled", map[string]any{}},
			{"rainwave:set_enabled", map[string]any{"enabled": "yes"}},
			{"rainwave:set_station", map[string]any{}},
		} {
			ch.Push(c.event, c.payload).RefuteReply(time.Second)
		}
		ch.Push("ping", nil).AssertReply("ok", envelopeOK(nil))
	})
}

func TestDashboardOBSCommands(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("dashboard:main", nil)
		ch.AssertPush("initial_state", nil)
		ch.Push("obs:get_status", nil).AssertReply("ok", envelopeOK(channeltest.Subset(map[string]any{
			"connected": true, "status": "healthy", "current_scene": "Coding", "streaming": false,
		})))
		for _, op := range []string{"start_streaming", "start_recording", "stop_recording", "stop_streaming"} {
			ch.Push("obs:"+op, nil).AssertReply("ok", envelopeOK(map[string]any{"operation": op}))
		}
		ch.Push("obs:set_current_scene", map[string]any{"scene_name": "BRB"}).
			AssertReply("ok", envelopeOK(map[string]any{"operation": "set_current_scene"}))
		assert.Equal(t, "BRB", h.world.OBS.Scene())

		ch.Push("obs:stop_streaming", nil).AssertReply("error",
			envelopeErr("operation_failed", "OBS request StopStream failed: output not active"))
		ch.Push("obs:set_current_scene", map[string]any{"scene_name": "Nope"}).AssertReply("error",
			envelopeErr("operation_failed", "No source was found by the name of `Nope`."))
	})
}

func TestDashboardRainwaveCommands(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("dashboard:main", nil)
		ch.Push("rainwave:get_status", nil).AssertReply("ok", envelopeOK(channeltest.Subset(map[string]any{
			"station_id": 2, "station_name": "Covers", "enabled": true})))
		ch.Push("rainwave:set_enabled", map[string]any{"enabled": false}).
			AssertReply("ok", envelopeOK(map[string]any{"operation": "set_enabled", "enabled": false}))
		ch.Push("rainwave:set_station", map[string]any{"station_id": 3}).
			AssertReply("ok", envelopeOK(map[string]any{"operation": "set_station", "station_id": 3}))
		ch.Push("rainwave:set_station", map[string]any{"station_id": "4"}).
			AssertReply("ok", envelopeOK(map[string]any{"operation": "set_station", "station_id": "4"}))
		ch.Push("rainwave:set_station", map[string]any{"station_id": 9}).
			AssertReply("error", envelopeErr("operation_failed", "Invalid station ID: 9"))
	})
}

func TestDashboardServiceErrors(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("dashboard:main", nil)
		h.set(sim.OBS, sim.Down)
		ch.Push("obs:get_status", nil).AssertReply("error", envelopeErr("service_error", "OBS WebSocket not connected"))
		ch.Push("obs:start_streaming", nil).AssertReply("error", envelopeErr("operation_failed", "OBS WebSocket not connected"))
		h.set(sim.Rainwave, sim.Failing)
		ch.Push("rainwave:get_status", nil).AssertReply("error",
			envelopeErr("service_error", "Rainwave API request failed: simulated failure"))
		ch.Push("ping", nil).AssertReply("ok", envelopeOK(nil))
	})
}

func TestDashboardServiceTimeoutAfterFiveSeconds(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("dashboard:main", nil)
		h.set(sim.OBS, sim.Slow)
		for _, ev := range []string{"obs:get_status", "obs:start_streaming"} {
			start := time.Now()
			ch.Push(ev, nil).AssertReply("error", envelopeErr("service_timeout", "Service call timed out"))
			assert.Equal(t, 5*time.Second, time.Since(start), ev)
		}
		assert.False(t, h.world.OBS.Streaming(), "the slow call was abandoned")
	})
}

func TestDashboardServicePanicDoesNotCrashTheChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(d *channels.Deps) {
			w := *d.World
			w.OBS = nil // every OBS call panics
			d.World = &w
		})
		ch := h.socket().Join("dashboard:main", nil)
		ch.Push("obs:get_status", nil).AssertReply("error", envelopeErr("service_error", ":service_crashed"))
		ch.Push("obs:start_streaming", nil).AssertReply("error", envelopeErr("operation_failed", ":service_crashed"))
		ch.Push("ping", nil).AssertReply("ok", envelopeOK(nil))
	})
}

func TestDashboardRateLimit(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ch := s.Join("dashboard:main", nil)
		ch.Push("obs:set_current_scene", nil).RefuteReply(0) // falls through: not counted
		for i := 0; i < 50; i++ {
			ch.Push("obs:get_status", nil).AssertReply("ok", envelopeOK(nil))
		}
		ch.Push("obs:get_status", nil).AssertReply("error", envelopeErr("backpressure", "rate_limit_exceeded"))
		ch.Push("rainwave:get_status", nil).AssertReply("error", envelopeErr("backpressure", "rate_limit_exceeded"))
		ch.Push("ping", nil).AssertReply("ok", envelopeOK(nil))

		other := h.socket().Join("dashboard:lobby", nil)
		other.Push("obs:get_status", nil).AssertReply("ok", envelopeOK(nil)) // per join

		time.Sleep(9 * time.Second)
		ch.Push("obs:get_status", nil).AssertReply("error", envelopeErr("backpressure", "rate_limit_exceeded"))
		time.Sleep(time.Second + time.Millisecond)
		ch.Push("obs:get_status", nil).AssertReply("ok", envelopeOK(nil))
	})
}

func TestDashboardPushesEachEventOnceBySource(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ch := s.Join("dashboard:main", nil)
		ch.AssertPush("initial_state", nil)
		h.publish("channel.follow", follow)
		ch.AssertPush("twitch_event", channeltest.Subset(map[string]any{
			"type": "channel.follow", "source": "twitch", "user_login": "follower", "raw_type": "channel.follow"}))
		ch.RefutePush("twitch_event", nil, 0)

		cases := []struct {
			typ  string
			data map[string]any
			want string
		}{
			{"system.health_check", map[string]any{"service": "phononmaser", "status": "healthy"}, "health_update"},
			{"system.performance_metric", map[string]any{"metric": "cpu", "value": 1.5}, "performance_update"},
			{"system.service_started", map[string]any{"service": "seed"}, "system_event"},
			{"obs.scene_changed", map[string]any{"scene_name": "BRB"}, "obs_event"},
			{"rainwave.update", map[string]any{"station_id": 2}, "rainwave_event"},
			{"ironmon.checkpoint", map[string]any{"checkpoint_id": "5", "checkpoint_name": "BROCK"}, "ironmon_event"},
			{"twitch.connection_established", map[string]any{}, "twitch_connected"},
			{"twitch.connection_lost", map[string]any{}, "twitch_disconnected"},
			{"twitch.connection_changed", map[string]any{}, "twitch_connection_changed"},
			{"channel.chat.message", chat, "twitch_event"},
		}
		for _, c := range cases {
			h.publish(c.typ, c.data)
			ch.AssertPush(c.want, channeltest.Subset(map[string]any{"type": c.typ}))
		}
		h.publishRaw(map[string]any{"type": "stream.takeover_cleared"})
		// The producer's stream.state_updated events are not pushed either.
		assert.Empty(t, pushes(s, "dashboard:main"), "stream events and duplicates are not pushed")
	})
}

func TestDashboardSurvivesGarbage(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("dashboard:main", nil)
		for i := 0; i < 100; i++ {
			h.ep.Broadcast("dashboard", "garbage", map[string]any{"n": i, "nested": map[string]any{"deep": []any{1, "x", nil}}})
		}
		for i := 0; i < 10; i++ {
			ch.Push("unknown_push", map[string]any{"i": i}).RefuteReply(time.Millisecond)
		}
		ch.Push("ping", nil).AssertReply("ok", envelopeOK(channeltest.Subset(map[string]any{"pong": true})))
	})
}

func TestDashboardConnectionInfo(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.ep.Client(&channel.ConnectInfo{
			CorrelationID: "a1b2c3d4",
			ID:            "user_socket:a1b2c3d4",
			Assigns:       map[string]any{"environment": "obs"},
		})
		ch := s.Join("dashboard:main", nil)
		ch.Push("connection:info", nil).AssertReply("ok", envelopeOK(map[string]any{
			"correlation_id": "a1b2c3d4", "socket_id": "user_socket:a1b2c3d4", "environment": "obs",
		}))
	})
}
