// Package transcript stores the Landale example's live transcriptions
// (Landale's Server.Transcription with its database, kept in memory here),
// validates submissions with Landale's exact messages and computes the
// analytics of the dashboard's telemetry.
package transcript

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Transcription is one stored transcription.
type Transcription struct {
	ID              string         `json:"id"`
	Timestamp       time.Time      `json:"-"`
	Duration        float64        `json:"duration"`
	Text            string         `json:"text"`
	SourceID        *string        `json:"source_id"`
	StreamSessionID *string        `json:"stream_session_id"`
	Confidence      *float64       `json:"confidence"`
	Metadata        map[string]any `json:"metadata"`
}

// JSON returns the stored form T: id, timestamp (ISO µs), duration, text,
// source_id, stream_session_id, confidence, metadata.
func (t *Transcription) JSON() map[string]any {
	return map[string]any{
		"id": t.ID, "timestamp": formatTime(t.Timestamp), "duration": t.Duration, "text": t.Text,
		"source_id": t.SourceID, "stream_session_id": t.StreamSessionID, "confidence": t.Confidence,
		"metadata": t.Metadata,
	}
}

// Broadcast returns the new_transcription payload E: like JSON without
// metadata, plus the submitter's correlation id (nil for none).
func (t *Transcription) Broadcast(correlationID string) map[string]any {
	m := t.JSON()
	delete(m, "metadata")
	m["correlation_id"] = nil
	if correlationID != "" {
		m["correlation_id"] = correlationID
	}
	return m
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// FieldError lists the messages of one invalid field.
type FieldError struct {
	Field    string   `json:"field"`
	Messages []string `json:"messages"`
}

// Errors are validation errors, sorted by field name.
type Errors []FieldError

// Error implements error.
func (e Errors) Error() string {
	parts := make([]string, 0, len(e))
	for _, f := range e {
		parts = append(parts, f.Field+" "+strings.Join(f.Messages, ", "))
	}
	return "transcript: invalid submission: " + strings.Join(parts, "; ")
}

// Validate checks a submit_transcription payload with Landale's rules and
// messages and returns the transcription to store (ID and Timestamp set,
// ID a fresh UUID v4).
func Validate(p map[string]any) (*Transcription, error) {
	errs := map[string][]string{}
	add := func(field, msg string) { errs[field] = append(errs[field], msg) }
	t := &Transcription{Metadata: map[string]any{}}

	// timestamp
	switch v := p["timestamp"].(type) {
	case nil:
		add("timestamp", "is required")
	case string:
		if strings.TrimSpace(v) == "" {
			add("timestamp", "is required")
		}
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			add("timestamp", "must be a valid ISO 8601 datetime")
		}
		t.Timestamp = ts
	default:
		add("timestamp", "must be a datetime string or DateTime")
	}
	// duration
	if d, ok := number(p, "duration", true, add); ok {
		if d <= 0 {
			add("duration", "must be greater than 0")
		}
		t.Duration = d
	}
	// text
	switch v := p["text"].(type) {
	case nil:
		add("text", "is required")
	case string:
		if strings.TrimSpace(v) == "" {
			add("text", "is required")
		} else if len([]rune(v)) > 10000 {
			add("text", "is too long (maximum is 10000 characters)")
		}
		t.Text = v
	default:
		add("text", "must be a string")
	}
	// confidence
	if c, ok := number(p, "confidence", false, add); ok {
		if c < 0 || c > 1 {
			add("confidence", "must be between 0.0 and 1.0")
		}
		t.Confidence = &c
	}
	t.SourceID = optString(p, "source_id", add)
	t.StreamSessionID = optString(p, "stream_session_id", add)
	if v, present := p["metadata"]; present && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			add("metadata", "must be a map")
		} else {
			t.Metadata = m
		}
	}
	if len(errs) > 0 {
		out := make(Errors, 0, len(errs))
		for f, msgs := range errs {
			out = append(out, FieldError{Field: f, Messages: msgs})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
		return nil, out
	}
	t.ID = newUUID()
	return t, nil
}

// number reads a float field that may be a JSON number or a numeric string.
func number(p map[string]any, key string, required bool, add func(string, string)) (float64, bool) {
	switch v := p[key].(type) {
	case nil:
		if required {
			add(key, "is required")
		}
	case float64:
		return v, true
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			add(key, "must be a valid number")
			return 0, false
		}
		return f, true
	case string:
		if strings.TrimSpace(v) == "" {
			if required {
				add(key, "is required")
			}
			return 0, false
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			add(key, "must be a valid number")
			return 0, false
		}
		return f, true
	default:
		add(key, "must be a number")
	}
	return 0, false
}

func optString(p map[string]any, key string, add func(string, string)) *string {
	switch v := p[key].(type) {
	case nil:
	case string:
		if v != "" {
			return &v
		}
	default:
		add(key, "must be a string")
	}
	return nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Store keeps transcriptions in memory, at most Max of them (the oldest
// are dropped first). It is safe for concurrent use.
type Store struct {
	max int
	mu  sync.Mutex
	all []*Transcription // in insertion order
}

// DefaultMax is the number of transcriptions a Store keeps by default.
const DefaultMax = 10_000

// NewStore returns an empty store keeping at most max entries (DefaultMax
// when max <= 0).
func NewStore(max int) *Store {
	if max <= 0 {
		max = DefaultMax
	}
	return &Store{max: max}
}

// Add stores t.
func (s *Store) Add(t *Transcription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, t)
	if len(s.all) > s.max {
		s.all = append(s.all[:0:0], s.all[len(s.all)-s.max:]...)
	}
}

// Recent returns the transcriptions whose timestamp is not before since,
// newest first.
func (s *Store) Recent(since time.Time) []*Transcription {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Transcription
	for _, t := range s.all {
		if !t.Timestamp.Before(since) {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.After(out[j].Timestamp) })
	return out
}

// Session returns at most limit transcriptions of a stream session, in
// ascending timestamp order.
func (s *Store) Session(id string, limit int) []*Transcription {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Transcription
	for _, t := range s.all {
		if t.StreamSessionID != nil && *t.StreamSessionID == id {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Analytics returns the transcription part of telemetry_update over the
// last 24 hours before now.
func (s *Store) Analytics(now time.Time) map[string]any {
	list := s.Recent(now.Add(-24 * time.Hour))
	var sumC, minC, maxC float64
	nC, high, med, low := 0, 0, 0, 0
	var totalDur float64
	textLen := 0
	hourly := map[int]int{}
	for _, t := range list {
		totalDur += t.Duration
		textLen += len([]rune(t.Text))
		hourly[int(now.Sub(t.Timestamp).Hours())]++
		if t.Confidence == nil {
			continue
		}
		c := *t.Confidence
		if nC == 0 || c < minC {
			minC = c
		}
		if nC == 0 || c > maxC {
			maxC = c
		}
		sumC += c
		nC++
		switch {
		case c >= 0.8:
			high++
		case c >= 0.5:
			med++
		default:
			low++
		}
	}
	avg, avgDur := 0.0, 0.0
	if nC > 0 {
		avg = sumC / float64(nC)
	}
	if len(list) > 0 {
		avgDur = totalDur / float64(len(list))
	}
	volume := []any{}
	for h := 23; h >= 0; h-- {
		if n := hourly[h]; n > 0 {
			volume = append(volume, map[string]any{"hour": formatTime(now.Add(-time.Duration(h) * time.Hour).Truncate(time.Hour)), "count": n})
		}
	}
	return map[string]any{
		"timestamp":                now.UnixMilli(),
		"total_transcriptions_24h": len(list),
		"confidence": map[string]any{"average": avg, "min": minC, "max": maxC,
			"distribution": map[string]any{"high": high, "medium": med, "low": low}},
		"duration": map[string]any{"total_seconds": totalDur, "average_duration": avgDur, "total_text_length": textLen},
		"trends":   map[string]any{"confidence_trend": "stable", "hourly_volume": volume, "quality_trend": "stable"},
	}
}
