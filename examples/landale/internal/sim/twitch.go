package sim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// The simulated broadcaster, as in the fixtures of the spec.
const (
	BroadcasterID    = "123456"
	BroadcasterLogin = "streamer"
	BroadcasterName  = "Streamer"
)

// Category is a Twitch game/category.
type Category struct {
	ID, Name string
}

// Categories is the simulated Twitch category catalog; the first three map
// to the shows ironmon, coding and variety.
var Categories = []Category{
	{"490100", "Pokémon FireRed/LeafGreen"},
	{"509658", "Software and Game Development"},
	{"509660", "Just Chatting"},
	{"1469308723", "Software and Game Development: Open Source"},
	{"27471", "Minecraft"},
	{"33214", "Fortnite"},
	{"21779", "League of Legends"},
	{"491931", "Escape From Tarkov"},
	{"516575", "VALORANT"},
	{"26936", "Music"},
	{"509670", "Science & Technology"},
	{"1745202732", "Pokémon Scarlet and Violet"},
}

// TwitchSim simulates Landale's Twitch service: EventSub status and the
// Helix channel endpoints.
type TwitchSim struct {
	ctl  *Controller
	emit Emitter
	now  func() time.Time

	mu        sync.Mutex
	info      channelInfo
	sessionID string
	since     time.Time
}

type channelInfo struct {
	title    string
	gameID   string
	language string
	delay    int
	tags     []string
	branded  bool
}

// NewTwitch returns a connected Twitch service with a Just Chatting stream
// set up: the category Landale's StreamProducer maps to its starting show,
// variety, so the simulated channel and the producer agree from the start.
func NewTwitch(ctl *Controller, emit Emitter, now func() time.Time) *TwitchSim {
	if now == nil {
		now = time.Now
	}
	return &TwitchSim{ctl: ctl, emit: emit, now: now,
		info: channelInfo{title: "Chatting about Phoenix Channels in Go", gameID: "509660", language: "en",
			tags: []string{"English", "Programming", "Go"}},
		sessionID: "AQoQexAWVYKSTIu4ec_2VAxyuhAB", since: now()}
}

// Subscriptions is the number of EventSub subscriptions the service holds.
const Subscriptions = 24

// Status returns the EventSub connection status.
func (t *TwitchSim) Status(ctx context.Context) (map[string]any, error) {
	if err := t.ctl.Gate(ctx, Twitch); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return map[string]any{
		"connected":          true,
		"connection_state":   "connected",
		"session_id":         t.sessionID,
		"last_connected":     t.since.UTC().Format(time.RFC3339),
		"subscription_count": Subscriptions,
		"subscriptions": map[string]any{
			"total_subscriptions":   Subscriptions,
			"enabled_subscriptions": Subscriptions,
		},
		"websocket_url": "wss://eventsub.wss.twitch.tv/ws",
	}, nil
}

func categoryName(id string) (string, bool) {
	for _, c := range Categories {
		if c.ID == id {
			return c.Name, true
		}
	}
	return "", false
}

// ChannelInfo returns Helix "Get Channel Information" data: a list with
// one channel.
func (t *TwitchSim) ChannelInfo(ctx context.Context) ([]any, error) {
	if err := t.ctl.Gate(ctx, Twitch); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return []any{t.infoLocked()}, nil
}

func (t *TwitchSim) infoLocked() map[string]any {
	in := t.info
	name, _ := categoryName(in.gameID)
	return map[string]any{
		"broadcaster_id":                BroadcasterID,
		"broadcaster_login":             BroadcasterLogin,
		"broadcaster_name":              BroadcasterName,
		"broadcaster_language":          in.language,
		"game_id":                       in.gameID,
		"game_name":                     name,
		"title":                         in.title,
		"delay":                         in.delay,
		"tags":                          append([]string{}, in.tags...),
		"content_classification_labels": []string{},
		"is_branded_content":            in.branded,
	}
}

// ChannelFields are the fields Helix "Modify Channel Information" accepts.
var ChannelFields = []string{"game_id", "broadcaster_language", "title", "delay", "tags", "branded_content"}

// UpdateChannelInfo applies Helix "Modify Channel Information" and, like
// Twitch, emits a channel.update event.
func (t *TwitchSim) UpdateChannelInfo(ctx context.Context, fields map[string]any) error {
	if err := t.ctl.Gate(ctx, Twitch); err != nil {
		return err
	}
	bad := func(msg string) error {
		return &ServiceError{Service: Twitch, Reason: "bad_request", Message: "Twitch API error 400: " + msg}
	}
	t.mu.Lock()
	next := t.info
	for k, v := range fields {
		switch k {
		case "game_id":
			id := fmt.Sprint(v)
			if _, ok := categoryName(id); !ok && id != "0" && id != "" {
				t.mu.Unlock()
				return bad("The ID in game_id is not valid.")
			}
			next.gameID = id
		case "broadcaster_language":
			s, ok := v.(string)
			if !ok || len(s) > 10 {
				t.mu.Unlock()
				return bad("The value in broadcaster_language is not valid.")
			}
			next.language = s
		case "title":
			s, ok := v.(string)
			if !ok || strings.TrimSpace(s) == "" || len(s) > 140 {
				t.mu.Unlock()
				return bad("The title field may not be empty or longer than 140 characters.")
			}
			next.title = s
		case "delay":
			n, ok := v.(float64)
			if !ok || n < 0 || n > 900 || n != float64(int(n)) {
				t.mu.Unlock()
				return bad("The value in delay is not valid.")
			}
			next.delay = int(n)
		case "tags":
			list, ok := v.([]any)
			if !ok || len(list) > 10 {
				t.mu.Unlock()
				return bad("The tags field may contain a maximum of 10 tags.")
			}
			tags := make([]string, 0, len(list))
			for _, x := range list {
				s, ok := x.(string)
				if !ok || s == "" || len(s) > 25 {
					t.mu.Unlock()
					return bad("A tag may not be empty or longer than 25 characters.")
				}
				tags = append(tags, s)
			}
			next.tags = tags
		case "branded_content":
			b, ok := v.(bool)
			if !ok {
				t.mu.Unlock()
				return bad("The value in branded_content is not valid.")
			}
			next.branded = b
		}
	}
	t.info = next
	name, _ := categoryName(next.gameID)
	ev := map[string]any{
		"broadcaster_user_id": BroadcasterID, "broadcaster_user_login": BroadcasterLogin,
		"broadcaster_user_name": BroadcasterName, "title": next.title, "language": next.language,
		"category_id": next.gameID, "category_name": name, "content_classification_labels": []any{},
	}
	t.mu.Unlock()
	if t.emit != nil {
		_, _ = t.emit.Publish(context.WithoutCancel(ctx), "channel.update", ev)
	}
	return nil
}

// SearchCategories returns Helix "Search Categories" data for query.
func (t *TwitchSim) SearchCategories(ctx context.Context, query string) ([]any, error) {
	if err := t.ctl.Gate(ctx, Twitch); err != nil {
		return nil, err
	}
	q := strings.ToLower(strings.TrimSpace(query))
	out := []any{}
	for _, c := range Categories {
		if q == "" || strings.Contains(strings.ToLower(c.Name), q) {
			out = append(out, map[string]any{
				"id":          c.ID,
				"name":        c.Name,
				"box_art_url": "https://static-cdn.jtvnw.net/ttv-boxart/" + c.ID + "-{width}x{height}.jpg",
			})
		}
	}
	return out, nil
}
