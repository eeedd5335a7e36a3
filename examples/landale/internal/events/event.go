// Package events is the normalized event model of the Landale example: the
// flat maps that Landale's Server.Events builds from Twitch EventSub, OBS,
// IronMON, Rainwave, system and stream producer input, and the Bus that
// validates, normalizes and publishes them on the PubSub topics "events"
// and "dashboard", as Landale does.
//
// An event on the wire always carries the core fields id, type, timestamp
// (ISO 8601 with microseconds), correlation_id, source, source_id and
// raw_type, followed by its type-specific fields, flat.
package events

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
)

// PubSub topics every event is published on, in this order.
const (
	TopicEvents    = "events"
	TopicDashboard = "dashboard"
)

// PubSubEvent is the event name of the PubSub messages carrying a
// normalized event.
const PubSubEvent = "event"

// Sources of events.
const (
	SourceTwitch   = "twitch"
	SourceOBS      = "obs"
	SourceIronmon  = "ironmon"
	SourceRainwave = "rainwave"
	SourceSystem   = "system"
	SourceStream   = "stream"
)

// Sources lists every valid source.
var Sources = []string{SourceTwitch, SourceOBS, SourceIronmon, SourceRainwave, SourceSystem, SourceStream}

// Event is a normalized event: a flat JSON object.
type Event map[string]any

// Type returns the event's type field.
func (e Event) Type() string { s, _ := e["type"].(string); return s }

// Source returns the event's source field.
func (e Event) Source() string { s, _ := e["source"].(string); return s }

// String returns a string field, "" when absent or not a string.
func (e Event) String(key string) string { s, _ := e[key].(string); return s }

// streamTypes are the stream.* types produced by the stream producer; every
// other stream.* type is a Twitch one (stream.online, stream.offline).
var streamTypes = map[string]bool{
	"stream.state_updated":     true,
	"stream.show_changed":      true,
	"stream.interrupt_removed": true,
	"stream.emote_increment":   true,
	"stream.takeover_started":  true,
	"stream.takeover_cleared":  true,
	"stream.goals_updated":     true,
}

// SourceOf derives an event's source from its type as Landale does:
// producer stream.* types are "stream", other stream.*, channel.* and
// user.* types are "twitch", obs.*, ironmon.*, rainwave.* and system.* are
// their prefix, and anything else is "twitch".
func SourceOf(typ string) string {
	if streamTypes[typ] {
		return SourceStream
	}
	prefix, _, _ := strings.Cut(typ, ".")
	switch prefix {
	case "obs":
		return SourceOBS
	case "ironmon":
		return SourceIronmon
	case "rainwave":
		return SourceRainwave
	case "system":
		return SourceSystem
	}
	return SourceTwitch
}

// IsSource reports whether s is one of Sources.
func IsSource(s string) bool {
	for _, v := range Sources {
		if v == s {
			return true
		}
	}
	return false
}

// TimeLayout is Landale's ISO 8601 timestamp format: UTC with microseconds,
// as DateTime.utc_now() encodes.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime formats t in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// NewEventID returns "evt_" followed by 24 lowercase hex characters.
func NewEventID() string { return "evt_" + randomHex(12) }

// NewCorrelationID returns an 8-hex correlation id, as Landale's pool hands
// out for every event.
func NewCorrelationID() string { return randomHex(4) }

// NewShortID returns 16 lowercase hex characters (alert and interrupt ids).
func NewShortID() string { return randomHex(8) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
