package presence

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/pubsub"
)

// Errors returned by a Tracker.
var (
	// ErrClosed is returned after Close or Shutdown.
	ErrClosed = errors.New("presence: tracker closed")
	// ErrAlreadyTracked is returned by Track for a key the socket already
	// tracks on that topic; use Update to change its meta.
	ErrAlreadyTracked = errors.New("presence: already tracked")
	// ErrNotTracked is returned by Update for a key the socket does not
	// track on that topic.
	ErrNotTracked = errors.New("presence: not tracked")
	// ErrSocketClosed is returned for a socket whose channel has ended.
	ErrSocketClosed = errors.New("presence: socket closed")
	// ErrInvalidTopic is returned for an empty topic.
	ErrInvalidTopic = errors.New("presence: invalid topic")
)

// Events pushed to clients.
const (
	EventState = "presence_state"
	EventDiff  = "presence_diff"
)

// DefaultTopic is the PubSub topic trackers replicate on.
const DefaultTopic = "pyre:presence"

// Options configure a Tracker. The zero value of every field but Server
// means its default.
type Options struct {
	// Server is the channel.Server whose clients receive presence_diff
	// broadcasts; the sockets given to the Tracker must be connected to it.
	// Required.
	Server *channel.Server
	// PubSub carries replication between nodes; close the Tracker before
	// it. Defaults to Server.PubSub().
	PubSub pubsub.PubSub
	// Topic is the PubSub topic of replication; trackers on one topic form
	// one cluster. Defaults to DefaultTopic.
	Topic string
	// NodeID names this node in the cluster and in logs. It must be unique
	// among live nodes; a node restarted under the same NodeID replaces its
	// former presences at once. Defaults to random hex.
	NodeID string
	// HeartbeatInterval is the period of heartbeats (and of the checks for
	// down nodes). Defaults to 1.5 s, Phoenix's broadcast_period.
	HeartbeatInterval time.Duration
	// NodeTimeout is how long a node may stay silent before its presences
	// are removed from this node's view. It is raised to at least twice
	// HeartbeatInterval. Defaults to 5 × HeartbeatInterval (7.5 s).
	NodeTimeout time.Duration
	// InboxSize bounds the replication messages waiting for the tracker's
	// goroutine; see the package doc for what happens when it is full.
	// Defaults to 4096.
	InboxSize int
	// MaxPendingOps bounds the local changes waiting to be published.
	// Defaults to 10 000.
	MaxPendingOps int
	// Logger receives node up/down events (info), protocol anomalies
	// and failed Fetch calls (warn) and dropped messages (debug). Defaults
	// to discarding.
	Logger *slog.Logger
	// Fetch, when set, enriches every presence_state and presence_diff
	// this node sends, as Phoenix.Presence's fetch/2: it is called once
	// per presence_state, and once for the joins and once for the leaves
	// of each presence_diff (never with an empty map), on the node whose
	// clients receive the message, only when the topic has clients there.
	// Calls are made one at a time from a goroutine of the Tracker, never
	// while the Tracker is locked, and messages leave in the order the
	// view changed. A key missing from the result, or returned without
	// metas, is sent as tracked; keys not asked for are ignored. When
	// Fetch returns an error, panics, or has not returned after
	// FetchTimeout, the presences are sent as tracked and a warning is
	// logged. Fetch must not wait for the Tracker's own methods (it would
	// wait until FetchTimeout). Defaults to nil: metas are sent as tracked,
	// synchronously.
	Fetch FetchFunc
	// FetchTimeout bounds each Fetch call through its context; a call that
	// ignores the context is abandoned (its goroutine ends when it
	// returns). Defaults to 5 s.
	FetchTimeout time.Duration
	// FetchQueue bounds the messages waiting for Fetch; past it, the calls
	// that change presences (Track, Update, the replication goroutine)
	// wait for room. Defaults to 1024.
	FetchQueue int
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.PubSub == nil && c.Server != nil {
		c.PubSub = c.Server.PubSub()
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.NodeID == "" {
		c.NodeID = randomHex(6)
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 1500 * time.Millisecond
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = 5 * c.HeartbeatInterval
	}
	c.NodeTimeout = max(c.NodeTimeout, 2*c.HeartbeatInterval)
	if c.InboxSize <= 0 {
		c.InboxSize = 4096
	}
	if c.MaxPendingOps <= 0 {
		c.MaxPendingOps = 10_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = defaultFetchTimeout
	}
	if c.FetchQueue <= 0 {
		c.FetchQueue = 1024
	}
	return c
}

// Tracker tracks presences on this node and replicates them with the
// trackers of other nodes sharing its PubSub topic. It is safe for
// concurrent use. It owns one goroutine, stopped by Close or Shutdown.
type Tracker struct {
	opts  Options
	srv   *channel.Server
	ps    pubsub.PubSub
	log   *slog.Logger
	node  string
	epoch string // this incarnation; pubsub.Message.From of our messages

	sub     pubsub.SubscriberFunc
	inbox   chan *pubsub.Message
	wake    chan struct{} // cap 1: local ops to publish
	quit    chan struct{} // closed by Close/Shutdown
	done    chan struct{} // closed when the goroutine ends
	ctx     context.Context
	cancel  context.CancelFunc
	stopped sync.Once
	bye     atomic.Bool // Shutdown: publish a goodbye before leaving

	fetchQ    chan *fetchJob // with Options.Fetch: messages waiting for it
	fetchStop chan struct{}  // closed when the fetch goroutine ends

	dropped atomic.Uint64  // inbox overflows
	watches sync.WaitGroup // context watches of owners, running or armed

	mu       sync.RWMutex
	closed   bool
	clock    uint64   // clock of the last local change
	pending  []wireOp // local changes not published yet
	pendFrom uint64   // clock before pending[0]
	owners   map[*channel.Socket]*owner
	local    map[string]*entry // by ref
	peers    map[string]*peer  // by node id
	departed map[string]time.Time
	view     view
}

// owner is a socket's set of presences.
type owner struct {
	s       *channel.Socket
	entries map[topicKey]*entry
	stopped bool
	unwatch func() bool // stops the context watch
}

type topicKey struct{ topic, key string }

// peer is this node's copy of another node's presences.
type peer struct {
	node, epoch string
	clock       uint64 // last change applied
	seen        time.Time
	requested   time.Time // last state request
	entries     map[string]*entry
}

// New starts a Tracker and subscribes it to the PubSub; ctx bounds the
// subscription. It panics if opts.Server is nil.
func New(ctx context.Context, opts *Options) (*Tracker, error) {
	o := opts.withDefaults()
	if o.Server == nil {
		panic("presence: New needs Options.Server")
	}
	t := &Tracker{
		opts:     o,
		srv:      o.Server,
		ps:       o.PubSub,
		node:     o.NodeID,
		epoch:    randomHex(8),
		inbox:    make(chan *pubsub.Message, o.InboxSize),
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		owners:   make(map[*channel.Socket]*owner),
		local:    make(map[string]*entry),
		peers:    make(map[string]*peer),
		departed: make(map[string]time.Time),
		view:     make(view),
	}
	t.log = o.Logger.With(slog.String("presence_node", t.node))
	t.sub = t.deliver
	if err := t.ps.Subscribe(ctx, o.Topic, &t.sub); err != nil {
		return nil, fmt.Errorf("presence: subscribe to %q: %w", o.Topic, err)
	}
	t.ctx, t.cancel = context.WithCancel(context.WithoutCancel(ctx))
	t.fetchStop = make(chan struct{})
	if o.Fetch != nil {
		t.fetchQ = make(chan *fetchJob, o.FetchQueue)
		go t.runFetch()
	} else {
		close(t.fetchStop)
	}
	go t.run()
	return t, nil
}

// NodeID returns this node's id.
func (t *Tracker) NodeID() string { return t.node }

// Nodes returns the ids of the other nodes this node currently hears from,
// sorted.
func (t *Tracker) Nodes() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ids := make([]string, 0, len(t.peers))
	for id := range t.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Dropped returns the number of replication messages dropped at the full
// inbox since the start.
func (t *Tracker) Dropped() uint64 { return t.dropped.Load() }

// Close stops the tracker without telling the other nodes, which remove
// its presences after their NodeTimeout, as for a crash. Local clients get
// no more diffs; List keeps answering with the last view. Close waits for
// the tracker's goroutine and is idempotent.
func (t *Tracker) Close() error {
	t.stop()
	t.cancel()
	<-t.done
	<-t.fetchStop
	t.watches.Wait()
	return nil
}

// Shutdown publishes the local changes not yet sent and a goodbye, so that
// the other nodes drop this node's presences at once, then stops like
// Close. If ctx ends first, publishing is abandoned and ctx.Err() returned.
func (t *Tracker) Shutdown(ctx context.Context) error {
	t.bye.Store(true)
	t.stop()
	var err error
	select {
	case <-t.done:
	case <-ctx.Done():
		t.cancel()
		<-t.done
		err = ctx.Err()
	}
	<-t.fetchStop
	t.watches.Wait()
	return err
}

func (t *Tracker) stop() {
	t.stopped.Do(func() {
		t.mu.Lock()
		t.closed = true
		owners := make([]*owner, 0, len(t.owners))
		for _, o := range t.owners {
			owners = append(owners, o)
		}
		t.mu.Unlock()
		for _, o := range owners {
			t.unwatch(o)
		}
		_ = t.ps.Unsubscribe(context.WithoutCancel(t.ctx), t.opts.Topic, &t.sub)
		close(t.quit)
	})
}

// deliver is the PubSub subscriber: it queues a peer's message without
// blocking, dropping it when the inbox is full.
func (t *Tracker) deliver(msg *pubsub.Message) {
	if msg.From == t.epoch {
		return
	}
	select {
	case t.inbox <- msg:
	default:
		t.dropped.Add(1)
		t.log.LogAttrs(context.Background(), slog.LevelDebug, "presence message dropped: inbox full",
			slog.String("event", msg.Event))
	}
}

// signal wakes the goroutine to publish local changes.
func (t *Tracker) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// run is the tracker's goroutine: it applies peers' messages, publishes
// local changes, state answers and heartbeats, and detects down nodes.
// All publishing happens here, so a node's messages go out in clock order.
func (t *Tracker) run() {
	defer close(t.done)
	defer t.cancel()
	tick := time.NewTicker(t.opts.HeartbeatInterval)
	defer tick.Stop()
	var l loop
	t.publish(evHeartbeat, &wireMsg{Clock: 0})
	t.publish(evRequest, &wireMsg{})
	for {
		select {
		case <-t.quit:
			if t.bye.Load() {
				t.flush(&l)
				t.publish(evGoodbye, &wireMsg{Clock: l.published})
			}
			return
		case m := <-t.inbox:
			t.receive(&l, m)
		drain:
			for range 256 {
				select {
				case m := <-t.inbox:
					t.receive(&l, m)
				default:
					break drain
				}
			}
		case <-t.wake:
		case now := <-tick.C:
			t.flush(&l)
			t.publish(evHeartbeat, &wireMsg{Clock: l.published})
			t.expire(now)
		}
		t.flush(&l)
	}
}

// loop is the state owned by the goroutine.
type loop struct {
	published uint64          // clock of the last change published
	requests  []string        // epochs to ask for their state
	sendState bool            // a peer asked for our state
	twins     map[string]bool // epochs of other trackers using our node id (warned once)
}

// flush publishes local changes, state requests and our state, in that
// order.
func (t *Tracker) flush(l *loop) {
	t.mu.Lock()
	ops, from := t.pending, t.pendFrom
	t.pending = nil
	t.pendFrom = t.clock
	t.mu.Unlock()
	if len(ops) > 0 {
		to := from + uint64(len(ops))
		t.publish(evDelta, &wireMsg{From: from, Clock: to, Ops: ops})
		l.published = to
	} else {
		l.published = from
	}
	for _, epoch := range l.requests {
		t.publish(evRequest, &wireMsg{To: epoch, Clock: l.published})
	}
	l.requests = l.requests[:0]
	if l.sendState {
		l.sendState = false
		t.mu.RLock()
		m := &wireMsg{Clock: t.clock, Entries: make([]wireEntry, 0, len(t.local))}
		es := slices.SortedFunc(maps.Values(t.local), func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
		for _, e := range es {
			m.Entries = append(m.Entries, *toWire(e))
		}
		t.mu.RUnlock()
		t.publish(evState, m)
	}
}

func (t *Tracker) publish(event string, m *wireMsg) {
	m.V, m.Node, m.Epoch = wireVersion, t.node, t.epoch
	b, err := json.Marshal(m)
	if err != nil {
		t.log.LogAttrs(t.ctx, slog.LevelError, "presence message not encoded", slog.String("event", event), slog.Any("error", err))
		return
	}
	msg := &pubsub.Message{Topic: t.opts.Topic, Event: event, Payload: b}
	if err := t.ps.BroadcastFrom(t.ctx, t.epoch, msg); err != nil {
		// Peers detect the loss through clocks and heartbeats.
		t.log.LogAttrs(t.ctx, slog.LevelWarn, "presence message not published", slog.String("event", event), slog.Any("error", err))
	}
}

// receive applies one peer message.
func (t *Tracker) receive(l *loop, msg *pubsub.Message) {
	var m wireMsg
	if err := json.Unmarshal(msg.Payload, &m); err != nil || m.V != wireVersion || m.Node == "" || m.Epoch == "" {
		t.log.LogAttrs(t.ctx, slog.LevelWarn, "presence message ignored", slog.String("event", msg.Event), slog.Any("error", err), slog.Int("version", m.V))
		return
	}
	if m.Node == t.node {
		if !l.twins[m.Epoch] {
			if l.twins == nil {
				l.twins = make(map[string]bool)
			}
			l.twins[m.Epoch] = true
			t.log.LogAttrs(t.ctx, slog.LevelWarn, "another tracker uses this node id; its messages are ignored", slog.String("epoch", m.Epoch))
		}
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if _, gone := t.departed[m.Epoch]; gone {
		return
	}
	d := make(diff)
	defer t.emit(d)
	if msg.Event == evGoodbye {
		if p := t.peers[m.Node]; p != nil && p.epoch == m.Epoch {
			t.dropPeer(p, d)
			t.log.LogAttrs(t.ctx, slog.LevelInfo, "presence node left", slog.String("node", m.Node))
		}
		t.departed[m.Epoch] = now
		return
	}
	p := t.peers[m.Node]
	if p != nil && p.epoch != m.Epoch {
		t.departed[p.epoch] = now
		t.dropPeer(p, d)
		t.log.LogAttrs(t.ctx, slog.LevelInfo, "presence node restarted", slog.String("node", m.Node))
		p = nil
	}
	if p == nil {
		p = &peer{node: m.Node, epoch: m.Epoch, entries: make(map[string]*entry)}
		t.peers[m.Node] = p
		t.log.LogAttrs(t.ctx, slog.LevelInfo, "presence node up", slog.String("node", m.Node))
	}
	p.seen = now
	switch msg.Event {
	case evHeartbeat:
		if m.Clock > p.clock {
			t.request(l, p, now)
		}
	case evRequest:
		if m.To == "" || m.To == t.epoch {
			l.sendState = true
		}
		if m.Clock > p.clock {
			t.request(l, p, now)
		}
	case evDelta:
		t.applyDelta(l, p, &m, d, now)
	case evState:
		t.applyState(p, &m, d)
	}
}

// request asks p for its full state, at most once per heartbeat interval.
func (t *Tracker) request(l *loop, p *peer, now time.Time) {
	if !p.requested.IsZero() && now.Sub(p.requested) < t.opts.HeartbeatInterval {
		return
	}
	p.requested = now
	l.requests = append(l.requests, p.epoch)
}

func (t *Tracker) applyDelta(l *loop, p *peer, m *wireMsg, d diff, now time.Time) {
	if m.Clock <= p.clock {
		return // already applied
	}
	if m.From > p.clock || m.Clock-m.From != uint64(len(m.Ops)) {
		t.request(l, p, now)
		return
	}
	for i, op := range m.Ops {
		if m.From+uint64(i)+1 <= p.clock {
			continue // covered by a state applied meanwhile
		}
		if op.Add != nil {
			if e, ok := fromWire(op.Add); ok && p.entries[e.ref] == nil {
				p.entries[e.ref] = e
				t.view.add(e)
				d.join(e)
			}
		} else if e := p.entries[op.Rm]; e != nil {
			delete(p.entries, op.Rm)
			t.view.remove(e)
			d.leave(e)
		}
	}
	p.clock = m.Clock
}

func (t *Tracker) applyState(p *peer, m *wireMsg, d diff) {
	if m.Clock < p.clock {
		return // older than what we have
	}
	next := make(map[string]*entry, len(m.Entries))
	order := make([]*entry, 0, len(m.Entries))
	for i := range m.Entries {
		if e, ok := fromWire(&m.Entries[i]); ok && next[e.ref] == nil {
			next[e.ref] = e
			order = append(order, e)
		}
	}
	for ref, e := range p.entries {
		if next[ref] == nil {
			delete(p.entries, ref)
			t.view.remove(e)
			d.leave(e)
		}
	}
	for _, e := range order { // the owner's order
		if p.entries[e.ref] == nil {
			p.entries[e.ref] = e
			t.view.add(e)
			d.join(e)
		}
	}
	p.clock = m.Clock
	p.requested = time.Time{}
}

// dropPeer removes p and its presences. Called with t.mu held.
func (t *Tracker) dropPeer(p *peer, d diff) {
	for _, e := range p.entries {
		t.view.remove(e)
		d.leave(e)
	}
	delete(t.peers, p.node)
}

// expire drops peers silent for NodeTimeout and forgets old goodbyes.
func (t *Tracker) expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	d := make(diff)
	for _, p := range t.peers {
		if now.Sub(p.seen) > t.opts.NodeTimeout {
			t.log.LogAttrs(t.ctx, slog.LevelWarn, "presence node down", slog.String("node", p.node),
				slog.Duration("silent_for", now.Sub(p.seen)), slog.Int("presences", len(p.entries)))
			t.dropPeer(p, d)
		}
	}
	for epoch, at := range t.departed {
		if now.Sub(at) > 10*t.opts.NodeTimeout {
			delete(t.departed, epoch)
		}
	}
	t.emit(d)
}

// emit broadcasts the diff to this node's clients, in topic order. Called
// with t.mu held, so diffs leave in the order the view changed.
func (t *Tracker) emit(d diff) {
	if len(d) == 0 {
		return
	}
	for _, topic := range d.topics() {
		if t.srv.Subscribers(topic) == 0 {
			continue // nobody to tell on this node
		}
		if t.opts.Fetch != nil {
			td := d[topic]
			t.enqueue(&fetchJob{topic: topic, joins: group(td.joins), leaves: group(td.leaves)})
			continue
		}
		_ = t.srv.LocalBroadcast(topic, EventDiff, json.RawMessage(d.payload(topic)))
	}
}
