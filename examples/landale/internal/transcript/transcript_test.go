package transcript

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func errorsOf(t *testing.T, p map[string]any) map[string][]string {
	t.Helper()
	_, err := Validate(p)
	var errs Errors
	require.ErrorAs(t, err, &errs)
	out := map[string][]string{}
	for i, f := range errs {
		if i > 0 {
			assert.Less(t, errs[i-1].Field, f.Field, "sorted by field")
		}
		out[f.Field] = f.Messages
	}
	return out
}

func TestValidateMessages(t *testing.T) {
	assert.Equal(t, map[string][]string{"duration": {"is required"}, "timestamp": {"is required"}},
		errorsOf(t, map[string]any{"text": "x"}))
	assert.Equal(t, []string{"is required"}, errorsOf(t, map[string]any{"text": ""})["text"])
	assert.Equal(t, []string{"must be a valid ISO 8601 datetime"},
		errorsOf(t, map[string]any{"timestamp": "not-a-timestamp", "duration": 1.0, "text": "x"})["timestamp"])
	assert.Equal(t, []string{"is required", "must be a valid ISO 8601 datetime"},
		errorsOf(t, map[string]any{"timestamp": "", "duration": 1.0, "text": "x"})["timestamp"])
	assert.Equal(t, []string{"must be greater than 0"},
		errorsOf(t, map[string]any{"timestamp": "2024-01-01T00:00:00Z", "duration": -1.0, "text": "x"})["duration"])
	assert.Equal(t, []string{"is too long (maximum is 10000 characters)"},
		errorsOf(t, map[string]any{"timestamp": "2024-01-01T00:00:00Z", "duration": 1.0, "text": strings.Repeat("é", 10001)})["text"])
	assert.Equal(t, []string{"must be between 0.0 and 1.0"},
		errorsOf(t, map[string]any{"timestamp": "2024-01-01T00:00:00Z", "duration": 1.0, "text": "x", "confidence": 1.5})["confidence"])

	all := errorsOf(t, map[string]any{"timestamp": "bad", "duration": -2.0, "text": "", "confidence": 2.0})
	assert.Len(t, all, 4)

	odd := errorsOf(t, map[string]any{"timestamp": 5.0, "duration": "abc", "text": 3.0, "source_id": 1.0, "metadata": "x"})
	assert.Equal(t, []string{"must be a datetime string or DateTime"}, odd["timestamp"])
	assert.Equal(t, []string{"must be a valid number"}, odd["duration"])
	assert.Equal(t, []string{"must be a string"}, odd["text"])
	assert.Equal(t, []string{"must be a string"}, odd["source_id"])
	assert.Equal(t, []string{"must be a map"}, odd["metadata"])
	assert.Equal(t, []string{"must be a number"}, errorsOf(t, map[string]any{"timestamp": "2024-01-01T00:00:00Z",
		"duration": true, "text": "x"})["duration"])
}

func TestValidateAccepts(t *testing.T) {
	tr, err := Validate(map[string]any{"timestamp": "2024-01-01T00:00:00Z", "duration": "1.5", "text": "hi",
		"confidence": "0.95", "stream_session_id": "s1", "unknown": "dropped"})
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, tr.ID)
	assert.Equal(t, 1.5, tr.Duration)
	assert.Equal(t, 0.95, *tr.Confidence)
	assert.Nil(t, tr.SourceID)
	b, err := json.Marshal(tr.Broadcast("abcd1234"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"`+tr.ID+`","correlation_id":"abcd1234","timestamp":"2024-01-01T00:00:00.000000Z",
		"duration":1.5,"text":"hi","source_id":null,"stream_session_id":"s1","confidence":0.95}`, string(b))
	assert.Nil(t, tr.Broadcast("")["correlation_id"])
	assert.Equal(t, map[string]any{}, tr.JSON()["metadata"])
}

func at(t *testing.T, ts, session string) *Transcription {
	t.Helper()
	p := map[string]any{"timestamp": ts, "duration": 1.0, "text": "x", "confidence": 0.9}
	if session != "" {
		p["stream_session_id"] = session
	}
	tr, err := Validate(p)
	require.NoError(t, err)
	return tr
}

func TestStore(t *testing.T) {
	s := NewStore(3)
	a := at(t, "2024-01-01T00:00:00Z", "s1")
	b := at(t, "2024-01-01T00:02:00Z", "s1")
	c := at(t, "2024-01-01T00:01:00Z", "s2")
	d := at(t, "2024-01-01T00:03:00Z", "")
	for _, x := range []*Transcription{a, b, c, d} {
		s.Add(x)
	}
	since := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, []*Transcription{d, b, c}, s.Recent(since), "newest first, oldest dropped past max")
	assert.Equal(t, []*Transcription{b}, s.Session("s1", 100))
	assert.Empty(t, s.Session("s1", 0))

	s2 := NewStore(0)
	s2.Add(c)
	s2.Add(a)
	s2.Add(b)
	assert.Equal(t, []*Transcription{a, b}, s2.Session("s1", 100), "ascending")
	assert.Equal(t, []*Transcription{a}, s2.Session("s1", 1))
}

func TestAnalytics(t *testing.T) {
	s := NewStore(0)
	now := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	s.Add(at(t, "2024-01-01T23:00:00Z", ""))
	s.Add(at(t, "2023-12-30T00:00:00Z", ""))
	a := s.Analytics(now)
	assert.Equal(t, 1, a["total_transcriptions_24h"])
	assert.Equal(t, now.UnixMilli(), a["timestamp"])
	conf := a["confidence"].(map[string]any)
	assert.Equal(t, 0.9, conf["average"])
	assert.Equal(t, map[string]any{"high": 1, "medium": 0, "low": 0}, conf["distribution"])
	assert.Contains(t, a["trends"], "hourly_volume")
	assert.Contains(t, a["duration"], "total_text_length")
}
