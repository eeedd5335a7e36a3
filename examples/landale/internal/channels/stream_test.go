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

// stateShape checks a stream_state payload from the producer.
var stateShape = channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
	m := asMap(p)
	assert.ElementsMatch(t, []string{"current_show", "base", "alerts", "ticker", "timeline", "metadata"}, keys(m))
	assert.ElementsMatch(t, []string{"last_updated", "state_version"}, keys(m["metadata"]))
	assert.NotContains(t, m, "current")
})

var queueShape = channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
	m := asMap(p)
	assert.ElementsMatch(t, []string{"queue", "metrics", "is_processing"}, keys(m))
	assert.ElementsMatch(t, []string{"total_items", "active_items", "pending_items", "average_wait_time", "last_processed"}, keys(m["metrics"]))
	assert.Equal(t, float64(0), m["metrics"].(map[string]any)["active_items"])
})

func TestStreamJoins(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ov, reply := s.TryJoin("stream:overlays", nil)
		require.NotNil(t, ov)
		channeltest.AssertPayload(t, reply.Payload(), channeltest.JSON(`{}`))
		ov.AssertPush("stream_state", stateShape)
		q := s.Join("stream:queue", nil)
		q.AssertPush("queue_state", queueShape)
		s.AssertJoinError("stream:other", nil, channeltest.JSON(`{"reason":"join crashed"}`))
	})
}

func TestStreamFallbacksWhenProducerIsDown(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		h.set(sim.Stream, sim.Down)
		s := h.socket()
		ov := s.Join("stream:overlays", nil)
		fallback := channeltest.Subset(map[string]any{"current_show": "variety", "current": nil, "base": nil,
			"priority_level": "ticker", "alerts": []any{}, "ticker": []any{},
			"metadata": map[string]any{"state_version": 0, "fallback_mode": true}})
		ov.AssertPush("stream_state", fallback)
		q := s.Join("stream:queue", nil)
		q.AssertPush("queue_state", channeltest.JSON(`{"queue":[],"current":null,"metrics":{"total_items":0,
			"active_items":0,"pending_items":0,"average_wait_time":0,"last_processed":null},"is_processing":false,"fallback_mode":true}`))

		ov.Push("request_state", nil).RefuteReply(0)
		ov.AssertPush("stream_state", fallback)
		q.Push("request_queue_state", nil).RefuteReply(0)
		q.AssertPush("queue_state", channeltest.JSON(`{"queue":[],"base":null,"ticker":[],"timeline":[],"alerts":[]}`))

		h.set(sim.Stream, sim.Failing)
		ov.Push("request_state", nil)
		ov.AssertPush("stream_state", fallback)
		h.set(sim.Stream, sim.Slow)
		start := time.Now()
		ov.Push("request_state", nil)
		ov.AssertPush("stream_state", fallback)
		assert.Equal(t, 5*time.Second, time.Since(start), "a slow producer times out into the fallback")
	})
}

func TestStreamRequestsAndPing(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ov := s.Join("stream:overlays", nil)
		ov.AssertPush("stream_state", nil)
		ov.Push("request_state", map[string]any{}).RefuteReply(0)
		ov.AssertPush("stream_state", stateShape)
		q := s.Join("stream:queue", nil)
		q.AssertPush("queue_state", nil)
		q.Push("request_queue_state", map[string]any{}).RefuteReply(0)
		q.AssertPush("queue_state", queueShape)
		for _, ch := range []*channeltest.Channel{ov, q} {
			ch.Push("ping", nil).AssertReply("ok", envelopeOK(channeltest.Subset(map[string]any{"pong": true})))
			ch.Push("debug:event", map[string]any{"type": "x", "data": map[string]any{}}).RefuteReply(0)
			ch.Push("unknown_event", nil).RefuteReply(0)
		}
	})
}

func joinBoth(t *testing.T, h *harness) (ov, ov2, q *channeltest.Channel) {
	t.Helper()
	ov = h.socket().Join("stream:overlays", nil)
	ov2 = h.socket().Join("stream:overlays", nil)
	q = h.socket().Join("stream:queue", nil)
	ov.AssertPush("stream_state", nil)
	ov2.AssertPush("stream_state", nil)
	q.AssertPush("queue_state", nil)
	return ov, ov2, q
}

func TestStreamTakeoverBroadcastsEveryType(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ov, ov2, q := joinBoth(t, h)
		ov.Push("takeover", map[string]any{"type": "screen-cover"}).AssertReply("ok",
			envelopeOK(map[string]any{"operation": "takeover_sent", "type": "screen-cover"}))
		for _, ch := range []*channeltest.Channel{ov, ov2, q} {
			f := ch.AssertPush("takeover", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
				m := asMap(p)
				assert.Equal(t, "screen-cover", m["type"])
				assert.Nil(t, m["message"])
				assert.Contains(t, m, "message")
				assert.Equal(t, float64(10000), m["duration"])
				assert.Regexp(t, isoRe, m["timestamp"])
			}))
			assert.Equal(t, ch.JoinRef(), f.JoinRef(), "a per-channel push")
		}
		for _, typ := range []string{"technical-difficulties", "please-stand-by", "custom"} {
			ov.Push("takeover", map[string]any{"type": typ, "message": "BRB", "duration": 30000}).AssertReply("ok",
				envelopeOK(map[string]any{"operation": "takeover_sent", "type": typ}))
			for _, ch := range []*channeltest.Channel{ov, ov2, q} {
				ch.AssertPush("takeover", channeltest.Subset(map[string]any{"type": typ, "message": "BRB", "duration": 30000}))
			}
		}
	})
}

func TestStreamTakeoverValidation(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("stream:overlays", nil)
		cases := []struct {
			payload map[string]any
			message string
		}{
			{map[string]any{"message": "x"}, "Missing required field: type"},
			{map[string]any{"invalid": "payload"}, "Missing required field: type"},
			{map[string]any{}, "Missing required field: type"},
			{map[string]any{"type": ""}, "Missing required field: type"},
			{map[string]any{"type": "custom"}, "Missing required field: message"},
			{map[string]any{"type": "technical-difficulties"}, "Missing required field: message"},
			{map[string]any{"type": "custom", "message": "x", "duration": -5}, "Field 'duration' must be a positive integer"},
			{map[string]any{"type": "custom", "message": "x", "duration": "long"}, "Field 'duration' must be a positive integer"},
		}
		for _, c := range cases {
			ch.Push("takeover", c.payload).AssertReply("error", envelopeErr("validation_failed", c.message))
		}
		ch.RefutePush("takeover", nil, 0)
	})
}

func TestStreamTakeoverClear(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ov, ov2, q := joinBoth(t, h)
		ov.Push("takeover_clear", map[string]any{}).AssertReply("ok", envelopeOK(map[string]any{"operation": "takeover_cleared"}))
		for _, ch := range []*channeltest.Channel{ov, ov2, q} {
			ch.AssertPush("takeover_clear", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
				m := asMap(p)
				assert.Regexp(t, isoRe, m["timestamp"])
				assert.Len(t, m, 1)
			}))
		}
	})
}

func TestStreamForceContentAndExpiry(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ov, _, q := joinBoth(t, h)
		ov.Push("force_content", map[string]any{"type": "manual_override", "data": map[string]any{"message": "x"}, "duration": 5000}).
			AssertReply("ok", envelopeOK(map[string]any{"operation": "override_sent", "type": "manual_override"}))
		withAlert := channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
			alerts := asMap(p)["alerts"].([]any)
			require.Len(t, alerts, 1)
			a := alerts[0].(map[string]any)
			assert.Equal(t, "manual_override", a["type"])
			assert.Equal(t, float64(100), a["priority"])
			assert.Equal(t, float64(5000), a["duration"])
			assert.Regexp(t, `^[0-9a-f]{16}$`, a["id"])
			assert.Equal(t, map[string]any{"type": "manual_override", "message": "x"}, a["data"])
			assert.Regexp(t, isoRe, a["started_at"])
		})
		ov.AssertPush("stream_state", withAlert)
		q.AssertPush("queue_state", channeltest.Subset(map[string]any{"is_processing": true,
			"metrics": map[string]any{"total_items": 1, "pending_items": 1}}))

		time.Sleep(5*time.Second - time.Millisecond)
		ov.RefutePush("stream_state", channeltest.Subset(map[string]any{"alerts": []any{}}), time.Millisecond/2)
		time.Sleep(time.Millisecond)
		ov.AssertPush("stream_state", channeltest.Subset(map[string]any{"alerts": []any{}}))
		q.AssertPush("queue_state", channeltest.Subset(map[string]any{"queue": []any{}, "is_processing": false}))

		for _, p := range []map[string]any{
			{"data": map[string]any{}, "duration": 5000},
			{"type": "x", "duration": 5000},
			{"type": "x", "data": map[string]any{}},
			{"type": "x", "data": "notamap", "duration": 5000},
		} {
			ov.Push("force_content", p).RefuteReply(0)
		}
	})
}

func TestStreamRemoveQueueItem(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ov, _, q := joinBoth(t, h)
		q.Push("remove_queue_item", map[string]any{"id": "abc"}).AssertReply("ok",
			envelopeOK(map[string]any{"operation": "item_removed", "id": "abc"}))
		ov.AssertPush("stream_state", stateShape)
		q.AssertPush("queue_state", queueShape)
		q.Push("remove_queue_item", map[string]any{}).AssertReply("error", envelopeErr("validation_failed", "Missing required field: id"))
		q.Push("remove_queue_item", map[string]any{"id": ""}).AssertReply("error", envelopeErr("validation_failed", "Missing required field: id"))
		h.set(sim.Stream, sim.Down)
		q.Push("remove_queue_item", map[string]any{"id": "abc"}).AssertReply("error",
			envelopeErr("stream_producer_not_started", "StreamProducer service is not started"))
		ov.Push("force_content", map[string]any{"type": "x", "data": map[string]any{}, "duration": 1000}).AssertReply("error",
			envelopeErr("stream_producer_not_started", "StreamProducer service is not started"))
		h.set(sim.Stream, sim.Failing)
		q.Push("remove_queue_item", map[string]any{"id": "abc"}).AssertReply("error",
			envelopeErr("stream_producer_unavailable", "StreamProducer service is not available"))
	})
}

func TestStreamChannelInfoCommands(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("stream:overlays", nil)
		ch.Push("update_channel_info", map[string]any{"nope": 1}).AssertReply("error", envelopeErr("validation_failed",
			"At least one valid field must be provided: game_id, broadcaster_language, title, delay, tags, branded_content"))
		ch.Push("update_channel_info", map[string]any{"title": nil}).AssertReply("error", envelopeErr("validation_failed",
			"At least one valid field must be provided: game_id, broadcaster_language, title, delay, tags, branded_content"))
		ch.Push("update_channel_info", map[string]any{"title": "New title", "tags": []any{"Go"}}).AssertReply("ok",
			envelopeOK(map[string]any{"operation": "channel_info_updated"}))
		ch.Push("get_channel_info", nil).AssertReply("ok", envelopeOK(channeltest.Subset(map[string]any{
			"broadcaster_id": sim.BroadcasterID, "title": "New title", "tags": []any{"Go"}})))
		ch.Push("update_channel_info", map[string]any{"delay": -1}).AssertReply("error",
			envelopeErr("api_error", "Twitch API error 400: The value in delay is not valid."))
		ch.Push("search_categories", map[string]any{"query": "software"}).AssertReply("ok", envelopeOK(channeltest.Check(
			func(t *channeltest.CollectT, p channel.Payload) {
				var list []map[string]any
				require.NoError(t, decodeInto(p, &list))
				require.Len(t, list, 2)
				assert.Equal(t, "509658", list[0]["id"])
			})))
		ch.Push("search_categories", map[string]any{}).RefuteReply(0)
		h.set(sim.Twitch, sim.Down)
		ch.Push("get_channel_info", nil).AssertReply("error", envelopeErr("api_error", "Twitch EventSub not connected"))
		ch.Push("update_channel_info", map[string]any{"title": "x"}).AssertReply("error", envelopeErr("api_error", "Twitch EventSub not connected"))
	})
}

func TestStreamRelaysProducerEvents(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ov, _, q := joinBoth(t, h)
		// A channel.update to an IronMON category changes the show.
		ov.Push("update_channel_info", map[string]any{"game_id": "490100"}).AssertReply("ok", nil)
		for _, ch := range []*channeltest.Channel{ov, q} {
			ch.AssertPush("show_changed", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
				m := asMap(p)
				assert.Equal(t, "ironmon", m["show"])
				assert.Equal(t, map[string]any{"id": "490100", "name": "Pokémon FireRed/LeafGreen"}, m["game"])
				assert.Contains(t, m, "title")
				assert.Regexp(t, isoRe, m["changed_at"])
			}))
		}
		ov.AssertPush("stream_state", channeltest.Subset(map[string]any{"current_show": "ironmon"}))
	})
}

func TestStreamContentUpdateAndStateOnEveryEvent(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ov := s.Join("stream:overlays", nil)
		q := s.Join("stream:queue", nil)
		ov.AssertPush("stream_state", nil)
		q.AssertPush("queue_state", nil)
		h.publish("channel.chat.message", chat)
		ov.AssertPush("stream_state", stateShape)
		q.AssertPush("queue_state", queueShape)
		for _, ch := range []*channeltest.Channel{ov, q} {
			ch.AssertPush("content_update", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
				m := asMap(p)
				assert.Equal(t, "emote_increment", m["type"])
				assert.Equal(t, map[string]any{"emotes": []any{}, "native_emotes": []any{"avalonHype"}, "username": "Viewer"}, m["data"])
				assert.Regexp(t, isoRe, m["timestamp"])
			}))
		}
		h.publish("obs.scene_changed", map[string]any{"scene_name": "BRB"})
		ov.AssertPush("stream_state", stateShape)
		q.AssertPush("queue_state", queueShape)
	})
}
