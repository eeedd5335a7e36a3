// Package activity is the Landale example's activity log (Landale's
// Server.ActivityLog): the events worth keeping for the dashboard's Activity
// Log and the Python services, taken from the event bus and kept in memory.
//
// A Log subscribes to the PubSub topic "events", so with several nodes on
// one broker every node's log holds every node's events, each once (an
// event is published once, by the node it happened on).
package activity

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/pubsub"
)

// DefaultSize is the default number of entries a Log keeps.
const DefaultSize = 5000

// Stored lists the event types Landale stores in its activity log: every
// Twitch EventSub type, OBS stream/recording/scene events, IronMON game
// events, Rainwave song and station changes and service start/stop. Health
// checks, performance metrics and stream producer events are not kept.
var Stored = map[string]bool{}

func init() {
	for _, t := range []string{
		"stream.online", "stream.offline", "channel.update", "channel.follow",
		"channel.subscribe", "channel.subscription.end", "channel.subscription.gift", "channel.subscription.message",
		"channel.cheer", "channel.raid",
		"channel.chat.clear", "channel.chat.clear_user_messages", "channel.chat.message", "channel.chat.message_delete",
		"channel.chat.notification", "channel.chat_settings.update",
		"channel.channel_points_custom_reward.add", "channel.channel_points_custom_reward.update",
		"channel.channel_points_custom_reward.remove", "channel.channel_points_custom_reward_redemption.add",
		"channel.channel_points_custom_reward_redemption.update",
		"channel.poll.begin", "channel.poll.progress", "channel.poll.end",
		"channel.prediction.begin", "channel.prediction.progress", "channel.prediction.lock", "channel.prediction.end",
		"channel.charity_campaign.donate", "channel.charity_campaign.progress",
		"channel.hype_train.begin", "channel.hype_train.progress", "channel.hype_train.end",
		"channel.goal.begin", "channel.goal.progress", "channel.goal.end",
		"channel.shoutout.create", "channel.shoutout.receive", "channel.vip.add", "channel.vip.remove",
		"channel.ad_break.begin", "user.update",
		"obs.stream_started", "obs.stream_stopped", "obs.recording_started", "obs.recording_stopped",
		"obs.scene_changed", "obs.websocket_event",
		"ironmon.init", "ironmon.checkpoint", "ironmon.battle_start", "ironmon.battle_end",
		"ironmon.run_started", "ironmon.run_checkpoint",
		"rainwave.song_changed", "rainwave.station_changed",
		"system.service_started", "system.service_stopped",
	} {
		Stored[t] = true
	}
}

// Entry is one stored event in the shape of Landale's ActivityLog
// controller: data is the whole normalized event.
type Entry struct {
	ID            string       `json:"id"`
	Timestamp     string       `json:"timestamp"`
	EventType     string       `json:"event_type"`
	UserID        any          `json:"user_id"`
	UserLogin     any          `json:"user_login"`
	UserName      any          `json:"user_name"`
	Data          events.Event `json:"data"`
	CorrelationID any          `json:"correlation_id"`

	at time.Time
}

// Query selects entries. Zero values select everything.
type Query struct {
	// Limit caps the number of entries (newest first); 0 means all.
	Limit int
	// EventType keeps only this type.
	EventType string
	// UserID keeps only this user.
	UserID string
	// Since keeps entries at or after it.
	Since time.Time
}

// Log is a bounded, in-memory activity log. Start subscribes it to the bus.
type Log struct {
	ps   pubsub.PubSub
	size int
	sub  *pubsub.SubscriberFunc

	mu      sync.Mutex
	entries []Entry // a ring of up to size entries
	next    int     // where the next entry goes once the ring is full
	ids     map[string]bool
}

// New returns a Log keeping up to size entries (DefaultSize when size <= 0)
// of the events published on ps.
func New(ps pubsub.PubSub, size int) *Log {
	if size <= 0 {
		size = DefaultSize
	}
	l := &Log{ps: ps, size: size, ids: map[string]bool{}}
	f := pubsub.SubscriberFunc(func(msg *pubsub.Message) {
		if e, ok := events.Decode(msg); ok {
			l.Add(e)
		}
	})
	l.sub = &f
	return l
}

// Start subscribes the log to the events topic.
func (l *Log) Start(ctx context.Context) error {
	return l.ps.Subscribe(ctx, events.TopicEvents, l.sub)
}

// Close unsubscribes the log.
func (l *Log) Close() { _ = l.ps.Unsubscribe(context.Background(), events.TopicEvents, l.sub) }

// Add stores e if its type is one Landale keeps and its id is new; it
// reports whether it stored it.
func (l *Log) Add(e events.Event) bool {
	typ := e.Type()
	if !Stored[typ] {
		return false
	}
	id := e.String("id")
	ts := e.String("timestamp")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		at = time.Now()
	}
	en := Entry{ID: id, Timestamp: ts, EventType: typ, UserID: e["user_id"], UserLogin: e["user_login"],
		UserName: e["user_name"], Data: e, CorrelationID: e["correlation_id"], at: at}
	l.mu.Lock()
	defer l.mu.Unlock()
	if id != "" && l.ids[id] {
		return false
	}
	if len(l.entries) < l.size {
		l.entries = append(l.entries, en)
	} else {
		delete(l.ids, l.entries[l.next].ID)
		l.entries[l.next] = en
		l.next = (l.next + 1) % l.size
	}
	if id != "" {
		l.ids[id] = true
	}
	return true
}

// List returns the entries selected by q, newest first (by timestamp).
func (l *Log) List(q Query) []Entry {
	l.mu.Lock()
	out := make([]Entry, 0, min(len(l.entries), max(q.Limit, 16)))
	n := len(l.entries)
	for k := 1; k <= n; k++ { // newest stored first
		en := l.entries[(l.next-k+n)%n]
		if q.EventType != "" && en.EventType != q.EventType {
			continue
		}
		if q.UserID != "" && en.UserID != q.UserID {
			continue
		}
		if !q.Since.IsZero() && en.at.Before(q.Since) {
			continue
		}
		out = append(out, en)
	}
	l.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.After(out[j].at) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

// Stats is Landale's get_activity_stats: counts over the entries since.
func (l *Log) Stats(since time.Time) map[string]any {
	users := map[any]bool{}
	counts := map[string]int{}
	total := 0
	for _, en := range l.List(Query{Since: since}) {
		total++
		if en.UserID != nil {
			users[en.UserID] = true
		}
		counts[en.EventType]++
	}
	return map[string]any{
		"total_events":  total,
		"unique_users":  len(users),
		"chat_messages": counts["channel.chat.message"],
		"follows":       counts["channel.follow"],
		"subscriptions": counts["channel.subscribe"],
		"cheers":        counts["channel.cheer"],
	}
}

// MostActive is Landale's get_most_active_users: chat message counts per
// user_login since, highest first, at most n.
func (l *Log) MostActive(since time.Time, n int) []map[string]any {
	counts := map[string]int{}
	for _, en := range l.List(Query{Since: since, EventType: "channel.chat.message"}) {
		if login, ok := en.UserLogin.(string); ok && login != "" {
			counts[login]++
		}
	}
	logins := make([]string, 0, len(counts))
	for k := range counts {
		logins = append(logins, k)
	}
	sort.Slice(logins, func(i, j int) bool {
		if counts[logins[i]] != counts[logins[j]] {
			return counts[logins[i]] > counts[logins[j]]
		}
		return logins[i] < logins[j]
	})
	out := []map[string]any{}
	for i, login := range logins {
		if i == n {
			break
		}
		out = append(out, map[string]any{"user_login": login, "message_count": counts[login]})
	}
	return out
}
