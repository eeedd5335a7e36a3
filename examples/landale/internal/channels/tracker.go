package channels

import (
	"sort"
	"sync"
	"time"
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

// Tracker records which overlays are joined (Landale's OverlayTracker,
// extended to overlay:* topics). It is safe for concurrent use.
type Tracker struct {
	mu   sync.Mutex
	next uint64
	list map[uint64]OverlayInfo
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{list: map[uint64]OverlayInfo{}} }

// add records an overlay and returns the key that removes it.
func (t *Tracker) add(info OverlayInfo) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.list[t.next] = info
	return t.next
}

func (t *Tracker) remove(key uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.list, key)
}

// List returns the joined overlays, oldest first.
func (t *Tracker) List() []OverlayInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]uint64, 0, len(t.list))
	for k := range t.list {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	out := make([]OverlayInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, t.list[k])
	}
	return out
}
