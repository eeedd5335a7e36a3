package channels

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/presence"
)

// OverlayInfo describes one joined overlay channel.
type OverlayInfo struct {
	// Topic is the joined topic: "overlay:<type>" or "stream:overlays".
	Topic string `json:"topic"`
	// Name is the overlay type, or for stream:overlays the join param
	// overlay_type (default "Takeover"), as Landale's OverlayTracker names it.
	Name string `json:"name"`
	// CorrelationID is the connection's correlation id.
	CorrelationID string `json:"correlation_id"`
	// Environment is the socket param environment ("unknown" when absent).
	Environment string `json:"environment"`
	// JoinedAt is the join time.
	JoinedAt time.Time `json:"joined_at"`
}

// PresenceTopic is the topic overlays are tracked in with Phoenix-style
// presence. The dashboard joins it (it routes to DashboardChannel) and
// keeps the list with phoenix.js's Presence class: presence_state after the
// join, presence_diff on every change, on every node of a cluster.
const PresenceTopic = "dashboard:overlays"

// Tracker records which overlays are joined (Landale's OverlayTracker,
// extended to overlay:* topics) with presence.Tracker, so that the list is
// the same on every node and the dashboard sees it change live. The
// presence tracker is created on the first join, from the channel's
// server. It is safe for concurrent use.
type Tracker struct {
	mu     sync.Mutex
	p      *presence.Tracker
	logger *slog.Logger
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{logger: slog.New(slog.DiscardHandler)} }

// presence returns the presence tracker, creating it for s's server.
func (t *Tracker) presence(s *channel.Socket) (*presence.Tracker, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p == nil {
		p, err := presence.New(context.WithoutCancel(s.Context()), &presence.Options{Server: s.Server(), Logger: s.Logger()})
		if err != nil {
			return nil, err
		}
		t.p = p
	}
	return t.p, nil
}

// add tracks the overlay of s until its channel ends.
func (t *Tracker) add(s *channel.Socket, info OverlayInfo) {
	p, err := t.presence(s)
	if err == nil {
		_, err = p.TrackTopic(s, PresenceTopic, info.Name, map[string]any{
			"topic":          info.Topic,
			"correlation_id": info.CorrelationID,
			"environment":    info.Environment,
			"joined_at":      info.JoinedAt.Format(time.RFC3339Nano),
		})
	}
	if err != nil {
		s.Logger().LogAttrs(s.Context(), slog.LevelWarn, "overlay not tracked", slog.String("topic", s.Topic()), slog.Any("error", err))
	}
}

// PushState pushes presence_state of PresenceTopic to s.
func (t *Tracker) PushState(s *channel.Socket) error {
	p, err := t.presence(s)
	if err != nil {
		return err
	}
	return p.PushStateTopic(s, PresenceTopic)
}

// List returns the joined overlays on every node, oldest first.
func (t *Tracker) List() []OverlayInfo {
	t.mu.Lock()
	p := t.p
	t.mu.Unlock()
	if p == nil {
		return []OverlayInfo{}
	}
	out := []OverlayInfo{}
	for name, pr := range p.List(PresenceTopic) {
		for _, m := range pr.Metas {
			info := OverlayInfo{Name: name}
			info.Topic, _ = m["topic"].(string)
			info.CorrelationID, _ = m["correlation_id"].(string)
			info.Environment, _ = m["environment"].(string)
			if at, ok := m["joined_at"].(string); ok {
				info.JoinedAt, _ = time.Parse(time.RFC3339Nano, at)
			}
			out = append(out, info)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].JoinedAt.Equal(out[j].JoinedAt) {
			return out[i].JoinedAt.Before(out[j].JoinedAt)
		}
		return out[i].Topic < out[j].Topic
	})
	return out
}

// Shutdown stops the presence tracker, telling other nodes to drop this
// node's overlays at once. Call it after the server's Shutdown.
func (t *Tracker) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	p := t.p
	t.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Shutdown(ctx)
}

// Close stops the presence tracker at once.
func (t *Tracker) Close() error {
	t.mu.Lock()
	p := t.p
	t.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Close()
}
