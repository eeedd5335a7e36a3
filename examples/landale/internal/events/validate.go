package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("events: invalid event")

// ValidationError names the offending field of an event that is not
// published.
type ValidationError struct {
	Field   string // the field, e.g. "user_login" or "message.text"
	Message string // what is wrong, e.g. "is required"
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("events: invalid event: %s %s", e.Field, e.Message)
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, msg string) error { return &ValidationError{Field: field, Message: msg} }

// MaxDataBytes is the largest event input accepted (Landale: 100 000 bytes).
const MaxDataBytes = 100_000

var (
	loginRe = regexp.MustCompile(`^[a-zA-Z0-9_]{1,25}$`)
	tiers   = map[string]bool{"1000": true, "2000": true, "3000": true}
)

// required lists the input fields each type must carry (Landale's
// validate_required per schema).
var required = map[string][]string{
	"stream.online":               {"broadcaster_user_id", "broadcaster_user_login"},
	"stream.offline":              {"broadcaster_user_id", "broadcaster_user_login"},
	"channel.follow":              {"user_id", "user_login", "broadcaster_user_id", "broadcaster_user_login"},
	"channel.subscribe":           {"user_id", "user_login", "broadcaster_user_id", "broadcaster_user_login"},
	"channel.subscription.gift":   {"broadcaster_user_id", "broadcaster_user_login"},
	"channel.cheer":               {"broadcaster_user_id", "broadcaster_user_login", "bits"},
	"channel.update":              {"broadcaster_user_id", "broadcaster_user_login"},
	"channel.chat.message":        {"message_id", "broadcaster_user_id", "chatter_user_id", "message"},
	"channel.chat.clear":          {"broadcaster_user_id", "broadcaster_user_login"},
	"channel.chat.message_delete": {"broadcaster_user_id", "target_user_id", "message_id"},
	"channel.goal.begin":          {"id", "broadcaster_user_id", "type", "target_amount"},
	"channel.goal.progress":       {"id", "broadcaster_user_id", "current_amount"},
	"channel.goal.end":            {"id", "broadcaster_user_id"},
	"obs.websocket_event":         {"eventType"},
	"system.service_started":      {"service"},
	"system.service_stopped":      {"service"},
	"system.health_check":         {"service"},
	"system.performance_metric":   {"metric"},
	"stream.show_changed":         {"show"},
	"stream.emote_increment":      {"emotes", "user_name"},
	"stream.takeover_started":     {"takeover_type", "duration"},
}

// Validate checks an event input the way Landale's Validation does before
// anything is published: size, required fields, id and login formats,
// tiers, string lengths and the type-specific rules. Types without rules
// only get the size and 50-key checks.
func Validate(typ string, data map[string]any) error {
	if typ == "" {
		return invalid("type", "is required")
	}
	if data == nil {
		return invalid("data", "must be an object")
	}
	if b, err := json.Marshal(data); err != nil {
		return invalid("data", "must be JSON-encodable")
	} else if len(b) > MaxDataBytes {
		return invalid("data", fmt.Sprintf("is too large (maximum is %d bytes)", MaxDataBytes))
	}
	if _, known := specs[typ]; !known && typ != "channel.chat.message" {
		if len(data) > 50 {
			return invalid("data", "has too many keys (maximum is 50)")
		}
		return nil
	}
	for _, k := range required[typ] {
		if blank(data[k]) {
			return invalid(k, "is required")
		}
	}
	for k, v := range data {
		if s, ok := v.(string); ok {
			if err := checkString(k, s); err != nil {
				return err
			}
		}
		switch {
		case strings.HasSuffix(k, "_user_id") || k == "user_id":
			if s, ok := v.(string); ok && !numeric(s) {
				return invalid(k, "must be a numeric Twitch id")
			}
		case strings.HasSuffix(k, "_user_login") || k == "user_login":
			if s, ok := v.(string); ok && s != "" && !loginRe.MatchString(s) {
				return invalid(k, "must be a valid Twitch login")
			}
		case k == "tier":
			if s, ok := v.(string); ok && !tiers[s] {
				return invalid(k, "must be one of 1000, 2000, 3000")
			}
		}
	}
	return validateType(typ, data)
}

func validateType(typ string, data map[string]any) error {
	switch typ {
	case "channel.cheer":
		if !positiveInt(data["bits"]) {
			return invalid("bits", "must be a positive integer")
		}
		if s, ok := data["message"].(string); ok && len(s) > 500 {
			return invalid("message", "is too long (maximum is 500 bytes)")
		}
	case "channel.update":
		if s, ok := data["language"].(string); ok && len(s) > 10 {
			return invalid("language", "is too long (maximum is 10 bytes)")
		}
	case "channel.chat.message":
		m, ok := data["message"].(map[string]any)
		if !ok {
			return invalid("message", "must be an object with a text")
		}
		t, ok := m["text"].(string)
		if !ok {
			return invalid("message.text", "must be a string")
		}
		if len(t) > 500 {
			return invalid("message.text", "is too long (maximum is 500 bytes)")
		}
		if s, ok := data["color"].(string); ok && len(s) > 20 {
			return invalid("color", "is too long (maximum is 20 bytes)")
		}
		if s, ok := data["message_type"].(string); ok && len(s) > 50 {
			return invalid("message_type", "is too long (maximum is 50 bytes)")
		}
	case "channel.goal.begin":
		if !positiveInt(data["target_amount"]) {
			return invalid("target_amount", "must be a positive integer")
		}
	case "channel.goal.progress":
		if n, ok := asInt(data["current_amount"]); !ok || n < 0 {
			return invalid("current_amount", "must be a non-negative integer")
		}
	case "stream.takeover_started":
		if !positiveInt(data["duration"]) {
			return invalid("duration", "must be a positive integer")
		}
	}
	return nil
}

func checkString(k, s string) error {
	if len(s) > 2000 {
		return invalid(k, "is too long (maximum is 2000 bytes)")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x04 {
			return invalid(k, "contains invalid control characters")
		}
	}
	return nil
}

func blank(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	}
	return false
}

func numeric(s string) bool {
	if s == "" || len(s) > 50 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// asInt returns v as an integer if it is a whole JSON number.
func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

func positiveInt(v any) bool { n, ok := asInt(v); return ok && n > 0 }

// Complete checks a normalized event posted from outside (POST /api/events)
// and fills in what is missing: id ("evt_" + 24 hex), timestamp (now),
// correlation_id (8 hex), source (from the type), source_id (null) and
// raw_type (the type). The core fields that are present must be well
// formed; type-specific fields are taken as they are. A returned
// *ValidationError names the offending field.
func Complete(e Event, now time.Time) (Event, error) {
	if e == nil {
		return nil, invalid("event", "must be a JSON object")
	}
	typ, ok := e["type"].(string)
	if !ok || strings.TrimSpace(typ) == "" {
		if _, present := e["type"]; present && !ok {
			return nil, invalid("type", "must be a string")
		}
		return nil, invalid("type", "is required")
	}
	for _, k := range []string{"id", "correlation_id", "raw_type"} {
		v, present := e[k]
		if !present || v == nil {
			continue
		}
		if s, ok := v.(string); !ok || s == "" {
			return nil, invalid(k, "must be a non-empty string")
		}
	}
	if v, present := e["source_id"]; present && v != nil {
		if _, ok := v.(string); !ok {
			return nil, invalid("source_id", "must be a string or null")
		}
	}
	if v, present := e["source"]; present && v != nil {
		s, ok := v.(string)
		if !ok || !IsSource(s) {
			return nil, invalid("source", "must be one of "+strings.Join(Sources, ", "))
		}
	}
	if v, present := e["timestamp"]; present && v != nil {
		s, ok := v.(string)
		if !ok {
			return nil, invalid("timestamp", "must be an ISO 8601 string")
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, invalid("timestamp", "must be an ISO 8601 string")
		}
	}
	if b, err := json.Marshal(e); err != nil {
		return nil, invalid("event", "must be JSON-encodable")
	} else if len(b) > MaxDataBytes {
		return nil, invalid("event", fmt.Sprintf("is too large (maximum is %d bytes)", MaxDataBytes))
	}
	out := make(Event, len(e)+6)
	for k, v := range e {
		out[k] = v
	}
	if out["id"] == nil {
		out["id"] = NewEventID()
	}
	if out["timestamp"] == nil {
		out["timestamp"] = FormatTime(now)
	}
	if out["correlation_id"] == nil {
		out["correlation_id"] = NewCorrelationID()
	}
	if out["source"] == nil {
		out["source"] = SourceOf(typ)
	}
	if _, ok := out["source_id"]; !ok {
		out["source_id"] = nil
	}
	if out["raw_type"] == nil {
		out["raw_type"] = typ
	}
	return out, nil
}
