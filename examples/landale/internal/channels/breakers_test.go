package channels_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/examples/landale/internal/channels"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/fallback"
)

// runGuarded runs fn with breakers (5 failures open, 10 s cool-down) that
// are reset when a mode changes, as in the app.
func runGuarded(t *testing.T, fn func(t *testing.T, h *harness, b *channels.Breakers)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		b := channels.NewBreakers(&fallback.BreakerOptions{FailureThreshold: 5, CoolDown: 10 * time.Second})
		h := newHarness(t, func(d *channels.Deps) { d.Breakers = b })
		t.Cleanup(func() { _ = b.Wait(context.Background()) })
		fn(t, h, b)
	})
}

func TestBreakerOpensAndFailsFastWithTheLastError(t *testing.T) {
	runGuarded(t, func(t *testing.T, h *harness, b *channels.Breakers) {
		ch := h.socket().Join("dashboard:main", nil)
		ch.Push("obs:get_status", nil).AssertReply("ok", envelopeOK(nil))
		assert.Equal(t, map[string]string{"obs": "closed"}, b.States())
		h.set(sim.OBS, sim.Down)
		for i := 0; i < 5; i++ {
			ch.Push("obs:get_status", nil).AssertReply("error", envelopeErr("service_error", "OBS WebSocket not connected"))
		}
		assert.Equal(t, "open", b.States()["obs"])
		h.set(sim.OBS, sim.Up) // not reset here: the breaker must find out by itself
		ch.Push("obs:get_status", nil).AssertReply("error", envelopeErr("service_error", "OBS WebSocket not connected"))
		assert.Equal(t, "open", b.States()["obs"], "an open breaker does not call OBS")

		time.Sleep(10 * time.Second)
		assert.Equal(t, "half-open", b.States()["obs"])
		ch.Push("obs:get_status", nil).AssertReply("ok", envelopeOK(channeltest.Subset(map[string]any{"connected": true})))
		assert.Equal(t, "closed", b.States()["obs"], "a successful probe closes it")
	})
}

func TestBreakerCountsTimeoutsAndThenAnswersAtOnce(t *testing.T) {
	runGuarded(t, func(t *testing.T, h *harness, b *channels.Breakers) {
		ch := h.socket().Join("dashboard:main", nil)
		h.set(sim.Rainwave, sim.Slow)
		for i := 0; i < 5; i++ {
			start := time.Now()
			ch.Push("rainwave:get_status", nil).AssertReply("error", envelopeErr("service_timeout", "Service call timed out"))
			assert.Equal(t, 5*time.Second, time.Since(start))
		}
		assert.Equal(t, "open", b.States()["rainwave"])
		start := time.Now()
		ch.Push("rainwave:set_enabled", map[string]any{"enabled": true}).
			AssertReply("error", envelopeErr("service_timeout", "Service call timed out"))
		assert.Zero(t, time.Since(start), "fails fast while open")
	})
}

func TestBreakerIgnoresBadRequests(t *testing.T) {
	runGuarded(t, func(t *testing.T, h *harness, b *channels.Breakers) {
		ch := h.socket().Join("overlay:ironmon", nil)
		for i := 0; i < 8; i++ {
			ch.Push("ironmon:checkpoint_stats", map[string]any{"checkpoint_id": 99}).
				AssertReply("error", channeltest.JSON(`{"message":"Checkpoint not found"}`))
		}
		assert.Equal(t, "closed", b.States()["ironmon"], "not found is not a service failure")
	})
}

func TestBreakerCountsPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := channels.NewBreakers(&fallback.BreakerOptions{FailureThreshold: 2})
		h := newHarness(t, func(d *channels.Deps) {
			w := *d.World
			w.OBS = nil
			d.World = &w
			d.Breakers = b
		})
		ch := h.socket().Join("dashboard:main", nil)
		for i := 0; i < 2; i++ {
			ch.Push("obs:get_status", nil).AssertReply("error", envelopeErr("service_error", ":service_crashed"))
		}
		assert.Equal(t, "open", b.States()["obs"])
		ch.Push("obs:get_status", nil).AssertReply("error", envelopeErr("service_error", ":service_crashed"))
		ch.Push("ping", nil).AssertReply("ok", envelopeOK(nil))
	})
}

func TestBreakerOpenStreamUsesFallbackState(t *testing.T) {
	runGuarded(t, func(t *testing.T, h *harness, b *channels.Breakers) {
		ch := h.socket().Join("stream:overlays", nil)
		ch.AssertPush("stream_state", channeltest.Subset(map[string]any{"metadata": map[string]any{"state_version": 0}}))
		h.set(sim.Stream, sim.Failing)
		for i := 0; i < 6; i++ {
			ch.Push("request_state", nil)
			ch.AssertPush("stream_state", channeltest.Subset(map[string]any{"metadata": map[string]any{"fallback_mode": true}}))
		}
		assert.Equal(t, "open", b.States()["stream"])
		ch.Push("remove_queue_item", map[string]any{"id": "x"}).AssertReply("error",
			envelopeErr("stream_producer_unavailable", "StreamProducer service is not available"))
	})
}

func TestBreakerResetAndNurvus(t *testing.T) {
	runGuarded(t, func(t *testing.T, h *harness, b *channels.Breakers) {
		ch := h.socket().Join("dashboard:services", nil)
		h.set(sim.Nurvus, sim.Down)
		for i := 0; i < 5; i++ {
			ch.Push("get_status", map[string]any{"service": "seed"})
			ch.AssertPush("command_result", envelopeErr("nurvus_error", "Nurvus not running"))
		}
		assert.Equal(t, "open", b.States()["nurvus"])
		b.Reset("nurvus")
		assert.NotContains(t, b.States(), "nurvus")
		h.set(sim.Nurvus, sim.Up)
		ch.Push("get_status", map[string]any{"service": "seed"})
		ch.AssertPush("command_result", envelopeOK(nil))
		assert.Equal(t, "closed", b.States()["nurvus"])
	})
}

func TestIsServiceFailure(t *testing.T) {
	assert.True(t, channels.IsServiceFailure(&sim.ServiceError{Err: sim.ErrDown}))
	assert.True(t, channels.IsServiceFailure(&sim.ServiceError{Err: sim.ErrFailing}))
	assert.True(t, channels.IsServiceFailure(channels.ErrServiceTimeout))
	assert.True(t, channels.IsServiceFailure(channels.ErrServiceCrashed))
	assert.True(t, channels.IsServiceFailure(&sim.NurvusError{Kind: sim.NurvusRefused}))
	assert.True(t, channels.IsServiceFailure(&sim.NurvusError{Kind: sim.NurvusHTTP, Status: 502}))
	assert.False(t, channels.IsServiceFailure(&sim.NurvusError{Kind: sim.NurvusHTTP, Status: 404}))
	assert.False(t, channels.IsServiceFailure(&sim.ServiceError{Reason: "not_found"}))
	assert.False(t, channels.IsServiceFailure(errors.New("other")))
}
