package sim

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an Emitter that validates, normalizes and keeps events.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
	errs   []error
}

func (r *recorder) Publish(_ context.Context, typ string, data map[string]any) (events.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := events.Validate(typ, data); err != nil {
		r.errs = append(r.errs, err)
		return nil, err
	}
	e := events.Normalize(typ, data, time.Now())
	r.events = append(r.events, e)
	return e, nil
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.events))
	for _, e := range r.events {
		out = append(out, e.Type())
	}
	return out
}

func newWorld() (*World, *recorder) {
	rec := &recorder{}
	return NewWorld(NewController(0), rec, nil), rec
}

func TestControllerModes(t *testing.T) {
	c := NewController(0)
	for _, s := range Services {
		assert.Equal(t, Up, c.Mode(s), s)
	}
	var changes []string
	c.Watch(func(s string, from, to Mode) { changes = append(changes, s+":"+string(from)+">"+string(to)) })
	require.NoError(t, c.Set(OBS, Down))
	require.NoError(t, c.Set(OBS, Down))
	assert.Equal(t, []string{"obs:up>down"}, changes, "watchers see changes only")
	assert.ErrorIs(t, c.Set("mixer", Down), ErrUnknownService)
	assert.ErrorIs(t, c.Set(OBS, "sideways"), ErrInvalidMode)

	err := c.Gate(context.Background(), OBS)
	var se *ServiceError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, ErrDown)
	assert.Equal(t, "OBS WebSocket not connected", se.Message)
	require.NoError(t, c.Set(OBS, Failing))
	assert.ErrorIs(t, c.Gate(context.Background(), OBS), ErrFailing)
	assert.NoError(t, c.Gate(context.Background(), Twitch))
}

func TestControllerSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(0)
		require.NoError(t, c.Set(Rainwave, Slow))
		start := time.Now()
		require.NoError(t, c.Gate(context.Background(), Rainwave))
		assert.Equal(t, DefaultSlowDelay, time.Since(start))

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start = time.Now()
		assert.ErrorIs(t, c.Gate(ctx, Rainwave), context.DeadlineExceeded)
		assert.Equal(t, 5*time.Second, time.Since(start))
	})
}

func TestParseSpec(t *testing.T) {
	m, err := ParseSpec(" obs=down, nurvus=slow ,")
	require.NoError(t, err)
	assert.Equal(t, map[string]Mode{OBS: Down, Nurvus: Slow}, m)
	empty, err := ParseSpec("")
	require.NoError(t, err)
	assert.Empty(t, empty)
	for _, bad := range []string{"obs", "obs=off", "myspace=down"} {
		_, err := ParseSpec(bad)
		assert.Error(t, err, bad)
	}
	c := NewController(0)
	require.NoError(t, c.Apply(m))
	assert.Equal(t, Down, c.Mode(OBS))
	assert.Equal(t, Slow, c.Mode(Nurvus))
}

func TestOBSStartsIdleOnCoding(t *testing.T) {
	w, rec := newWorld()
	ctx := context.Background()
	st, err := w.OBS.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, true, st["connected"])
	assert.Equal(t, false, st["streaming"])
	assert.Equal(t, false, st["recording"])
	assert.Equal(t, "Coding", st["current_scene"])
	scenes, err := w.OBS.SceneList(ctx)
	require.NoError(t, err)
	assert.Equal(t, "Coding", scenes["currentProgramSceneName"])
	assert.Len(t, scenes["scenes"], len(OBSScenes))
	assert.Empty(t, rec.types(), "the world starts quiet")
}

func TestOBSActions(t *testing.T) {
	w, rec := newWorld()
	ctx := context.Background()
	data, err := w.OBS.StartStreaming(ctx)
	require.NoError(t, err)
	assert.Nil(t, data, "StartStream answers {:ok, nil}")
	assert.True(t, w.OBS.Streaming())
	_, err = w.OBS.StartStreaming(ctx)
	assert.ErrorContains(t, err, "already active")
	_, err = w.OBS.StopRecording(ctx)
	assert.ErrorContains(t, err, "not active")
	_, err = w.OBS.SetCurrentScene(ctx, "BRB")
	require.NoError(t, err)
	_, err = w.OBS.SetCurrentScene(ctx, "Nope")
	assert.EqualError(t, err, "No source was found by the name of `Nope`.")
	assert.Equal(t, []string{"obs.stream_started", "obs.scene_changed"}, rec.types())
	assert.Equal(t, "BRB", rec.events[1]["scene_name"])
	assert.Equal(t, "Coding", rec.events[1]["previous_scene"])

	require.NoError(t, w.Ctl.Set(OBS, Down))
	require.NoError(t, w.Ctl.Set(OBS, Up))
	assert.Equal(t, []string{"obs.stream_started", "obs.scene_changed", "obs.connection_lost", "obs.connection_established"}, rec.types())
}

func TestTwitchChannelInfo(t *testing.T) {
	w, rec := newWorld()
	ctx := context.Background()
	info, err := w.Twitch.ChannelInfo(ctx)
	require.NoError(t, err)
	require.Len(t, info, 1)
	assert.Equal(t, "509660", info[0].(map[string]any)["game_id"], "Just Chatting: Landale's starting show, variety")

	require.NoError(t, w.Twitch.UpdateChannelInfo(ctx, map[string]any{"title": "New title", "game_id": "490100"}))
	require.Equal(t, []string{"channel.update"}, rec.types())
	assert.Equal(t, "490100", rec.events[0]["category_id"])
	assert.Equal(t, "New title", rec.events[0]["title"])

	err = w.Twitch.UpdateChannelInfo(ctx, map[string]any{"game_id": "999"})
	assert.ErrorContains(t, err, "game_id")
	info, _ = w.Twitch.ChannelInfo(ctx)
	assert.Equal(t, "490100", info[0].(map[string]any)["game_id"], "a rejected update changes nothing")

	cats, err := w.Twitch.SearchCategories(ctx, "software")
	require.NoError(t, err)
	assert.Len(t, cats, 2)
}

func TestIronmonData(t *testing.T) {
	w, _ := newWorld()
	ctx := context.Background()
	chs, err := w.Ironmon.ListChallenges(ctx)
	require.NoError(t, err)
	require.Len(t, chs, 10)
	for i, c := range chs {
		id := c.(map[string]any)["id"]
		assert.Equal(t, i+1, id)
		cps, err := w.Ironmon.ListCheckpoints(ctx, i+1)
		require.NoError(t, err)
		assert.NotEmpty(t, cps, "challenge %d has checkpoints", i+1)
	}
	none, err := w.Ironmon.ListCheckpoints(ctx, 11)
	require.NoError(t, err)
	assert.Empty(t, none)

	stats, err := w.Ironmon.CheckpointStats(ctx, 5)
	require.NoError(t, err)
	assert.Equal(t, "BROCK", stats["checkpoint_name"])
	_, err = w.Ironmon.CheckpointStats(ctx, 99)
	assert.EqualError(t, err, "Checkpoint not found")

	res, err := w.Ironmon.RecentResults(ctx, 3)
	require.NoError(t, err)
	assert.Len(t, res, 3)
	assert.Greater(t, res[0].(map[string]any)["id"], res[1].(map[string]any)["id"], "newest first")

	ac, err := w.Ironmon.ActiveChallenge(ctx, 42)
	require.NoError(t, err)
	assert.Equal(t, true, ac["active"])
	_, err = w.Ironmon.ActiveChallenge(ctx, 7)
	assert.Error(t, err)
}

func TestNurvus(t *testing.T) {
	w, rec := newWorld()
	ctx := context.Background()
	st, err := w.Nurvus.Status(ctx, "seed")
	require.NoError(t, err)
	assert.Equal(t, "running", st["status"])

	resp, err := w.Nurvus.Action(ctx, "seed", "stop")
	require.NoError(t, err)
	assert.Equal(t, "Process seed stopped", resp["message"])
	st, _ = w.Nurvus.Status(ctx, "seed")
	assert.Equal(t, "stopped", st["status"])
	_, err = w.Nurvus.Action(ctx, "seed", "restart")
	require.NoError(t, err)
	assert.Equal(t, []string{"system.service_stopped", "system.service_started"}, rec.types())

	var ne *NurvusError
	_, err = w.Nurvus.Status(ctx, "obs")
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, NurvusHTTP, ne.Kind)
	assert.Equal(t, 404, ne.Status)

	require.NoError(t, w.Ctl.Set(Nurvus, Down))
	_, err = w.Nurvus.Action(ctx, "seed", "start")
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, NurvusRefused, ne.Kind)

	require.NoError(t, w.Ctl.Set(Nurvus, Failing))
	_, err = w.Nurvus.Status(ctx, "seed")
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, 500, ne.Status)
}

func TestRainwave(t *testing.T) {
	w, rec := newWorld()
	ctx := context.Background()
	st, err := w.Rainwave.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, st["station_id"])
	require.NoError(t, w.Rainwave.SetStation(ctx, 3.0))
	assert.Error(t, w.Rainwave.SetStation(ctx, "x"))
	assert.Error(t, w.Rainwave.SetStation(ctx, 9.0))
	require.NoError(t, w.Rainwave.SetEnabled(ctx, false))
	assert.Equal(t, []string{"rainwave.station_changed", "rainwave.update", "rainwave.update"}, rec.types())
	assert.Equal(t, false, rec.events[2]["enabled"])
}

func TestDemoEmitsValidVariedEvents(t *testing.T) {
	w, rec := newWorld()
	var said []string
	d := NewDemo(w, &DemoOptions{Seed: 7, Transcribe: func(_ context.Context, s string) { said = append(said, s) }})
	for i := 0; i < 600; i++ {
		d.Step(context.Background())
	}
	assert.Empty(t, rec.errs, "every demo event passes validation")
	seen := map[string]bool{}
	for _, typ := range rec.types() {
		seen[typ] = true
	}
	for _, want := range []string{"channel.chat.message", "channel.follow", "channel.subscribe", "channel.subscription.gift",
		"channel.cheer", "channel.raid", "obs.scene_changed", "rainwave.update"} {
		assert.True(t, seen[want], "demo emits %s", want)
	}
	assert.True(t, seen["channel.goal.begin"] || seen["channel.goal.progress"])
	assert.True(t, seen["ironmon.checkpoint"] || seen["ironmon.seed"])
	assert.NotEmpty(t, said, "demo transcribes")
}

func TestDemoRunsAtRateAndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, rec := newWorld()
		d := NewDemo(w, &DemoOptions{Rate: 10})
		d.Start(context.Background())
		d.Start(context.Background()) // no second goroutine
		assert.True(t, d.Running())
		time.Sleep(time.Second + time.Millisecond)
		d.Stop()
		assert.False(t, d.Running())
		rec.mu.Lock()
		n := len(rec.events) + len(rec.errs)
		rec.mu.Unlock()
		// Scene changes to the current scene and songs while disabled emit nothing.
		assert.InDelta(t, 10, n, 3)
		d.Stop()
	})
}

func TestServiceErrorUnwrap(t *testing.T) {
	err := error(&ServiceError{Service: OBS, Message: "m", Err: ErrDown})
	assert.True(t, errors.Is(err, ErrDown))
	assert.Equal(t, "m", err.Error())
}
