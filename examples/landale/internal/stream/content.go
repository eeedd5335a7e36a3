package stream

import (
	"sort"
	"time"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
)

// stats is what the producer learns from the event stream to fill its
// ticker content (Landale reads it from the activity log database).
type stats struct {
	started         time.Time
	messages        int
	follows         int
	recentFollowers []string // newest first, at most 10
	emotes          map[string]int
	totalEmotes     int
	followerGoal    [2]int // current, target
	subGoal         [2]int
	runNumber       int
	cleared         int
	checkpoint      string
	trainer         string
	lastClearedSeed any
	commits         int
}

func newStats(now time.Time) stats {
	return stats{started: now, emotes: map[string]int{}, followerGoal: [2]int{0, 50}, subGoal: [2]int{0, 25},
		checkpoint: "Unknown", trainer: "Unknown", commits: 7}
}

// observe updates the stats with one event.
func (s *stats) observe(e events.Event) {
	switch e.Type() {
	case "channel.chat.message":
		s.messages++
		for _, key := range []string{"emotes", "native_emotes"} {
			list, _ := e[key].([]any)
			for _, x := range list {
				if name, ok := x.(string); ok {
					s.emotes[name]++
					s.totalEmotes++
				}
			}
		}
	case "channel.follow":
		s.follows++
		s.followerGoal[0]++
		if name := e.String("user_name"); name != "" {
			s.recentFollowers = append([]string{name}, s.recentFollowers...)
			if len(s.recentFollowers) > 10 {
				s.recentFollowers = s.recentFollowers[:10]
			}
		}
	case "channel.subscribe":
		s.subGoal[0]++
	case "channel.subscription.gift":
		if n, ok := e["total"].(float64); ok {
			s.subGoal[0] += int(n)
		} else {
			s.subGoal[0]++
		}
	case "ironmon.seed":
		s.runNumber++
		s.cleared, s.checkpoint, s.trainer = 0, "LAB", "Rival"
	case "ironmon.checkpoint":
		s.cleared++
		s.checkpoint = e.String("checkpoint_name")
		s.trainer = e.String("location_name")
		s.lastClearedSeed = e["seed_count"]
	case "obs.scene_changed":
		if e.String("scene_name") == "Coding" {
			s.commits++
		}
	}
}

// content returns the ticker content of type name: its data fields.
func (s *stats) content(name string, now time.Time) map[string]any {
	switch name {
	case "emote_stats":
		type kv struct {
			k string
			v int
		}
		list := make([]kv, 0, len(s.emotes))
		for k, v := range s.emotes {
			list = append(list, kv{k, v})
		}
		sort.Slice(list, func(i, j int) bool {
			if list[i].v != list[j].v {
				return list[i].v > list[j].v
			}
			return list[i].k < list[j].k
		})
		top := []any{}
		for i := 0; i < len(list) && i < 5; i++ {
			top = append(top, map[string]any{"emote": list[i].k, "count": list[i].v})
		}
		return map[string]any{"top_emotes": top, "total_emotes": s.totalEmotes}
	case "recent_follows":
		names := make([]any, 0, len(s.recentFollowers))
		for _, n := range s.recentFollowers {
			names = append(names, n)
		}
		return map[string]any{"recent_followers": names, "total_follows": s.follows}
	case "stream_goals":
		return map[string]any{
			"follower_goal": map[string]any{"current": s.followerGoal[0], "target": s.followerGoal[1]},
			"sub_goal":      map[string]any{"current": s.subGoal[0], "target": s.subGoal[1]},
		}
	case "daily_stats":
		return map[string]any{"total_messages": s.messages, "total_follows": s.follows,
			"started_at": events.FormatTime(s.started)}
	case "ironmon_run_stats":
		rate := 0.0
		if s.runNumber > 0 {
			rate = float64(s.cleared) / 22
		}
		return map[string]any{"run_number": s.runNumber, "checkpoints_cleared": s.cleared,
			"current_checkpoint": s.checkpoint, "clear_rate": rate}
	case "ironmon_progression":
		return map[string]any{"has_active_run": s.runNumber > 0, "current_checkpoint": s.checkpoint,
			"trainer": s.trainer, "clear_rate_percentage": float64(s.cleared) / 22 * 100,
			"last_cleared_seed": s.lastClearedSeed}
	case "commit_stats":
		return map[string]any{"commits_today": s.commits, "lines_added": 40 * s.commits, "lines_removed": 12 * s.commits}
	case "build_status":
		return map[string]any{"status": "passing", "last_build": events.FormatTime(now.Add(-4 * time.Minute)),
			"duration_seconds": 83}
	}
	return map[string]any{"message": "Content temporarily unavailable", "type": name, "fallback": true}
}

// eventBase returns the base layer content for a "meaningful" activity
// event, or nil.
func eventBase(e events.Event) map[string]any {
	var b map[string]any
	switch e.Type() {
	case "channel.follow":
		b = map[string]any{"user_name": e["user_name"], "followed_at": e["followed_at"]}
	case "channel.subscribe":
		b = map[string]any{"user_name": e["user_name"], "tier": e["tier"], "subscribed_at": e["timestamp"]}
	case "channel.subscription.gift":
		b = map[string]any{"user_name": e["user_name"], "tier": e["tier"], "total": e["total"], "gifted_at": e["timestamp"]}
	case "channel.cheer":
		b = map[string]any{"user_name": e["user_name"], "bits": e["bits"], "cheered_at": e["timestamp"]}
	default:
		return nil
	}
	b["type"] = e.Type()
	return b
}
