// Package stream is the Landale example's stream state producer (Landale's
// Server.StreamProducer): the omnibar state with its base, alerts, ticker
// and timeline layers, driven by the event stream, ticker rotation, alert
// expiry and the StreamChannel's commands.
//
// Every event other than stream.state_updated makes the producer publish a
// fresh stream.state_updated, which StreamChannels push as stream_state and
// queue_state.
//
// Several nodes: every node runs a producer fed by the cluster-wide event
// stream, so every node computes the same state. What a producer derives
// from that stream (stream.state_updated, stream.show_changed,
// stream.emote_increment) is published to its own node only, so each client
// gets it once. Commands reach every producer: remove_queue_item through
// the cluster-wide stream.interrupt_removed event, force_content through the
// cluster topic CommandTopic. Alerts derived from an event get an id derived
// from the event's id, so that the same alert has the same id on every node.
package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/pubsub"
)

// Priorities and default durations of Landale's StreamProducer.
const (
	PriorityAlert    = 100
	PrioritySubTrain = 50
	PriorityTicker   = 10
)

// Options configure a Producer. Zero values mean the defaults.
type Options struct {
	// TickerInterval rotates the ticker. Defaults to 15 s.
	TickerInterval time.Duration
	// AlertDuration is the life of an alert. Defaults to 10 s.
	AlertDuration time.Duration
	// SubTrainDuration is the life of a sub train. Defaults to 300 s.
	SubTrainDuration time.Duration
	// QueueSize bounds the events waiting for the producer; when it is full
	// new events are dropped (and counted): the next event refreshes the
	// state anyway. Defaults to 1024.
	QueueSize int
	// Logger receives dropped events and publish failures. Defaults to discarding.
	Logger *slog.Logger
}

type alert struct {
	id       string
	typ      string
	priority int
	duration time.Duration
	started  time.Time
	data     map[string]any
}

// Producer is the stream state machine. Start it, Close it.
type Producer struct {
	bus  *events.Bus
	ctl  *sim.Controller
	opts Options

	in      chan events.Event
	wake    chan struct{}
	dropped atomic.Uint64
	sub     *pubsub.SubscriberFunc
	cmdSub  *pubsub.SubscriberFunc
	id      string // BroadcastFrom id of this producer's commands

	mu        sync.Mutex
	show      string
	ticker    []string
	tickerIdx int
	base      map[string]any
	alerts    []*alert
	version   int
	updated   time.Time
	stats     stats

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// ErrUnavailable wraps the errors of calls made while the producer is
// simulated down or failing.
var ErrUnavailable = errors.New("stream: producer unavailable")

// New returns a stopped producer publishing through bus; ctl's "stream"
// mode decides whether it answers.
func New(bus *events.Bus, ctl *sim.Controller, opts *Options) *Producer {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TickerInterval <= 0 {
		o.TickerInterval = 15 * time.Second
	}
	if o.AlertDuration <= 0 {
		o.AlertDuration = 10 * time.Second
	}
	if o.SubTrainDuration <= 0 {
		o.SubTrainDuration = 300 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	now := time.Now()
	p := &Producer{bus: bus, ctl: ctl, opts: o, in: make(chan events.Event, o.QueueSize), id: "stream-producer:" + events.NewShortID(),
		wake: make(chan struct{}, 1), show: DefaultShow, ticker: defaultTicker(DefaultShow),
		updated: now, stats: newStats(now)}
	p.base = p.tickerBaseLocked(now)
	return p
}

// Start subscribes to the event stream and starts the producer's
// goroutine, which runs until Close.
func (p *Producer) Start(ctx context.Context) error {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	if p.done != nil {
		return nil
	}
	f := pubsub.SubscriberFunc(func(msg *pubsub.Message) {
		e, ok := events.Decode(msg)
		if !ok || e.Type() == "stream.state_updated" {
			return
		}
		select {
		case p.in <- e:
		default:
			p.dropped.Add(1)
		}
	})
	p.sub = &f
	if err := p.bus.PubSub().Subscribe(ctx, events.TopicEvents, p.sub); err != nil {
		return err
	}
	cf := pubsub.SubscriberFunc(func(msg *pubsub.Message) {
		if msg.From == p.id || msg.Event != forceEvent || msg.Binary {
			return // our own command was applied when it was given
		}
		var cmd forceCommand
		if err := json.Unmarshal(msg.Payload, &cmd); err != nil || cmd.ID == "" {
			return
		}
		select {
		case p.in <- events.Event{"type": forceEvent, "command": cmd}:
		default:
			p.dropped.Add(1)
		}
	})
	p.cmdSub = &cf
	if err := p.bus.PubSub().Subscribe(ctx, CommandTopic, p.cmdSub); err != nil {
		_ = p.bus.PubSub().Unsubscribe(context.WithoutCancel(ctx), events.TopicEvents, p.sub)
		return err
	}
	ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.done = make(chan struct{})
	go p.run(ctx, p.done)
	return nil
}

// Close stops the producer and waits for its goroutine.
func (p *Producer) Close() {
	p.runMu.Lock()
	cancel, done, sub := p.cancel, p.done, p.sub
	p.cancel, p.done = nil, nil
	p.runMu.Unlock()
	if done == nil {
		return
	}
	_ = p.bus.PubSub().Unsubscribe(context.Background(), events.TopicEvents, sub)
	_ = p.bus.PubSub().Unsubscribe(context.Background(), CommandTopic, p.cmdSub)
	cancel()
	<-done
}

// Dropped returns the number of events dropped at the full queue.
func (p *Producer) Dropped() uint64 { return p.dropped.Load() }

func (p *Producer) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(p.opts.TickerInterval)
	defer tick.Stop()
	expiry := time.NewTimer(time.Hour)
	expiry.Stop()
	defer expiry.Stop()
	for {
		var expC <-chan time.Time
		if d, ok := p.nextExpiry(); ok {
			expiry.Reset(d)
			expC = expiry.C
		} else {
			expiry.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case e := <-p.in:
			p.handle(ctx, e)
		case <-tick.C:
			p.rotate(ctx)
		case <-expC:
			p.expire(ctx)
		case <-p.wake:
		}
	}
}

func (p *Producer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// running reports whether the simulated producer is up enough to act.
func (p *Producer) running() bool {
	m := p.ctl.Mode(sim.Stream)
	return m == sim.Up || m == sim.Slow
}

func (p *Producer) nextExpiry() (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.alerts) == 0 {
		return 0, false
	}
	first := p.alerts[0].started.Add(p.alerts[0].duration)
	for _, a := range p.alerts[1:] {
		if t := a.started.Add(a.duration); t.Before(first) {
			first = t
		}
	}
	return max(time.Until(first), 0), true
}

func (p *Producer) expire(ctx context.Context) {
	now := time.Now()
	p.mu.Lock()
	n := len(p.alerts)
	p.alerts = slices.DeleteFunc(p.alerts, func(a *alert) bool { return !now.Before(a.started.Add(a.duration)) })
	changed := len(p.alerts) != n
	if changed {
		p.touchLocked(now)
	}
	p.mu.Unlock()
	if changed {
		p.emitState(ctx)
	}
}

func (p *Producer) rotate(ctx context.Context) {
	now := time.Now()
	p.mu.Lock()
	p.tickerIdx = (p.tickerIdx + 1) % len(p.ticker)
	quiet := len(p.alerts) == 0
	if quiet {
		p.base = p.tickerBaseLocked(now)
		p.touchLocked(now)
	}
	p.mu.Unlock()
	if quiet {
		p.emitState(ctx)
	}
}

func (p *Producer) tickerBaseLocked(now time.Time) map[string]any {
	name := p.ticker[p.tickerIdx]
	b := p.stats.content(name, now)
	b["type"] = name
	b["priority"] = PriorityTicker
	b["layer"] = Layer(name, p.show)
	b["started_at"] = events.FormatTime(now)
	return b
}

func (p *Producer) touchLocked(now time.Time) {
	p.version++
	p.updated = now
}

// handle reacts to one event of the stream.
func (p *Producer) handle(ctx context.Context, e events.Event) {
	if !p.running() {
		return
	}
	now := time.Now()
	if e.Type() == forceEvent {
		cmd, _ := e["command"].(forceCommand)
		p.mu.Lock()
		p.addAlertLocked(cmd.ID, "manual_override", cmd.Data, time.Duration(cmd.DurationMS)*time.Millisecond, now)
		p.touchLocked(now)
		p.mu.Unlock()
		p.emitState(ctx)
		return
	}
	var follow []func()
	p.mu.Lock()
	p.stats.observe(e)
	switch e.Type() {
	case "stream.interrupt_removed":
		// Given on one node; every node's copy of the alert goes.
		id := e.String("interrupt_id")
		p.alerts = slices.DeleteFunc(p.alerts, func(a *alert) bool { return a.id == id })
		p.signal()
	case "channel.subscribe", "channel.subscription.gift":
		p.subTrainLocked(e, now)
	case "channel.raid":
		p.addAlertLocked(derivedID(e, "raid"), "alert", map[string]any{"type": "raid_alert", "raider": e["from_broadcaster_user_name"],
			"viewers": e["viewers"]}, p.opts.AlertDuration, now)
	case "channel.cheer":
		if bits, _ := e["bits"].(float64); bits >= 500 {
			p.addAlertLocked(derivedID(e, "cheer"), "alert", map[string]any{"type": "cheer_celebration", "user_name": e["user_name"],
				"bits": e["bits"], "message": e["message"]}, p.opts.AlertDuration, now)
		}
	case "ironmon.checkpoint":
		if p.show == "ironmon" {
			p.addAlertLocked(derivedID(e, "checkpoint"), "alert", map[string]any{"type": "checkpoint_clear", "checkpoint_name": e["checkpoint_name"],
				"seed_id": e["seed_count"]}, 5*time.Second, now)
		}
	case "channel.update":
		show := showForGame(e.String("category_id"), e.String("category_name"))
		if show != p.show {
			p.show, p.ticker, p.tickerIdx = show, defaultTicker(show), 0
			p.base = p.tickerBaseLocked(now)
			data := map[string]any{"show": show, "game_id": e["category_id"], "game_name": e["category_name"],
				"title": e["title"], "changed_at": events.FormatTime(now)}
			follow = append(follow, func() { p.publishLocal(ctx, "stream.show_changed", data) })
		}
	case "channel.chat.message":
		if p.base != nil && p.base["type"] == "emote_stats" {
			emotes, _ := e["emotes"].([]any)
			native, _ := e["native_emotes"].([]any)
			if len(emotes)+len(native) > 0 {
				data := map[string]any{"emotes": emotes, "native_emotes": native, "user_name": e["user_name"],
					"timestamp": e["timestamp"]}
				follow = append(follow, func() { p.publishLocal(ctx, "stream.emote_increment", data) })
			}
		}
	}
	if b := eventBase(e); b != nil {
		b["priority"] = PriorityTicker
		b["layer"] = "background"
		b["started_at"] = events.FormatTime(now)
		p.base = b
	}
	p.touchLocked(now)
	p.mu.Unlock()
	p.emitState(ctx)
	for _, fn := range follow {
		fn()
	}
}

func (p *Producer) subTrainLocked(e events.Event, now time.Time) {
	for _, a := range p.alerts {
		if a.typ == "sub_train" && now.Before(a.started.Add(a.duration)) {
			n, _ := a.data["count"].(int)
			a.data["count"] = n + 1
			a.data["latest_subscriber"] = e["user_name"]
			a.started = now
			return
		}
	}
	p.addAlertLocked(derivedID(e, "sub_train"), "sub_train", map[string]any{"subscriber": e["user_name"], "tier": e["tier"], "count": 1,
		"total_months": 0}, p.opts.SubTrainDuration, now)
}

func (p *Producer) addAlertLocked(id, typ string, data map[string]any, d time.Duration, now time.Time) *alert {
	prio := PriorityTicker
	switch typ {
	case "alert", "manual_override":
		prio = PriorityAlert
	case "sub_train":
		prio = PrioritySubTrain
	}
	a := &alert{id: id, typ: typ, priority: prio, duration: d, started: now, data: data}
	p.alerts = append(p.alerts, a)
	sort.SliceStable(p.alerts, func(i, j int) bool { return p.alerts[i].priority > p.alerts[j].priority })
	p.signal()
	return a
}

// publish publishes a command's event to every node.
func (p *Producer) publish(ctx context.Context, typ string, data map[string]any) {
	if _, err := p.bus.Publish(ctx, typ, data); err != nil {
		p.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "stream producer publish failed", slog.String("type", typ), slog.Any("error", err))
	}
}

// publishLocal publishes what every node's producer derives for itself to
// this node only.
func (p *Producer) publishLocal(ctx context.Context, typ string, data map[string]any) {
	if _, err := p.bus.PublishLocal(ctx, typ, data); err != nil {
		p.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "stream producer publish failed", slog.String("type", typ), slog.Any("error", err))
	}
}

// snapshotLocked returns the stream_state payload.
func (p *Producer) snapshotLocked() map[string]any {
	alerts := make([]any, 0, len(p.alerts))
	for _, a := range p.alerts {
		data := make(map[string]any, len(a.data))
		for k, v := range a.data {
			data[k] = v
		}
		alerts = append(alerts, map[string]any{"id": a.id, "type": a.typ, "priority": a.priority,
			"started_at": events.FormatTime(a.started), "duration": a.duration.Milliseconds(), "data": data,
			"layer": Layer(a.typ, p.show)})
	}
	ticker := make([]any, 0, len(p.ticker))
	for _, t := range p.ticker {
		ticker = append(ticker, t)
	}
	var base map[string]any
	if p.base != nil {
		base = make(map[string]any, len(p.base))
		for k, v := range p.base {
			base[k] = v
		}
	}
	return map[string]any{
		"current_show": p.show,
		"base":         base,
		"alerts":       alerts,
		"ticker":       ticker,
		"timeline":     []any{},
		"metadata":     map[string]any{"last_updated": events.FormatTime(p.updated), "state_version": p.version},
	}
}

func (p *Producer) emitState(ctx context.Context) {
	p.mu.Lock()
	st := p.snapshotLocked()
	st["version"] = p.version
	p.mu.Unlock()
	p.publishLocal(ctx, "stream.state_updated", st)
}

func (p *Producer) gate(ctx context.Context) error {
	if err := p.ctl.Gate(ctx, sim.Stream); err != nil {
		return errors.Join(ErrUnavailable, err)
	}
	return nil
}

// State returns the current stream_state payload.
func (p *Producer) State(ctx context.Context) (map[string]any, error) {
	if err := p.gate(ctx); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snapshotLocked(), nil
}

// QueueState returns the current queue_state payload.
func (p *Producer) QueueState(ctx context.Context) (map[string]any, error) {
	st, err := p.State(ctx)
	if err != nil {
		return nil, err
	}
	return FormatQueue(st, time.Now()), nil
}

// Show returns the current show.
func (p *Producer) Show() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.show
}

// LayerMappings returns the get_layer_mappings reply.
func (p *Producer) LayerMappings(ctx context.Context) (map[string]any, error) {
	if err := p.gate(ctx); err != nil {
		return nil, err
	}
	show := p.Show()
	return map[string]any{"current_show": show, "mappings": Mappings(show), "available_shows": slices.Clone(Shows)}, nil
}

// ForceContent adds a manual override alert: {type: "manual_override",
// priority 100, data: {type: contentType} ∪ data}, expiring after
// duration, and publishes the new state.
func (p *Producer) ForceContent(ctx context.Context, contentType string, data map[string]any, duration time.Duration) (string, error) {
	if err := p.gate(ctx); err != nil {
		return "", err
	}
	d := map[string]any{"type": contentType}
	for k, v := range data {
		if k != "type" {
			d[k] = v
		}
	}
	now := time.Now()
	p.mu.Lock()
	a := p.addAlertLocked(events.NewShortID(), "manual_override", d, duration, now)
	p.touchLocked(now)
	p.mu.Unlock()
	p.emitState(ctx)
	// The other nodes' producers add the same alert.
	cmd, err := json.Marshal(forceCommand{ID: a.id, Data: d, DurationMS: duration.Milliseconds()})
	if err == nil {
		err = p.bus.PubSub().BroadcastFrom(ctx, p.id, &pubsub.Message{Topic: CommandTopic, Event: forceEvent, Payload: cmd})
	}
	if err != nil {
		p.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "stream producer command broadcast failed", slog.Any("error", err))
	}
	return a.id, nil
}

// CommandTopic is the PubSub topic on which a producer hands the commands
// given on its node (force_content) to the producers of the other nodes.
// No channel subscribes to it.
const CommandTopic = "landale:stream_producer"

// forceEvent is the event name of a force_content command.
const forceEvent = "force_content"

type forceCommand struct {
	ID         string         `json:"id"`
	Data       map[string]any `json:"data"`
	DurationMS int64          `json:"duration_ms"`
}

// derivedID is the id of the alert kind derived from event e: the same on
// every node, 16 hex digits.
func derivedID(e events.Event, kind string) string {
	id := e.String("id")
	if id == "" {
		return events.NewShortID()
	}
	sum := sha256.Sum256([]byte(kind + "\x00" + id))
	return hex.EncodeToString(sum[:8])
}

// RemoveItem removes an alert (absent ids are fine) and publishes
// stream.interrupt_removed, to which the producer answers with a new state.
func (p *Producer) RemoveItem(ctx context.Context, id string) error {
	if err := p.gate(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	p.alerts = slices.DeleteFunc(p.alerts, func(a *alert) bool { return a.id == id })
	p.touchLocked(time.Now())
	p.mu.Unlock()
	p.signal()
	p.publish(ctx, "stream.interrupt_removed", map[string]any{"interrupt_id": id, "timestamp": events.FormatTime(time.Now())})
	return nil
}
