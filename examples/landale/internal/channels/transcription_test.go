package channels_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
)

func TestTranscriptionJoins(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		s.Join("transcription:live", nil).AssertPush("connection_established", channeltest.Check(
			func(t *channeltest.CollectT, p channel.Payload) {
				m := asMap(p)
				assert.Equal(t, "transcription:live", m["type"])
				assert.Equal(t, "connected", m["status"])
				assert.Regexp(t, isoRe, m["timestamp"])
				assert.Len(t, m, 3)
			}))
		s.Join("transcription:session:s1", nil).AssertPush("connection_established",
			channeltest.Subset(map[string]any{"type": "transcription:session", "session_id": "s1", "status": "connected"}))
		s.Join("transcription:session:", nil).AssertPush("connection_established",
			channeltest.Subset(map[string]any{"session_id": ""}))
		s.AssertJoinError("transcription:bogus", nil, channeltest.JSON(
			`{"reason":"Invalid transcription channel. Use 'transcription:live' or 'transcription:session:{session_id}'"}`))
	})
}

func TestTranscriptionPing(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		for topic, typ := range map[string]string{"transcription:live": "live", "transcription:session:s1": "session:s1"} {
			s.Join(topic, nil).Push("ping", map[string]any{"a": 1}).AssertReply("ok", channeltest.Check(
				func(t *channeltest.CollectT, p channel.Payload) {
					m := asMap(p)
					assert.Equal(t, float64(1), m["a"])
					assert.Equal(t, true, m["pong"])
					assert.Regexp(t, isoRe, m["timestamp"], "an ISO string, not an integer")
					assert.Equal(t, typ, m["channel_type"])
				}))
		}
	})
}

func TestTranscriptionSubmitBroadcasts(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		sender := h.socket()
		live := sender.Join("transcription:live", nil)
		other := h.socket()
		s1 := other.Join("transcription:session:s1", nil)
		s2 := other.Join("transcription:session:s2", nil)
		for _, ch := range []*channeltest.Channel{live, s1, s2} {
			ch.AssertPush("connection_established", nil)
		}
		f := live.Push("submit_transcription", map[string]any{"timestamp": "2024-01-01T00:00:00Z", "duration": 1.5,
			"text": "hi", "stream_session_id": "s1"}).AssertReply("ok", nil)
		id := decode(t, f)["transcription_id"].(string)
		assert.Regexp(t, uuidRe, id)
		want := map[string]any{"id": id, "correlation_id": sender.CorrelationID(), "timestamp": "2024-01-01T00:00:00.000000Z",
			"duration": 1.5, "text": "hi", "source_id": nil, "stream_session_id": "s1", "confidence": nil}
		live.AssertPush("new_transcription", want)
		s1.AssertPush("new_transcription", want)
		s2.RefutePush("new_transcription", nil, 0)

		live.Push("submit_transcription", map[string]any{"timestamp": "2024-01-01T00:00:01Z", "duration": 1, "text": "no session"}).
			AssertReply("ok", nil)
		live.AssertPush("new_transcription", channeltest.Subset(map[string]any{"text": "no session", "stream_session_id": nil}))
		s1.RefutePush("new_transcription", nil, 0)
	})
}

func TestTranscriptionValidationErrors(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("transcription:live", nil)
		ch.Push("submit_transcription", map[string]any{"text": "x"}).AssertReply("error", channeltest.JSON(
			`{"errors":[{"field":"duration","messages":["is required"]},{"field":"timestamp","messages":["is required"]}]}`))
		ok := map[string]any{"timestamp": "2024-01-01T00:00:00Z", "duration": 1.0, "text": "x"}
		cases := []struct {
			field, value any
			message      string
		}{
			{"text", "", "is required"},
			{"timestamp", "not-a-timestamp", "must be a valid ISO 8601 datetime"},
			{"duration", -1.0, "must be greater than 0"},
			{"text", strings.Repeat("a", 10001), "is too long (maximum is 10000 characters)"},
			{"confidence", 1.5, "must be between 0.0 and 1.0"},
		}
		for _, c := range cases {
			p := merge(ok, map[string]any{c.field.(string): c.value})
			ch.Push("submit_transcription", p).AssertReply("error", channeltest.Value(map[string]any{
				"errors": []any{map[string]any{"field": c.field, "messages": []any{c.message}}}}))
		}
		f := ch.Push("submit_transcription", map[string]any{"timestamp": "bad", "duration": -1.0, "text": "", "confidence": 2.0}).
			AssertReply("error", nil)
		assert.Len(t, decode(t, f)["errors"], 4)
		ch.RefutePush("new_transcription", nil, 0)
		assert.Empty(t, h.store.Recent(time.Time{}), "nothing stored")
	})
}

func TestTranscriptionHistory(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		live := h.socket().Join("transcription:live", nil)
		now := time.Now()
		var ids []string
		for i, ago := range []time.Duration{10 * time.Minute, 3 * time.Minute, time.Minute, 2 * time.Minute, 0} {
			f := live.Push("submit_transcription", map[string]any{"timestamp": events.FormatTime(now.Add(-ago)),
				"duration": 1.0, "text": "t" + string(rune('0'+i)), "stream_session_id": "s1"}).AssertReply("ok", nil)
			ids = append(ids, decode(t, f)["transcription_id"].(string))
		}
		assert.Len(t, unique(ids), 5, "distinct ids")

		f := live.Push("get_recent", map[string]any{}).AssertReply("ok", nil)
		m := decode(t, f)
		assert.Equal(t, float64(4), m["count"], "the last 5 minutes")
		var texts []any
		for _, x := range m["transcriptions"].([]any) {
			tr := x.(map[string]any)
			texts = append(texts, tr["text"])
			assert.ElementsMatch(t, []string{"id", "timestamp", "duration", "text", "source_id", "stream_session_id", "confidence", "metadata"}, keys(tr))
		}
		assert.Equal(t, []any{"t4", "t2", "t3", "t1"}, texts, "newest first")
		f = live.Push("get_recent", map[string]any{"minutes": 15}).AssertReply("ok", nil)
		assert.Equal(t, float64(5), decode(t, f)["count"])
		live.Push("get_recent", map[string]any{"minutes": "ten"}).AssertReply("error",
			channeltest.JSON(`{"message":"Parameter 'minutes' must be an integer"}`))

		live.Push("get_session_transcriptions", map[string]any{}).AssertReply("error",
			channeltest.JSON(`{"message":"Session transcriptions only available on session channels"}`))
		sess := h.socket().Join("transcription:session:s1", nil)
		f = sess.Push("get_session_transcriptions", map[string]any{"limit": 3}).AssertReply("ok", nil)
		m = decode(t, f)
		assert.Equal(t, "s1", m["session_id"])
		assert.Equal(t, float64(3), m["count"])
		var asc []any
		for _, x := range m["transcriptions"].([]any) {
			asc = append(asc, x.(map[string]any)["text"])
		}
		assert.Equal(t, []any{"t0", "t1", "t3"}, asc, "ascending by timestamp")
	})
}

func TestTranscriptionUnknownCommand(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		ch := h.socket().Join("transcription:live", nil)
		ch.Push("unknown_event", nil).AssertReply("error", channeltest.JSON(`{"message":"Unknown command: unknown_event"}`))
		ch.Push("totally_unknown_command", map[string]any{"data": "test"}).AssertReply("error",
			channeltest.JSON(`{"message":"Unknown command: totally_unknown_command"}`))
	})
}

func unique(list []string) map[string]bool {
	out := map[string]bool{}
	for _, s := range list {
		out[s] = true
	}
	return out
}

func TestEveryChannelSurvivesUnknownTraffic(t *testing.T) {
	run(t, func(t *testing.T, h *harness) {
		s := h.socket()
		topics := []string{"dashboard:main", "dashboard:services", "events:all", "overlay:obs", "stream:overlays", "transcription:live"}
		var chans []*channeltest.Channel
		for _, topic := range topics {
			chans = append(chans, s.Join(topic, nil))
		}
		for i := 0; i < 10; i++ {
			for _, topic := range []string{"events", "dashboard", "transcriptions:live"} {
				h.ep.Broadcast(topic, "garbage", map[string]any{"i": i})
			}
			h.ep.Broadcast("events", "event", map[string]any{"no": "type"})
			for _, ch := range chans {
				ch.Push("unknown_push", map[string]any{"i": i})
			}
		}
		for _, ch := range chans {
			ch.Push("ping", nil).AssertReply("ok", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
				m := asMap(p)
				if d, ok := m["data"].(map[string]any); ok {
					m = d
				}
				assert.Equal(t, true, m["pong"])
			}))
		}
	})
}
