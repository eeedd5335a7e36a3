package events

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/pubsub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	hex8   = regexp.MustCompile(`^[0-9a-f]{8}$`)
	evtID  = regexp.MustCompile(`^evt_[0-9a-f]{24}$`)
	isoUS  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)
	fixNow = time.Date(2025, 8, 25, 16, 2, 11, 482913000, time.UTC)
)

// jsonRound encodes and decodes e, as subscribers see it.
func jsonRound(t *testing.T, e Event) map[string]any {
	t.Helper()
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func TestSourceOf(t *testing.T) {
	cases := map[string]string{
		"stream.state_updated": "stream", "stream.show_changed": "stream", "stream.interrupt_removed": "stream",
		"stream.emote_increment": "stream", "stream.takeover_started": "stream", "stream.takeover_cleared": "stream",
		"stream.goals_updated": "stream", "stream.online": "twitch", "stream.offline": "twitch",
		"channel.follow": "twitch", "user.update": "twitch", "obs.scene_changed": "obs",
		"ironmon.checkpoint": "ironmon", "rainwave.update": "rainwave", "system.health_check": "system",
		"twitch.service_status": "twitch", "something.else": "twitch",
	}
	for typ, want := range cases {
		assert.Equal(t, want, SourceOf(typ), typ)
	}
}

func TestNormalizeFollowFixture(t *testing.T) {
	e := Normalize("channel.follow", map[string]any{
		"user_id": "789012", "user_login": "follower", "user_name": "Follower",
		"broadcaster_user_id": "123456", "broadcaster_user_login": "streamer", "broadcaster_user_name": "Streamer",
		"followed_at": "2024-01-01T12:00:00Z", "foo": "dropped",
	}, fixNow)
	got := jsonRound(t, e)
	assert.Regexp(t, evtID, got["id"])
	assert.Regexp(t, hex8, got["correlation_id"])
	delete(got, "id")
	delete(got, "correlation_id")
	assert.Equal(t, map[string]any{
		"type": "channel.follow", "timestamp": "2025-08-25T16:02:11.482913Z",
		"source": "twitch", "source_id": nil, "raw_type": "channel.follow",
		"user_id": "789012", "user_login": "follower", "user_name": "Follower",
		"broadcaster_user_id": "123456", "broadcaster_user_login": "streamer", "broadcaster_user_name": "Streamer",
		"followed_at": "2024-01-01T12:00:00Z",
	}, got)
}

func TestNormalizeChatMessage(t *testing.T) {
	e := Normalize("channel.chat.message", map[string]any{
		"message_id": "m-1", "broadcaster_user_id": "123456", "broadcaster_user_login": "streamer",
		"broadcaster_user_name": "Streamer", "chatter_user_id": "42", "chatter_user_login": "viewer",
		"chatter_user_name": "Viewer", "color": "#FF0000", "message_type": "text",
		"message": map[string]any{"text": "Hello avalonHype Kappa", "fragments": []any{
			map[string]any{"type": "text", "text": "Hello "},
			map[string]any{"type": "emote", "text": "avalonHype", "emote": map[string]any{"id": "1"}},
			map[string]any{"type": "emote", "text": "Kappa", "emote": map[string]any{"id": "2"}},
		}},
		"badges": []any{map[string]any{"set_id": "subscriber", "id": "12", "info": "12", "extra": 1}},
	}, fixNow)
	got := jsonRound(t, e)
	assert.Equal(t, "m-1", got["id"])
	assert.Equal(t, "m-1", got["source_id"])
	assert.Equal(t, "Hello avalonHype Kappa", got["message"])
	assert.Equal(t, []any{"Kappa"}, got["emotes"])
	assert.Equal(t, []any{"avalonHype"}, got["native_emotes"])
	assert.Equal(t, []any{map[string]any{"set_id": "subscriber", "id": "12", "info": "12"}}, got["badges"])
	assert.Equal(t, "viewer", got["user_login"])
	assert.Nil(t, got["cheer_bits"])
	assert.Nil(t, got["reply_parent_message_id"])
	assert.Contains(t, got, "reply_thread_user_name")
	assert.Equal(t, []any{}, got["source_badges"])
	assert.Len(t, got["fragments"], 3)
}

func TestNormalizeSpecifics(t *testing.T) {
	t.Run("subscribe defaults is_gift", func(t *testing.T) {
		e := Normalize("channel.subscribe", map[string]any{"user_id": "1", "tier": "1000"}, fixNow)
		assert.Equal(t, false, e["is_gift"])
		assert.Equal(t, "1000", e["tier"])
	})
	t.Run("obs scene accepts sceneName", func(t *testing.T) {
		e := Normalize("obs.scene_changed", map[string]any{"sceneName": "Coding", "previous_scene": "Starting", "session_id": "default"}, fixNow)
		assert.Equal(t, "Coding", e["scene_name"])
		assert.Equal(t, "obs", e["source"])
	})
	t.Run("stream started defaults", func(t *testing.T) {
		e := Normalize("obs.stream_started", map[string]any{"outputState": "OBS_WEBSOCKET_OUTPUT_STARTED"}, fixNow)
		assert.Equal(t, "active", e["stream_status"])
		assert.Equal(t, true, e["output_active"])
		assert.Equal(t, "OBS_WEBSOCKET_OUTPUT_STARTED", e["output_state"])
	})
	t.Run("rainwave update reads current_song", func(t *testing.T) {
		e := Normalize("rainwave.update", map[string]any{"station_id": 2, "station_name": "Covers", "listening": true,
			"enabled": true, "current_song": map[string]any{"id": 123, "title": "T", "artist": "A", "album": "B"}}, fixNow)
		assert.Equal(t, 123, e["song_id"])
		assert.Equal(t, "T", e["song_title"])
		assert.Equal(t, true, e["enabled"])
	})
	t.Run("health check reads details", func(t *testing.T) {
		e := Normalize("system.health_check", map[string]any{"service": "phononmaser", "status": "healthy",
			"details": map[string]any{"checks_passed": 5, "memory_usage": 12.5}}, fixNow)
		assert.Equal(t, "phononmaser", e["service_name"])
		assert.Equal(t, "healthy", e["health_status"])
		assert.Equal(t, 5, e["checks_passed"])
		assert.Nil(t, e["cpu_usage"])
	})
	t.Run("goal keeps its type and exposes goal_type", func(t *testing.T) {
		e := Normalize("channel.goal.begin", map[string]any{"id": "g1", "type": "follow", "target_amount": 10}, fixNow)
		assert.Equal(t, "channel.goal.begin", e["type"])
		assert.Equal(t, "follow", e["goal_type"])
		assert.Equal(t, 0, e["current_amount"])
		assert.Equal(t, "g1", e["id"])
	})
	t.Run("unknown types are double wrapped", func(t *testing.T) {
		in := map[string]any{"a": 1}
		e := Normalize("obs.stats_updated", in, fixNow)
		assert.Equal(t, map[string]any{"raw_data": in}, e["raw_data"])
		assert.Equal(t, "obs", e["source"])
	})
	t.Run("datetimes keep their precision in UTC", func(t *testing.T) {
		for in, want := range map[string]string{
			"2024-01-01T12:00:00Z":          "2024-01-01T12:00:00Z",
			"2024-01-01T12:00:00.500000Z":   "2024-01-01T12:00:00.500000Z",
			"2024-01-01T12:00:00.123+02:00": "2024-01-01T10:00:00.123Z",
		} {
			e := Normalize("channel.follow", map[string]any{"followed_at": in}, fixNow)
			assert.Equal(t, want, e["followed_at"], in)
		}
	})
	t.Run("invalid datetimes become null", func(t *testing.T) {
		e := Normalize("channel.follow", map[string]any{"followed_at": "yesterday"}, fixNow)
		assert.Contains(t, e, "followed_at")
		assert.Nil(t, e["followed_at"])
	})
	t.Run("takeover reads timestamp", func(t *testing.T) {
		e := Normalize("stream.takeover_started", map[string]any{"takeover_type": "custom", "message": "BRB",
			"duration": 30000, "timestamp": "2025-01-01T00:00:00.000001Z"}, fixNow)
		assert.Equal(t, "stream", e["source"])
		assert.Equal(t, "2025-01-01T00:00:00.000001Z", e["takeover_timestamp"])
		assert.Regexp(t, isoUS, e["timestamp"])
	})
}

func TestValidate(t *testing.T) {
	follow := func() map[string]any {
		return map[string]any{"user_id": "1", "user_login": "a_b", "broadcaster_user_id": "2", "broadcaster_user_login": "s"}
	}
	require.NoError(t, Validate("channel.follow", follow()))

	cases := []struct {
		name, typ, field string
		data             func() map[string]any
	}{
		{"missing login", "channel.follow", "user_login", func() map[string]any { m := follow(); delete(m, "user_login"); return m }},
		{"blank login", "channel.follow", "user_login", func() map[string]any { m := follow(); m["user_login"] = "  "; return m }},
		{"bad login", "channel.follow", "user_login", func() map[string]any { m := follow(); m["user_login"] = "no spaces!"; return m }},
		{"non numeric id", "channel.follow", "user_id", func() map[string]any { m := follow(); m["user_id"] = "abc"; return m }},
		{"bad tier", "channel.subscribe", "tier", func() map[string]any { m := follow(); m["tier"] = "4000"; return m }},
		{"zero bits", "channel.cheer", "bits", func() map[string]any {
			return map[string]any{"broadcaster_user_id": "2", "broadcaster_user_login": "s", "bits": 0}
		}},
		{"chat text missing", "channel.chat.message", "message.text", func() map[string]any {
			return map[string]any{"message_id": "m", "broadcaster_user_id": "2", "chatter_user_id": "3", "message": map[string]any{}}
		}},
		{"chat text too long", "channel.chat.message", "message.text", func() map[string]any {
			return map[string]any{"message_id": "m", "broadcaster_user_id": "2", "chatter_user_id": "3",
				"message": map[string]any{"text": strings.Repeat("x", 501)}}
		}},
		{"control chars", "channel.follow", "user_name", func() map[string]any { m := follow(); m["user_name"] = "a\x01"; return m }},
		{"takeover duration", "stream.takeover_started", "duration", func() map[string]any {
			return map[string]any{"takeover_type": "custom", "duration": -1}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(c.typ, c.data())
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, c.field, ve.Field)
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
	t.Run("unknown types only have size and key limits", func(t *testing.T) {
		assert.NoError(t, Validate("custom.thing", map[string]any{"x": 1}))
		big := map[string]any{}
		for i := 0; i < 51; i++ {
			big[strings.Repeat("k", i+1)] = i
		}
		assert.Error(t, Validate("custom.thing", big))
		assert.Error(t, Validate("custom.thing", map[string]any{"x": strings.Repeat("y", MaxDataBytes)}))
	})
}

func TestComplete(t *testing.T) {
	e, err := Complete(Event{"type": "channel.follow", "user_login": "x"}, fixNow)
	require.NoError(t, err)
	assert.Regexp(t, evtID, e["id"])
	assert.Equal(t, "2025-08-25T16:02:11.482913Z", e["timestamp"])
	assert.Regexp(t, hex8, e["correlation_id"])
	assert.Equal(t, "twitch", e["source"])
	assert.Equal(t, "channel.follow", e["raw_type"])
	assert.Contains(t, e, "source_id")
	assert.Equal(t, "x", e["user_login"])

	kept, err := Complete(Event{"type": "obs.scene_changed", "id": "mine", "timestamp": "2024-01-01T00:00:00Z",
		"correlation_id": "abcd1234", "source": "obs"}, fixNow)
	require.NoError(t, err)
	assert.Equal(t, "mine", kept["id"])
	assert.Equal(t, "2024-01-01T00:00:00Z", kept["timestamp"])
	assert.Equal(t, "abcd1234", kept["correlation_id"])

	bad := map[string]Event{
		"type":           {"user_login": "x"},
		"source":         {"type": "x.y", "source": "myspace"},
		"timestamp":      {"type": "x.y", "timestamp": "last tuesday"},
		"id":             {"type": "x.y", "id": 7},
		"correlation_id": {"type": "x.y", "correlation_id": ""},
	}
	for field, in := range bad {
		_, err := Complete(in, fixNow)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, field)
		assert.Equal(t, field, ve.Field)
	}
	_, err = Complete(Event{"type": 3}, fixNow)
	assert.ErrorContains(t, err, "type must be a string")
}

type recorder struct {
	mu   sync.Mutex
	msgs []*pubsub.Message
}

func (r *recorder) Deliver(m *pubsub.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func TestBusPublishesOnBothTopics(t *testing.T) {
	ps := pubsub.NewMemory(nil)
	defer ps.Close()
	ctx := context.Background()
	var order []string
	var mu sync.Mutex
	for _, topic := range []string{TopicEvents, TopicDashboard} {
		f := pubsub.SubscriberFunc(func(m *pubsub.Message) {
			mu.Lock()
			order = append(order, m.Topic)
			mu.Unlock()
		})
		require.NoError(t, ps.Subscribe(ctx, topic, &f))
	}
	rec := &recorder{}
	require.NoError(t, ps.Subscribe(ctx, TopicEvents, rec))
	bus := NewBus(ps, func() time.Time { return fixNow })

	e, err := bus.Publish(ctx, "obs.scene_changed", map[string]any{"scene_name": "Coding", "previous_scene": "Starting", "session_id": "default"})
	require.NoError(t, err)
	assert.Equal(t, []string{TopicEvents, TopicDashboard}, order)
	require.Len(t, rec.msgs, 1)
	h, ok := DecodeHeader(rec.msgs[0])
	require.True(t, ok)
	assert.Equal(t, Header{Type: "obs.scene_changed", Source: "obs"}, h)
	got, ok := Decode(rec.msgs[0])
	require.True(t, ok)
	assert.Equal(t, e["id"], got["id"])

	_, err = bus.Publish(ctx, "channel.follow", map[string]any{})
	assert.True(t, errors.Is(err, ErrInvalid))
	assert.Len(t, rec.msgs, 1, "an invalid event is not published")
	assert.Equal(t, uint64(1), bus.Published())

	_, ok = DecodeHeader(&pubsub.Message{Event: "other", Payload: []byte(`{"type":"x"}`)})
	assert.False(t, ok)
}

func TestBusRecentNewestFirst(t *testing.T) {
	ps := pubsub.NewMemory(nil)
	defer ps.Close()
	bus := NewBus(ps, nil)
	for i := 0; i < RecentSize+5; i++ {
		require.NoError(t, bus.PublishEvent(context.Background(), Event{"type": "x.y", "n": i}))
	}
	got := bus.Recent(3)
	require.Len(t, got, 3)
	assert.Equal(t, []any{RecentSize + 4, RecentSize + 3, RecentSize + 2}, []any{got[0]["n"], got[1]["n"], got[2]["n"]})
	assert.Len(t, bus.Recent(0), RecentSize)
	assert.Equal(t, 5, bus.Recent(0)[RecentSize-1]["n"], "the oldest kept")
}
