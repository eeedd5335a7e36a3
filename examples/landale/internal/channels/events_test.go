package channels_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
)

// sample is one event of every kind the filters tell apart, with the push
// name events:all gives it.
var sample = []struct {
	ev   events.Event
	name string
}{
	{events.Event{"type": "channel.chat.message"}, "chat_message"},
	{events.Event{"type": "channel.chat.clear"}, "chat_clear"},
	{events.Event{"type": "channel.chat.message_delete"}, "message_delete"},
	{events.Event{"type": "channel.chat.notification"}, "twitch_event"},
	{events.Event{"type": "channel.follow"}, "follower"},
	{events.Event{"type": "channel.subscribe"}, "subscription"},
	{events.Event{"type": "channel.subscription.gift"}, "gift_subscription"},
	{events.Event{"type": "channel.cheer"}, "cheer"},
	{events.Event{"type": "channel.update"}, "channel_update"},
	{events.Event{"type": "channel.raid"}, "twitch_event"},
	{events.Event{"type": "channel.goal.begin"}, "twitch_event"},
	{events.Event{"type": "stream.online"}, "twitch_event"},
	{events.Event{"type": "stream.offline"}, "twitch_event"},
	{events.Event{"type": "obs.stream_started"}, "obs_event"},
	{events.Event{"type": "system.service_started"}, "system_event"},
	{events.Event{"type": "rainwave.update"}, "rainwave_event"},
	{events.Event{"type": "ironmon.checkpoint"}, "ironmon_event"},
	{events.Event{"type": "stream.takeover_cleared"}, "stream_event"},
}

// received joins topic with params, publishes the sample (with the stream
// producer down so that it adds no state updates) and returns the types
// pushed, paired with their push names.
func received(t *testing.T, h *harness, topic string, params map[string]any) [][2]string {
	t.Helper()
	h.set("stream", "down")
	s := h.socket()
	s.Join(topic, params)
	for _, x := range sample {
		h.publishRaw(x.ev)
	}
	var out [][2]string
	for _, f := range s.Pending() {
		if f.Kind() == channel.FramePush {
			out = append(out, [2]string{asMap(f.Payload())["type"].(string), f.Event()})
		}
	}
	return out
}

func all() [][2]string {
	out := make([][2]string, 0, len(sample))
	for _, x := range sample {
		out = append(out, [2]string{x.ev.Type(), x.name})
	}
	return out
}

func only(types ...string) [][2]string {
	var out [][2]string
	for _, x := range all() {
		for _, t := range types {
			if x[0] == t {
				out = append(out, x)
			}
		}
	}
	return out
}

func TestEventsJoinPingAndNoReply(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ch, reply := s.TryJoin("events:anything", nil)
		require.NotNil(t, ch)
		channeltest.AssertPayload(t, reply.Payload(), channeltest.JSON(`{}`))
		assert.Empty(t, pushes(s, "events:anything"))
		ch.Push("ping", map[string]any{"x": 1}).AssertReply("ok", envelopeOK(channeltest.Subset(map[string]any{"pong": true})))
		ch.Push("totally_unknown_command", map[string]any{"data": "test"}).RefuteReply(0)
	})
}

func TestEventsAllMapsEveryEventName(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		assert.Equal(t, all(), received(t, h, "events:all", nil))
	})
}

func TestEventsTopicFilters(t *testing.T) {
	cases := map[string][][2]string{
		"twitch": only("channel.chat.message", "channel.chat.clear", "channel.chat.message_delete", "channel.chat.notification",
			"channel.follow", "channel.subscribe", "channel.subscription.gift", "channel.cheer", "channel.update",
			"channel.raid", "channel.goal.begin", "stream.online", "stream.offline"),
		"chat":         only("channel.chat.message", "channel.chat.clear", "channel.chat.message_delete", "channel.chat.notification"),
		"interactions": only("channel.follow", "channel.subscribe", "channel.subscription.gift", "channel.cheer"),
		"goals":        only("channel.goal.begin"),
		"dashboard": only("channel.update", "stream.online", "stream.offline", "obs.stream_started",
			"system.service_started", "rainwave.update", "ironmon.checkpoint"),
		"obs":      only("obs.stream_started"),
		"system":   only("system.service_started"),
		"ironmon":  only("ironmon.checkpoint"),
		"rainwave": only("rainwave.update"),
		"music":    only("rainwave.update"),
		"stream":   only("stream.takeover_cleared"),
		"general":  nil,
	}
	for filter, want := range cases {
		t.Run(filter, func(t *testing.T) {
			run(t, func(t *testing.T, h *harness) {
				assert.Equal(t, want, received(t, h, "events:"+filter, nil))
			})
		})
	}
}

func TestEventsPayloadIsTheNormalizedEvent(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("events:all", nil)
		e := h.publish("channel.follow", follow)
		f := ch.AssertPush("follower", nil)
		channeltest.AssertPayload(t, f.Payload(), channeltest.Value(e))
		m := decode(t, f)
		for _, k := range []string{"id", "type", "timestamp", "correlation_id", "source", "source_id", "raw_type"} {
			assert.Contains(t, m, k)
		}
		assert.Regexp(t, isoRe, m["timestamp"])
		assert.Regexp(t, `^[0-9a-f]{8}$`, m["correlation_id"])
	})
}

func TestEventsClientFilterInJoinParams(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		got := received(t, h, "events:all", map[string]any{"sources": []any{"twitch", "obs"},
			"type_prefixes": []any{"channel.chat."}, "types": []any{"obs.stream_started"}})
		assert.Equal(t, only("channel.chat.message", "channel.chat.clear", "channel.chat.message_delete",
			"channel.chat.notification", "obs.stream_started"), got)
	})
	run(t, func(t *testing.T, h *harness) {
		got := received(t, h, "events:dashboard", map[string]any{"filter": map[string]any{"sources": []any{"obs"}}})
		assert.Equal(t, only("obs.stream_started"), got, "nested under filter, and after the topic filter")
	})
}

func TestEventsFilterEvent(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		ch := s.Join("events:all", nil)
		ch.Push("filter", map[string]any{"types": []any{"channel.follow"}}).AssertReply("ok", envelopeOK(map[string]any{
			"topic_filter": "all", "batch": false,
			"filter": map[string]any{"sources": []any{}, "types": []any{"channel.follow"}, "type_prefixes": []any{}},
		}))
		h.publish("channel.cheer", cheer)
		h.publish("channel.follow", follow)
		assert.Equal(t, []string{"follower"}, pushes(s, "events:all"))
		ch.AssertPush("follower", nil)

		ch.Push("filter", map[string]any{"sources": []any{"myspace"}}).AssertReply("error",
			envelopeErr("invalid_filter", `sources: unknown source "myspace" (want twitch, obs, ironmon, rainwave, system, stream)`))
		ch.Push("filter", map[string]any{"types": "channel.follow"}).AssertReply("error",
			envelopeErr("invalid_filter", "types must be a list of strings"))
		ch.Push("filter", map[string]any{"type_prefixes": []any{""}}).AssertReply("error",
			envelopeErr("invalid_filter", "type_prefixes must be a list of non-empty strings"))

		ch.Push("filter", map[string]any{}).AssertReply("ok", envelopeOK(nil))
		h.publish("channel.cheer", cheer)
		ch.AssertPush("cheer", nil)
	})
}

func TestEventsInvalidFilterRefusesJoin(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		h.socket().AssertJoinError("events:all", map[string]any{"sources": []any{1}},
			channeltest.JSON(`{"reason":"invalid filter: sources must be a list of non-empty strings"}`))
		h.socket().AssertJoinError("events:all", map[string]any{"batch": true, "batch_size": 0},
			channeltest.JSON(`{"reason":"invalid batch options: batch_size must be an integer between 1 and 500"}`))
	})
}

func TestEventsBatch(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		h.set("stream", "down")
		s := h.socket()
		ch := s.Join("events:all", map[string]any{"batch": true, "batch_size": 3})
		for i := 0; i < 4; i++ {
			h.publish("channel.follow", follow)
		}
		f := ch.AssertPush("event_batch", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
			m := asMap(p)
			assert.Equal(t, float64(3), m["count"])
			assert.Len(t, m["events"], 3)
			isInt(t, m["timestamp"])
		}))
		first := decode(t, f)["events"].([]any)[0].(map[string]any)
		assert.Equal(t, "channel.follow", first["type"])
		assert.Empty(t, pushes(s, "events:all"), "the 4th waits for the interval")
		time.Sleep(100 * time.Millisecond)
		ch.AssertPush("event_batch", channeltest.Subset(map[string]any{"count": 1}))
		ch.RefutePush("follower", nil, 0)
		time.Sleep(time.Second)
		assert.Empty(t, pushes(s, "events:all"), "an empty batch is never pushed")
		ch.Push("filter", map[string]any{}).AssertReply("ok", envelopeOK(channeltest.Subset(map[string]any{"batch": true})))

		h.publish("channel.follow", follow)
		leave := ch.Leave()
		synctest.Wait()
		var order []string
		for _, f := range s.Pending() {
			order = append(order, f.Event())
		}
		assert.Equal(t, []string{"event_batch", "phx_reply", "phx_close"}, order, "what is buffered is pushed before the leave completes")
		ch.AssertPush("event_batch", channeltest.Subset(map[string]any{"count": 1}))
		leave.AssertReply("ok", nil)
		ch.AssertTerminated(channel.ErrLeft)
	})
}

func TestEventsBatchOrderAndDefaultInterval(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		h.set("stream", "down")
		ch := h.socket().Join("events:chat", map[string]any{"batch": true})
		for i := 0; i < 5; i++ {
			c := merge(chat, map[string]any{"message_id": string(rune('a' + i))})
			h.publish("channel.chat.message", c)
		}
		h.publish("channel.follow", follow) // filtered out by the topic
		start := time.Now()
		f := ch.AssertPush("event_batch", channeltest.Subset(map[string]any{"count": 5}))
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		var ids []any
		for _, e := range decode(t, f)["events"].([]any) {
			ids = append(ids, e.(map[string]any)["id"])
		}
		assert.Equal(t, []any{"a", "b", "c", "d", "e"}, ids, "FIFO")
	})
}
