package channels_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

func TestServicesJoinPushesNothing(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ch, reply := s.TryJoin("dashboard:services", nil)
		require.NotNil(t, ch)
		channeltest.AssertPayload(t, reply.Payload(), channeltest.JSON(`{}`))
		assert.Empty(t, pushes(s, "dashboard:services"))
		ch.Push("ping", map[string]any{}).AssertReply("ok", envelopeOK(channeltest.Subset(map[string]any{"pong": true})))
	})
}

func TestServicesClauseOrder(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("dashboard:services", nil)
		cases := []struct {
			event         string
			payload       map[string]any
			code, message string
		}{
			{"start", map[string]any{"service": "obs"}, "invalid_service", "Service obs is not controllable"},
			{"restart", map[string]any{"service": 3}, "invalid_service", "Service 3 is not controllable"},
			{"frobnicate", map[string]any{"service": "seed"}, "unknown_command", "Unknown command: frobnicate"},
			{"frobnicate", map[string]any{}, "unknown_command", "Unknown command: frobnicate"},
			{"totally_unknown_command", map[string]any{"data": "test"}, "unknown_command", "Unknown command: totally_unknown_command"},
			{"ping", map[string]any{"service": "seed"}, "unknown_command", "Unknown command: ping"},
			{"get_telemetry", map[string]any{"service": "obs"}, "invalid_service", "Service obs is not controllable"},
		}
		for _, c := range cases {
			ch.Push(c.event, c.payload).AssertReply("error", envelopeErr(c.code, c.message))
		}
	})
}

func TestServicesStartBroadcastsThenReportsResult(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		a := h.socket().Join("dashboard:services", nil)
		b := h.socket().Join("dashboard:services", nil)
		p := a.Push("start", map[string]any{"service": "seed"})
		for _, ch := range []*channeltest.Channel{a, b} {
			f := ch.AssertPush("service_starting", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
				m := asMap(p)
				assert.Equal(t, "seed", m["service"])
				assert.Equal(t, "starting", m["action"])
				isInt(t, m["timestamp"])
				resp, _ := m["response"].(map[string]any)
				assert.Equal(t, "Process seed started", resp["message"])
			}))
			assert.Equal(t, channel.FrameBroadcast, f.Kind())
		}
		a.AssertPush("command_result", envelopeOK(channeltest.Subset(map[string]any{"success": true, "message": "Process seed started"})))
		b.RefutePush("command_result", nil, 0)
		p.RefuteReply(0)

		a.Push("stop", map[string]any{"service": "phononmaser"}).RefuteReply(0)
		a.AssertPush("service_stopping", channeltest.Subset(map[string]any{"service": "phononmaser", "action": "stopping"}))
		a.AssertPush("command_result", envelopeOK(nil))
		a.Push("restart", map[string]any{"service": "phononmaser"}).RefuteReply(0)
		b.AssertPush("service_restarting", channeltest.Subset(map[string]any{"action": "restarting"}))
		a.AssertPush("command_result", envelopeOK(nil))
	})
}

func TestServicesGetStatusPushesResultOnly(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ch := s.Join("dashboard:services", nil)
		ch.Push("get_status", map[string]any{"service": "phononmaser"}).RefuteReply(0)
		ch.AssertPush("command_result", envelopeOK(channeltest.Subset(map[string]any{"id": "phononmaser", "status": "running"})))
		assert.Empty(t, pushes(s, "dashboard:services"), "no service_* broadcast")
	})
}

func TestServicesNurvusErrors(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ch := s.Join("dashboard:services", nil)
		h.set(sim.Nurvus, sim.Down)
		ch.Push("stop", map[string]any{"service": "seed"}).RefuteReply(0)
		ch.AssertPush("command_result", envelopeErr("nurvus_error", "Nurvus not running on port 4001"))
		ch.Push("get_status", map[string]any{"service": "seed"})
		ch.AssertPush("command_result", envelopeErr("nurvus_error", "Nurvus not running"))

		h.set(sim.Nurvus, sim.Failing)
		ch.Push("restart", map[string]any{"service": "seed"})
		ch.AssertPush("command_result", envelopeErr("nurvus_error", "Nurvus returned HTTP 500"))
		ch.Push("get_status", map[string]any{"service": "seed"})
		ch.AssertPush("command_result", envelopeErr("nurvus_error", "HTTP 500"))
		assert.Empty(t, pushes(s, "dashboard:services"), "no service_* broadcast on failure")
	})
}

func TestServicesOnlyNewestTaskReports(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ch := s.Join("dashboard:services", nil)
		h.set(sim.Nurvus, sim.Slow)
		ch.Push("stop", map[string]any{"service": "seed"})
		time.Sleep(time.Second)
		ch.Push("get_status", map[string]any{"service": "phononmaser"})
		start := time.Now()
		ch.AssertPush("command_result", envelopeOK(channeltest.Subset(map[string]any{"id": "phononmaser"})))
		assert.Equal(t, sim.DefaultSlowDelay, time.Since(start), "the status took the slow delay")
		assert.Empty(t, pushes(s, "dashboard:services"), "the superseded stop reports nothing")
	})
}

func TestServicesLeaveCancelsSlowCalls(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("dashboard:services", nil)
		h.set(sim.Nurvus, sim.Slow)
		ch.Push("start", map[string]any{"service": "seed"})
		start := time.Now()
		ch.Leave().AssertReply("ok", nil)
		ch.AssertTerminated(channel.ErrLeft)
		assert.Less(t, time.Since(start), time.Second, "Terminate does not wait for the slow delay")
	})
}

func TestServicesTelemetry(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("dashboard:services", nil)
		ch.Push("get_telemetry", map[string]any{}).RefuteReply(0)
		f := ch.AssertPush("telemetry_update", nil)
		m := decode(t, f)
		assert.InDelta(t, float64(time.Now().UnixMilli()), m["timestamp"], 1000, "unix milliseconds")
		services := m["services"].(map[string]any)
		assert.Len(t, services, 4)
		for _, name := range []string{"obs", "twitch", "phononmaser", "seed"} {
			svc := services[name].(map[string]any)
			assert.Equal(t, true, svc["connected"], name)
			assert.Equal(t, true, svc["phoenix_reachable"], name)
		}
		sys := m["system"].(map[string]any)
		assert.Equal(t, "healthy", sys["status"])
		assert.Equal(t, "0.1.0", sys["version"])
		assert.Equal(t, "development", sys["environment"])
		isInt(t, sys["uptime"])
		assert.Equal(t, []any{}, m["overlays"])
		tr := m["transcription"].(map[string]any)
		for _, k := range []string{"timestamp", "total_transcriptions_24h", "confidence", "duration", "trends"} {
			assert.Contains(t, tr, k)
		}
		assert.Subset(t, keys(tr["confidence"]), []string{"average", "min", "max", "distribution"})
		assert.Subset(t, keys(tr["trends"]), []string{"confidence_trend", "hourly_volume", "quality_trend"})

		h.set(sim.Nurvus, sim.Down)
		h.set(sim.OBS, sim.Slow)
		start := time.Now()
		ch.Push("get_telemetry", nil)
		m = decode(t, ch.AssertPush("telemetry_update", nil))
		assert.Equal(t, 5*time.Second, time.Since(start), "bounded by the service timeout")
		services = m["services"].(map[string]any)
		assert.Equal(t, map[string]any{"connected": false, "error": "Service unreachable", "phoenix_reachable": false}, services["seed"])
		assert.Equal(t, map[string]any{"connected": false, "error": "Service status timeout", "phoenix_reachable": false}, services["obs"])
		assert.Equal(t, "degraded", m["system"].(map[string]any)["status"], "3 unreachable or timed out")

		h.set(sim.Nurvus, sim.Up)
		h.set(sim.OBS, sim.Up)
		_, err := h.world.Nurvus.Action(t.Context(), "seed", "stop")
		require.NoError(t, err)
		ch.Push("get_telemetry", nil)
		m = decode(t, ch.AssertPush("telemetry_update", nil))
		assert.Equal(t, map[string]any{"connected": false, "error": "Service not running", "phoenix_reachable": true},
			m["services"].(map[string]any)["seed"])
		assert.Equal(t, "degraded", m["system"].(map[string]any)["status"], "3 of 4 connected")

		_, err = h.world.Nurvus.Action(t.Context(), "phononmaser", "stop")
		require.NoError(t, err)
		h.set(sim.OBS, sim.Failing)
		h.set(sim.Twitch, sim.Down)
		ch.Push("get_telemetry", nil)
		m = decode(t, ch.AssertPush("telemetry_update", nil))
		assert.Equal(t, "Invalid response from service", m["services"].(map[string]any)["obs"].(map[string]any)["error"])
		assert.Equal(t, "unhealthy", m["system"].(map[string]any)["status"], "nothing connected, one unreachable")
	})
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
