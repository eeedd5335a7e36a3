package sim

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Station is a Rainwave station.
type Station struct {
	ID   int
	Name string
}

// Stations are Rainwave's stations.
var Stations = []Station{{1, "Game"}, {2, "Covers"}, {3, "OC ReMix"}, {4, "Chiptune"}, {5, "All"}}

// Song is a track played on Rainwave.
type Song struct {
	ID                   int
	Title, Artist, Album string
	Length               int // seconds
}

// Songs is the simulated Rainwave rotation.
var Songs = []Song{
	{123, "Corridors of Time", "Yasunori Mitsuda", "Chrono Trigger", 230},
	{124, "Gusty Garden Galaxy", "Mahito Yokota", "Super Mario Galaxy", 198},
	{125, "Aquatic Ambience", "David Wise", "Donkey Kong Country", 236},
	{126, "Dearly Beloved", "Yoko Shimomura", "Kingdom Hearts", 171},
	{127, "Route 113", "Go Ichinose", "Pokémon Ruby & Sapphire", 152},
	{128, "Zanarkand", "Nobuo Uematsu", "Final Fantasy X", 305},
	{129, "Wily's Castle", "Takashi Tateishi", "Mega Man 2", 117},
	{130, "Song of Storms", "Koji Kondo", "The Legend of Zelda: Ocarina of Time", 96},
}

// RainwaveSim simulates Landale's Rainwave service.
type RainwaveSim struct {
	ctl  *Controller
	emit Emitter
	now  func() time.Time

	mu        sync.Mutex
	enabled   bool
	listening bool
	station   Station
	song      int // index into Songs
	songStart time.Time
}

// NewRainwave returns an enabled Rainwave on station Covers, not listening.
func NewRainwave(ctl *Controller, emit Emitter, now func() time.Time) *RainwaveSim {
	if now == nil {
		now = time.Now
	}
	return &RainwaveSim{ctl: ctl, emit: emit, now: now, enabled: true, station: Stations[1], songStart: now()}
}

func (r *RainwaveSim) statusLocked() map[string]any {
	s := Songs[r.song]
	return map[string]any{
		"enabled":        r.enabled,
		"listening":      r.listening,
		"station_id":     r.station.ID,
		"station_name":   r.station.Name,
		"api_configured": true,
		"current_song": map[string]any{
			"id": s.ID, "title": s.Title, "artist": s.Artist, "album": s.Album,
			"length": s.Length, "start_time": r.songStart.Unix(),
			"url": fmt.Sprintf("https://rainwave.cc/pages/song/%d", s.ID),
		},
	}
}

// Status returns the service status.
func (r *RainwaveSim) Status(ctx context.Context) (map[string]any, error) {
	if err := r.ctl.Gate(ctx, Rainwave); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statusLocked(), nil
}

// SetEnabled turns the integration on or off; Landale's answers :ok.
func (r *RainwaveSim) SetEnabled(ctx context.Context, enabled bool) error {
	if err := r.ctl.Gate(ctx, Rainwave); err != nil {
		return err
	}
	r.mu.Lock()
	r.enabled = enabled
	if !enabled {
		r.listening = false
	}
	r.mu.Unlock()
	r.publishUpdate(ctx)
	return nil
}

// SetStation switches the station; id may be a number or a numeric string.
func (r *RainwaveSim) SetStation(ctx context.Context, id any) error {
	if err := r.ctl.Gate(ctx, Rainwave); err != nil {
		return err
	}
	n, ok := stationID(id)
	var st Station
	for _, s := range Stations {
		if ok && s.ID == n {
			st = s
		}
	}
	if st.ID == 0 {
		return &ServiceError{Service: Rainwave, Reason: "invalid_station", Message: fmt.Sprintf("Invalid station ID: %v", id)}
	}
	r.mu.Lock()
	prev := r.station.ID
	r.station = st
	r.mu.Unlock()
	if prev != st.ID {
		r.publish(ctx, "rainwave.station_changed", map[string]any{"station_id": st.ID, "station_name": st.Name,
			"previous_station_id": prev, "listening": r.Listening()})
	}
	r.publishUpdate(ctx)
	return nil
}

func stationID(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		return int(x), x == float64(int(x))
	case int:
		return x, true
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

// Listening reports whether the streamer is listening.
func (r *RainwaveSim) Listening() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listening
}

// NextSong advances to the next song and starts listening (demo
// generator); it emits rainwave.update.
func (r *RainwaveSim) NextSong(ctx context.Context) {
	if r.ctl.Mode(Rainwave) != Up {
		return
	}
	r.mu.Lock()
	if !r.enabled {
		r.mu.Unlock()
		return
	}
	r.song = (r.song + 1) % len(Songs)
	r.songStart = r.now()
	r.listening = true
	r.mu.Unlock()
	r.publishUpdate(ctx)
}

func (r *RainwaveSim) publishUpdate(ctx context.Context) {
	r.mu.Lock()
	st := r.statusLocked()
	r.mu.Unlock()
	r.publish(ctx, "rainwave.update", st)
}

func (r *RainwaveSim) publish(ctx context.Context, typ string, data map[string]any) {
	if r.emit != nil {
		_, _ = r.emit.Publish(context.WithoutCancel(ctx), typ, data)
	}
}
