package sim

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// viewer is a simulated chatter.
type viewer struct {
	id, login, name, color string
	subMonths              int
}

var viewers = []viewer{
	{"789012", "follower", "Follower", "#FF0000", 0},
	{"41245072", "pixelpaladin", "PixelPaladin", "#1E90FF", 14},
	{"58213974", "nightowl_codes", "NightOwl_Codes", "#9ACD32", 3},
	{"63719284", "gophergal", "GopherGal", "#00CED1", 27},
	{"70125533", "elixirwizard", "ElixirWizard", "#8A2BE2", 0},
	{"81234411", "kanto_runner", "Kanto_Runner", "#FF7F50", 8},
	{"92817364", "lofi_llama", "lofi_llama", "#DAA520", 0},
	{"10293847", "segfault_sam", "SegfaultSam", "#2E8B57", 1},
	{"11223344", "avalonfan", "AvalonFan", "#FF69B4", 40},
	{"55667788", "quietlurker", "QuietLurker", "", 0},
}

var chatLines = []string{
	"Hello avalonHype", "what are we building today?", "pyre looks sick", "is that a mailbox per channel?",
	"LUL", "how does the batcher flush?", "GG", "avalonSmile avalonSmile", "first time here, hi!",
	"does it speak phoenix.js unchanged?", "Kappa", "the rate limiter is 50 per 10s right?",
	"PogChamp that reconnect", "backpressure gang", "avalonHeart", "what font is that?",
}

var transcriptLines = []string{
	"okay so the next thing we need is the rate limiter on the dashboard channel",
	"fifty commands per ten seconds, and the fifty-first one gets backpressure",
	"let's see if the overlay picks up the follow event",
	"thank you so much for the follow",
	"the circuit breaker should open after a few failures",
	"and now OBS is down, so the status falls back",
	"let me switch to the IronMON scene real quick",
	"that is the whole point of the mailbox, nothing runs concurrently per channel",
}

// DemoOptions configure a Demo. Zero values mean the defaults.
type DemoOptions struct {
	// Rate is the number of events per second. Defaults to 2.
	Rate float64
	// Seed seeds the random choices. Defaults to 1.
	Seed uint64
	// Transcribe submits a transcription line, if set.
	Transcribe func(ctx context.Context, text string)
	// Logger receives publish failures. Defaults to discarding.
	Logger *slog.Logger
}

// Demo emits a plausible stream of events at a steady rate: chat (most of
// it), follows, subs, gifts, cheers, raids, goals, scene changes, song
// changes, IronMON progress, health checks and transcriptions.
type Demo struct {
	w    *World
	opts DemoOptions
	rng  *rand.Rand

	stepMu sync.Mutex // serializes Step (rng is not safe for concurrent use)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	msgN   int
	goal   int
}

// NewDemo returns a stopped generator over the world's services.
func NewDemo(w *World, opts *DemoOptions) *Demo {
	var o DemoOptions
	if opts != nil {
		o = *opts
	}
	if o.Rate <= 0 {
		o.Rate = 2
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Demo{w: w, opts: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))}
}

// Start starts the generator's goroutine; it runs until Stop or ctx ends.
// Starting a running generator does nothing.
func (d *Demo) Start(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done != nil {
		return
	}
	ctx, d.cancel = context.WithCancel(ctx)
	d.done = make(chan struct{})
	go d.run(ctx, d.done)
}

// Running reports whether the generator runs.
func (d *Demo) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done != nil
}

// Rate returns the events per second.
func (d *Demo) Rate() float64 { return d.opts.Rate }

// Stop stops the generator and waits for its goroutine.
func (d *Demo) Stop() {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.cancel, d.done = nil, nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (d *Demo) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(time.Duration(float64(time.Second) / d.opts.Rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.Step(ctx)
		}
	}
}

// Step emits one random event (exported so tests can drive it).
func (d *Demo) Step(ctx context.Context) {
	d.stepMu.Lock()
	defer d.stepMu.Unlock()
	roll := d.rng.IntN(1000)
	switch {
	case roll < 560:
		d.chat(ctx)
	case roll < 650:
		d.follow(ctx)
	case roll < 700:
		d.subscribe(ctx)
	case roll < 720:
		d.gift(ctx)
	case roll < 760:
		d.cheer(ctx)
	case roll < 770:
		d.raid(ctx)
	case roll < 800:
		d.goalProgress(ctx)
	case roll < 820:
		scene := OBSScenes[d.rng.IntN(len(OBSScenes))]
		_, _ = d.w.OBS.SetCurrentScene(ctx, scene)
	case roll < 860:
		d.w.Rainwave.NextSong(ctx)
	case roll < 900:
		if d.w.Ctl.Mode(Ironmon) == Up {
			typ, data := d.w.Ironmon.RunStep(d.rng.IntN(1000))
			d.publish(ctx, typ, data)
		}
	case roll < 930:
		d.health(ctx)
	default:
		if d.opts.Transcribe != nil {
			d.opts.Transcribe(ctx, transcriptLines[d.rng.IntN(len(transcriptLines))])
		}
	}
}

func (d *Demo) publish(ctx context.Context, typ string, data map[string]any) {
	if _, err := d.w.Emit.Publish(ctx, typ, data); err != nil {
		d.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "demo event rejected", slog.String("type", typ), slog.Any("error", err))
	}
}

func (d *Demo) viewer() viewer { return viewers[d.rng.IntN(len(viewers))] }

func withBroadcaster(m map[string]any) map[string]any {
	m["broadcaster_user_id"] = BroadcasterID
	m["broadcaster_user_login"] = BroadcasterLogin
	m["broadcaster_user_name"] = BroadcasterName
	return m
}

func withUser(m map[string]any, v viewer) map[string]any {
	m["user_id"], m["user_login"], m["user_name"] = v.id, v.login, v.name
	return withBroadcaster(m)
}

func (d *Demo) chat(ctx context.Context) {
	v := d.viewer()
	line := chatLines[d.rng.IntN(len(chatLines))]
	d.mu.Lock()
	d.msgN++
	n := d.msgN
	d.mu.Unlock()
	var fragments []any
	for i, word := range strings.Fields(line) {
		sep := " "
		if i == len(strings.Fields(line))-1 {
			sep = ""
		}
		if strings.HasPrefix(word, "avalon") || word == "LUL" || word == "Kappa" || word == "PogChamp" {
			fragments = append(fragments, map[string]any{"type": "emote", "text": word,
				"emote": map[string]any{"id": fmt.Sprintf("emotesv2_%x", len(word)*7919), "emote_set_id": "0"}})
			if sep != "" {
				fragments = append(fragments, map[string]any{"type": "text", "text": sep})
			}
			continue
		}
		fragments = append(fragments, map[string]any{"type": "text", "text": word + sep})
	}
	badges := []any{}
	if v.subMonths > 0 {
		badges = append(badges, map[string]any{"set_id": "subscriber", "id": fmt.Sprint(v.subMonths), "info": fmt.Sprint(v.subMonths)})
	}
	d.publish(ctx, "channel.chat.message", withBroadcaster(map[string]any{
		"message_id":         fmt.Sprintf("cc106a89-1814-919d-454c-%012x", n),
		"chatter_user_id":    v.id,
		"chatter_user_login": v.login,
		"chatter_user_name":  v.name,
		"message":            map[string]any{"text": line, "fragments": fragments},
		"color":              v.color,
		"badges":             badges,
		"message_type":       "text",
	}))
}

func (d *Demo) follow(ctx context.Context) {
	v := d.viewer()
	d.publish(ctx, "channel.follow", withUser(map[string]any{"followed_at": time.Now().UTC().Format(time.RFC3339)}, v))
}

func (d *Demo) subscribe(ctx context.Context) {
	tiers := []string{"1000", "1000", "1000", "2000", "3000"}
	d.publish(ctx, "channel.subscribe", withUser(map[string]any{"tier": tiers[d.rng.IntN(len(tiers))], "is_gift": false}, d.viewer()))
}

func (d *Demo) gift(ctx context.Context) {
	total := []int{1, 5, 10, 20}[d.rng.IntN(4)]
	d.publish(ctx, "channel.subscription.gift", withUser(map[string]any{"tier": "1000", "total": total,
		"cumulative_total": total * 3, "is_anonymous": d.rng.IntN(5) == 0}, d.viewer()))
}

func (d *Demo) cheer(ctx context.Context) {
	bits := []int{100, 100, 250, 500, 1000}[d.rng.IntN(5)]
	d.publish(ctx, "channel.cheer", withUser(map[string]any{"bits": bits, "is_anonymous": false,
		"message": fmt.Sprintf("Cheer%d nice", bits)}, d.viewer()))
}

func (d *Demo) raid(ctx context.Context) {
	v := d.viewer()
	d.publish(ctx, "channel.raid", map[string]any{
		"from_broadcaster_user_id": v.id, "from_broadcaster_user_login": v.login, "from_broadcaster_user_name": v.name,
		"to_broadcaster_user_id": BroadcasterID, "to_broadcaster_user_login": BroadcasterLogin,
		"to_broadcaster_user_name": BroadcasterName, "viewers": 5 + d.rng.IntN(120),
	})
}

func (d *Demo) goalProgress(ctx context.Context) {
	d.mu.Lock()
	d.goal += 1 + d.rng.IntN(3)
	cur := d.goal
	d.mu.Unlock()
	const target = 50
	base := map[string]any{"id": "12345-abcde-goal", "type": "follower", "description": "Road to 50 new followers",
		"target_amount": target, "started_at": "2025-08-25T15:00:00Z"}
	switch {
	case cur <= 3:
		base["current_amount"] = cur
		d.publish(ctx, "channel.goal.begin", withBroadcaster(base))
	case cur >= target:
		base["current_amount"] = target
		base["is_achieved"] = true
		base["ended_at"] = time.Now().UTC().Format(time.RFC3339)
		d.publish(ctx, "channel.goal.end", withBroadcaster(base))
		d.mu.Lock()
		d.goal = 0
		d.mu.Unlock()
	default:
		base["current_amount"] = cur
		d.publish(ctx, "channel.goal.progress", withBroadcaster(base))
	}
}

func (d *Demo) health(ctx context.Context) {
	if d.rng.IntN(2) == 0 {
		d.publish(ctx, "system.performance_metric", map[string]any{"metric": "ws_latency", "value": 3 + d.rng.Float64()*9,
			"unit": "ms", "component": "phononmaser", "metadata": map[string]any{"hostname": "saya", "environment": "development"}})
		return
	}
	svc := []string{"phononmaser", "seed"}[d.rng.IntN(2)]
	d.publish(ctx, "system.health_check", map[string]any{"service": svc, "status": "healthy",
		"details": map[string]any{"checks_passed": 5, "checks_failed": 0, "uptime": 3600 + d.rng.IntN(7200),
			"memory_usage": 12.5, "cpu_usage": 2.1, "disk_usage": 41.0, "error_count": 0}})
}
