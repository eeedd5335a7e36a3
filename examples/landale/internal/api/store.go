package api

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
)

// MaxStoreEntries bounds each in-memory collection of the store (contexts,
// members, pronunciations, vocabulary); the oldest entry makes room.
const MaxStoreEntries = 10000

// store holds what Landale keeps in Postgres for SEED and the community
// routes, in memory and bounded.
type store struct {
	mu       sync.Mutex
	ctxs     []*seedContext
	memberL  []string // usernames, oldest first
	memberM  map[string]*member
	pronL    []string
	pronM    map[string]*pronunciation
	vocabL   []string
	vocabM   map[string]map[string]any
	vocabUse map[string]time.Time
}

func newStore() *store {
	return &store{memberM: map[string]*member{}, pronM: map[string]*pronunciation{},
		vocabM: map[string]map[string]any{}, vocabUse: map[string]time.Time{}}
}

type seedContext struct {
	Started      string         `json:"started"`
	Ended        string         `json:"ended"`
	Session      string         `json:"session"`
	Transcript   string         `json:"transcript"`
	Duration     float64        `json:"duration"`
	Sentiment    any            `json:"sentiment"`
	Topics       []any          `json:"topics"`
	Chat         map[string]any `json:"chat_summary"`
	Interactions map[string]any `json:"interactions_summary"`
	Emotes       map[string]any `json:"emotes_summary"`

	at time.Time
}

type member struct {
	Username           string `json:"username"`
	DisplayName        any    `json:"display_name"`
	FirstSeen          string `json:"first_seen"`
	LastSeen           string `json:"last_seen"`
	MessageCount       int    `json:"message_count"`
	PronunciationGuide any    `json:"pronunciation_guide"`
	PreferredName      any    `json:"preferred_name"`

	seen time.Time
}

type pronunciation struct {
	Username   string `json:"username"`
	Phonetic   string `json:"phonetic"`
	Confidence any    `json:"confidence"`
	CreatedBy  any    `json:"created_by"`
	CreatedAt  string `json:"created_at"`
}

// fieldErrors are Ecto's traverse_errors: field → messages.
type fieldErrors map[string][]string

func (fe fieldErrors) add(field, msg string) { fe[field] = append(fe[field], msg) }

func (fe fieldErrors) orNil() fieldErrors {
	if len(fe) == 0 {
		return nil
	}
	return fe
}

func requiredString(req map[string]any, field string, fe fieldErrors) string {
	v, present := req[field]
	s, isStr := v.(string)
	switch {
	case !present || v == nil || (isStr && strings.TrimSpace(s) == ""):
		fe.add(field, "can't be blank")
	case !isStr:
		fe.add(field, "is invalid")
	}
	return s
}

func parseTime(req map[string]any, field string, fe fieldErrors) (string, time.Time) {
	s := requiredString(req, field, fe)
	if s == "" {
		return "", time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		fe.add(field, "is invalid")
		return "", time.Time{}
	}
	return t.UTC().Format(time.RFC3339), t
}

func (s *store) addContext(req map[string]any) (*seedContext, fieldErrors) {
	fe := fieldErrors{}
	c := &seedContext{Topics: []any{}}
	var at time.Time
	c.Started, at = parseTime(req, "started", fe)
	c.Ended, _ = parseTime(req, "ended", fe)
	c.Session = requiredString(req, "session", fe)
	c.Transcript = requiredString(req, "transcript", fe)
	switch d := req["duration"].(type) {
	case float64:
		c.Duration = d
		if d <= 0 {
			fe.add("duration", "must be greater than 0")
		}
	case nil:
		fe.add("duration", "can't be blank")
	default:
		fe.add("duration", "is invalid")
	}
	if v, ok := req["sentiment"]; ok && v != nil {
		if str, _ := v.(string); str == "positive" || str == "negative" || str == "neutral" {
			c.Sentiment = str
		} else {
			fe.add("sentiment", "is invalid")
		}
	}
	if t, ok := req["topics"].([]any); ok {
		c.Topics = t
	}
	c.Chat, _ = req["chat"].(map[string]any)
	c.Interactions, _ = req["interactions"].(map[string]any)
	c.Emotes, _ = req["emotes"].(map[string]any)
	if fe.orNil() != nil {
		return nil, fe
	}
	c.at = at
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ctxs) >= MaxStoreEntries {
		s.ctxs = append(s.ctxs[:0], s.ctxs[1:]...)
	}
	s.ctxs = append(s.ctxs, c)
	return c, nil
}

// contexts lists contexts newest first (by start), filtered by session and
// by a case-insensitive transcript search.
func (s *store) contexts(limit int, session, query string) []*seedContext {
	query = strings.ToLower(query)
	s.mu.Lock()
	out := []*seedContext{}
	for _, c := range s.ctxs {
		if session != "" && c.Session != session {
			continue
		}
		if query != "" && !strings.Contains(strings.ToLower(c.Transcript), query) {
			continue
		}
		out = append(out, c)
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.After(out[j].at) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func (s *store) contextStats(since time.Time) (map[string]any, []map[string]any, []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int
	var total float64
	sessions := map[string]bool{}
	sentiments := map[string]int{}
	topics := map[string]int{}
	for _, c := range s.ctxs {
		if c.at.Before(since) {
			continue
		}
		n++
		total += c.Duration
		sessions[c.Session] = true
		if str, ok := c.Sentiment.(string); ok {
			sentiments[str]++
		}
		for _, t := range c.Topics {
			if str, ok := t.(string); ok {
				topics[str]++
			}
		}
	}
	overall := map[string]any{"total_count": n, "total_duration": nil, "unique_sessions": len(sessions), "avg_duration": nil}
	if n > 0 {
		overall["total_duration"], overall["avg_duration"] = total, total/float64(n)
	}
	sd := []map[string]any{}
	for k, v := range sentiments {
		sd = append(sd, map[string]any{"sentiment": k, "count": v})
	}
	sort.Slice(sd, func(i, j int) bool { return sd[i]["sentiment"].(string) < sd[j]["sentiment"].(string) })
	pt := []map[string]any{}
	for k, v := range topics {
		pt = append(pt, map[string]any{"topic": k, "count": v})
	}
	sort.Slice(pt, func(i, j int) bool {
		if pt[i]["count"].(int) != pt[j]["count"].(int) {
			return pt[i]["count"].(int) > pt[j]["count"].(int)
		}
		return pt[i]["topic"].(string) < pt[j]["topic"].(string)
	})
	if len(pt) > 10 {
		pt = pt[:10]
	}
	return overall, sd, pt
}

func (s *store) touchMember(username, display string, now time.Time) (*member, fieldErrors) {
	username = strings.ToLower(strings.TrimSpace(username))
	if username == "" {
		return nil, fieldErrors{"username": {"can't be blank"}}
	}
	ts := events.FormatTime(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.memberM[username]
	if !ok {
		if len(s.memberL) >= MaxStoreEntries {
			delete(s.memberM, s.memberL[0])
			s.memberL = append(s.memberL[:0], s.memberL[1:]...)
		}
		m = &member{Username: username, FirstSeen: ts}
		s.memberM[username] = m
		s.memberL = append(s.memberL, username)
	}
	if display != "" {
		m.DisplayName = display
	}
	m.MessageCount++
	m.LastSeen, m.seen = ts, now
	if p, ok := s.pronM[username]; ok {
		m.PronunciationGuide = p.Phonetic
	}
	cp := *m
	return &cp, nil
}

func (s *store) members(limit int) []member {
	s.mu.Lock()
	out := make([]member, 0, len(s.memberM))
	for _, m := range s.memberM {
		out = append(out, *m)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].seen.Equal(out[j].seen) {
			return out[i].seen.After(out[j].seen)
		}
		return out[i].Username < out[j].Username
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func (s *store) communityStats(now time.Time) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	total, weekly := 0, 0
	for _, m := range s.memberM {
		total += m.MessageCount
		if !m.seen.Before(now.Add(-7 * 24 * time.Hour)) {
			weekly++
		}
	}
	return map[string]any{"active_members": len(s.memberM), "total_messages": total, "weekly_active": weekly}
}

func (s *store) addPronunciation(req map[string]any, now time.Time) (*pronunciation, fieldErrors) {
	fe := fieldErrors{}
	p := &pronunciation{Username: strings.ToLower(requiredString(req, "username", fe)),
		Phonetic: requiredString(req, "phonetic", fe), CreatedBy: req["created_by"], Confidence: 1.0,
		CreatedAt: events.FormatTime(now)}
	if c, ok := req["confidence"]; ok && c != nil {
		f, isNum := c.(float64)
		if !isNum || f < 0 || f > 1 {
			fe.add("confidence", "must be between 0.0 and 1.0")
		}
		p.Confidence = c
	}
	if fe.orNil() != nil {
		return nil, fe
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.pronM[p.Username]; dup {
		return nil, fieldErrors{"username": {"has already been taken"}}
	}
	if len(s.pronL) >= MaxStoreEntries {
		delete(s.pronM, s.pronL[0])
		s.pronL = append(s.pronL[:0], s.pronL[1:]...)
	}
	s.pronM[p.Username] = p
	s.pronL = append(s.pronL, p.Username)
	if m, ok := s.memberM[p.Username]; ok {
		m.PronunciationGuide = p.Phonetic
	}
	return p, nil
}

func (s *store) pronunciations() []pronunciation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]pronunciation, 0, len(s.pronL))
	for _, u := range s.pronL {
		out = append(out, *s.pronM[u])
	}
	return out
}

func (s *store) pronunciation(username string) (pronunciation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pronM[strings.ToLower(username)]
	if !ok {
		return pronunciation{}, false
	}
	return *p, true
}

func (s *store) addVocabulary(req map[string]any, now time.Time) (map[string]any, fieldErrors) {
	fe := fieldErrors{}
	phrase := requiredString(req, "phrase", fe)
	category := requiredString(req, "category", fe)
	tags, _ := req["tags"].([]any)
	if tags == nil {
		tags = []any{}
	}
	if fe.orNil() != nil {
		return nil, fe
	}
	v := map[string]any{"phrase": phrase, "category": category, "definition": req["definition"],
		"context": req["context"], "usage_count": 1, "tags": tags, "first_used": events.FormatTime(now)}
	key := strings.ToLower(phrase)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.vocabM[key]; dup {
		return nil, fieldErrors{"phrase": {"has already been taken"}}
	}
	if len(s.vocabL) >= MaxStoreEntries {
		delete(s.vocabM, s.vocabL[0])
		s.vocabL = append(s.vocabL[:0], s.vocabL[1:]...)
	}
	s.vocabM[key] = v
	s.vocabL = append(s.vocabL, key)
	return v, nil
}

// vocabulary lists entries of a category (or all), or those whose phrase
// or definition contains query, most used first.
func (s *store) vocabulary(category, query string, limit int) []map[string]any {
	s.mu.Lock()
	out := []map[string]any{}
	for _, k := range s.vocabL {
		v := s.vocabM[k]
		if category != "" && v["category"] != category {
			continue
		}
		if query != "" {
			def, _ := v["definition"].(string)
			if !strings.Contains(k, query) && !strings.Contains(strings.ToLower(def), query) {
				continue
			}
		}
		out = append(out, v)
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i]["usage_count"].(int) > out[j]["usage_count"].(int) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}
