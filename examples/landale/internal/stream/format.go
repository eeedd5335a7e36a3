package stream

import (
	"strings"
	"time"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
)

// Shows are the shows the producer knows, in Landale's order of
// available_shows.
var Shows = []string{"coding", "ironmon", "variety"}

// DefaultShow is the show at start and for unknown games.
const DefaultShow = "variety"

// layerMappings is Landale's Server.LayerMapping: per show, which layer
// each content type is drawn on; unknown types are "background".
var layerMappings = map[string]map[string]string{
	"ironmon": {
		"death_alert": "foreground", "elite_four_alert": "foreground", "shiny_encounter": "foreground", "alert": "foreground",
		"level_up": "midground", "gym_badge": "midground", "sub_train": "midground", "cheer_celebration": "midground",
		"ironmon_run_stats": "background", "ironmon_deaths": "background", "recent_follows": "background", "emote_stats": "background",
	},
	"variety": {
		"raid_alert": "foreground", "host_alert": "foreground", "alert": "foreground",
		"sub_train": "midground", "cheer_celebration": "midground", "follow_celebration": "midground",
		"emote_stats": "background", "recent_follows": "background", "stream_goals": "background", "daily_stats": "background",
	},
	"coding": {
		"build_failure": "foreground", "deployment_alert": "foreground", "alert": "foreground",
		"commit_celebration": "midground", "pr_merged": "midground", "sub_train": "midground",
		"commit_stats": "background", "build_status": "background", "recent_follows": "background", "emote_stats": "background",
	},
}

// Mappings returns the layer of every content type of show, as
// get_layer_mappings replies.
func Mappings(show string) map[string]string {
	m, ok := layerMappings[show]
	if !ok {
		m = map[string]string{"alert": "foreground", "sub_train": "midground", "emote_stats": "background",
			"recent_follows": "background", "daily_stats": "background"}
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Layer returns the layer of contentType on show.
func Layer(contentType, show string) string {
	if l, ok := Mappings(show)[contentType]; ok {
		return l
	}
	return "background"
}

// defaultTicker is the ticker rotation of each show.
func defaultTicker(show string) []string {
	switch show {
	case "ironmon":
		return []string{"ironmon_run_stats", "ironmon_progression"}
	case "coding":
		return []string{"commit_stats", "build_status", "emote_stats", "recent_follows"}
	}
	return []string{"emote_stats", "recent_follows", "stream_goals", "daily_stats"}
}

// showForGame maps a Twitch category to a show as Landale's StreamProducer
// does: by id first, then by name.
// ShowForGame is the show Landale's StreamProducer picks for a Twitch
// category (id, name): ironmon, coding or variety (the default).
func ShowForGame(id, name string) string { return showForGame(id, name) }

func showForGame(id, name string) string {
	switch id {
	case "490100":
		return "ironmon"
	case "509658":
		return "coding"
	case "509660":
		return "variety"
	}
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "pokemon") && strings.Contains(n, "fire"), strings.Contains(n, "pokémon") && strings.Contains(n, "fire"):
		return "ironmon"
	case strings.Contains(n, "software"), strings.Contains(n, "development"):
		return "coding"
	}
	return DefaultShow
}

// FallbackLayerState is ContentFallbacks.get_fallback_layer_state: what
// stream_state carries when the producer cannot be reached (it keeps
// Landale's legacy current/priority_level keys and has no timeline).
func FallbackLayerState(now time.Time) map[string]any {
	return map[string]any{
		"current_show":   DefaultShow,
		"current":        nil,
		"base":           nil,
		"priority_level": "ticker",
		"alerts":         []any{},
		"ticker":         []any{},
		"metadata": map[string]any{
			"last_updated":  events.FormatTime(now),
			"state_version": 0,
			"fallback_mode": true,
		},
	}
}

// FallbackQueueState is the queue_state pushed after join when the
// producer cannot be reached (ContentFallbacks.get_fallback_queue_state).
func FallbackQueueState() map[string]any {
	return map[string]any{
		"queue":   []any{},
		"current": nil,
		"metrics": map[string]any{"total_items": 0, "active_items": 0, "pending_items": 0,
			"average_wait_time": 0, "last_processed": nil},
		"is_processing": false,
		"fallback_mode": true,
	}
}

// FallbackRequestQueueState is the literal fallback request_queue_state
// pushes when the producer cannot be reached.
func FallbackRequestQueueState() map[string]any {
	return map[string]any{"queue": []any{}, "base": nil, "ticker": []any{}, "timeline": []any{}, "alerts": []any{}}
}

// StateFromEvent returns the stream_state payload carried by a
// stream.state_updated event.
func StateFromEvent(e events.Event) map[string]any {
	out := make(map[string]any, 6)
	for _, k := range []string{"current_show", "base", "alerts", "ticker", "timeline", "metadata"} {
		out[k] = e[k]
	}
	if out["alerts"] == nil {
		out["alerts"] = []any{}
	}
	if out["ticker"] == nil {
		out["ticker"] = []any{}
	}
	if out["timeline"] == nil {
		out["timeline"] = []any{}
	}
	return out
}

// FormatQueue builds the queue_state payload from a stream_state payload:
// every alert is a pending queue item. started_at values are ISO strings;
// unparsable ones count as now (Landale crashes there).
func FormatQueue(state map[string]any, now time.Time) map[string]any {
	alerts, _ := state["alerts"].([]any)
	queue := make([]any, 0, len(alerts))
	var totalWait int64
	for i, x := range alerts {
		a, _ := x.(map[string]any)
		if a == nil {
			continue
		}
		typ, _ := a["type"].(string)
		itemType := "ticker"
		if typ == "alert" || typ == "sub_train" || typ == "manual_override" {
			itemType = typ
		}
		if s, ok := a["started_at"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				totalWait += now.Sub(t).Milliseconds()
			}
		}
		queue = append(queue, map[string]any{
			"id": a["id"], "type": itemType, "priority": a["priority"], "content_type": typ,
			"data": a["data"], "duration": a["duration"], "started_at": a["started_at"],
			"status": "pending", "position": i,
		})
	}
	var avg int64
	if len(queue) > 0 {
		avg = totalWait / int64(len(queue))
	}
	var last any
	if md, ok := state["metadata"].(map[string]any); ok {
		last = md["last_updated"]
	}
	return map[string]any{
		"queue": queue,
		"metrics": map[string]any{"total_items": len(queue), "active_items": 0, "pending_items": len(queue),
			"average_wait_time": avg, "last_processed": last},
		"is_processing": len(queue) > 0,
	}
}
