package presence

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/pyre-go/pyre/channel"
)

// Presence is the presences of one key on a topic: one meta per tracking
// socket, each with its "phx_ref" (and "phx_ref_prev" after an update).
type Presence struct {
	Metas []map[string]any
	// Extra holds the fields an Options.Fetch adds next to "metas" (a
	// "user" record, say); they are encoded at the same level as "metas".
	// The Tracker itself never sets it: List and Get return nil.
	Extra map[string]any
}

// Track tracks key with meta for s on its own topic, and returns the
// presence's phx_ref. Every client joined to the topic, on every node, gets
// a presence_diff with the join. The presence is untracked when s's channel
// ends. A socket tracks a key once per topic: a second Track returns
// ErrAlreadyTracked (use Update). meta is encoded with encoding/json when
// Track is called; its "phx_ref" and "phx_ref_prev" keys are replaced.
func (t *Tracker) Track(s *channel.Socket, key string, meta map[string]any) (string, error) {
	return t.TrackTopic(s, s.Topic(), key, meta)
}

// TrackTopic is Track on another topic than the socket's own, for lists
// kept apart from the channels that feed them: an overlay joined to
// "overlay:obs" tracked in "overlays", listed by a dashboard. The presence
// still ends with s's channel.
func (t *Tracker) TrackTopic(s *channel.Socket, topic, key string, meta map[string]any) (string, error) {
	if topic == "" {
		return "", ErrInvalidTopic
	}
	if s.Context().Err() != nil {
		return "", ErrSocketClosed
	}
	m, err := encodeMeta(meta)
	if err != nil {
		return "", err
	}
	ref := newRef()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return "", ErrClosed
	}
	o := t.owners[s]
	created := o == nil
	if created {
		o = &owner{s: s, entries: make(map[topicKey]*entry)}
		t.owners[s] = o
	}
	tk := topicKey{topic, key}
	if o.entries[tk] != nil {
		t.mu.Unlock()
		return "", fmt.Errorf("%w: %q on %q", ErrAlreadyTracked, key, topic)
	}
	e := &entry{ref: ref, topic: topic, key: key, meta: withRefs(m, ref, ""), owner: o}
	o.entries[tk] = e
	t.local[ref] = e
	t.view.add(e)
	e.seq = t.record(wireOp{Add: toWire(e)})
	d := make(diff)
	d.join(e)
	t.emit(d)
	if created {
		// A channel that ends between here and OnStop runs fn at once.
		// The context watch covers a channel that is already stopping
		// when OnStop is registered from another goroutine.
		t.watches.Add(1)
		o.unwatch = context.AfterFunc(s.Context(), func() {
			defer t.watches.Done()
			t.dropOwner(o)
		})
	}
	t.mu.Unlock()
	t.signal()
	if created {
		s.OnStop(func(context.Context) { t.dropOwner(o) })
	}
	return ref, nil
}

// Update replaces the meta of key tracked by s on its topic and returns the
// new phx_ref. Clients get one presence_diff with the new meta (carrying
// "phx_ref_prev") in joins and the old one in leaves. It returns
// ErrNotTracked if s does not track key there.
func (t *Tracker) Update(s *channel.Socket, key string, meta map[string]any) (string, error) {
	return t.UpdateTopic(s, s.Topic(), key, meta)
}

// UpdateTopic is Update for a presence tracked with TrackTopic.
func (t *Tracker) UpdateTopic(s *channel.Socket, topic, key string, meta map[string]any) (string, error) {
	m, err := encodeMeta(meta)
	if err != nil {
		return "", err
	}
	ref := newRef()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return "", ErrClosed
	}
	o := t.owners[s]
	tk := topicKey{topic, key}
	if o == nil || o.stopped || o.entries[tk] == nil {
		return "", fmt.Errorf("%w: %q on %q", ErrNotTracked, key, topic)
	}
	old := o.entries[tk]
	e := &entry{ref: ref, topic: topic, key: key, meta: withRefs(m, ref, old.ref), owner: o}
	d := make(diff)
	t.removeLocal(old, d)
	o.entries[tk] = e
	t.local[ref] = e
	t.view.add(e)
	e.seq = t.record(wireOp{Add: toWire(e)})
	d.join(e)
	t.emit(d)
	t.signal()
	return ref, nil
}

// Untrack removes the presence of key tracked by s on its topic. Untracking
// a key that is not tracked does nothing.
func (t *Tracker) Untrack(s *channel.Socket, key string) error {
	return t.UntrackTopic(s, s.Topic(), key)
}

// UntrackTopic is Untrack for a presence tracked with TrackTopic.
func (t *Tracker) UntrackTopic(s *channel.Socket, topic, key string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	o := t.owners[s]
	if o == nil {
		return nil
	}
	tk := topicKey{topic, key}
	e := o.entries[tk]
	if e == nil {
		return nil
	}
	delete(o.entries, tk)
	d := make(diff)
	t.removeLocal(e, d)
	t.emit(d)
	t.signal()
	return nil
}

// UntrackAll removes every presence tracked by s, on every topic.
func (t *Tracker) UntrackAll(s *channel.Socket) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if o := t.owners[s]; o != nil {
		t.untrackOwnerLocked(o)
	}
	return nil
}

// dropOwner untracks everything of a socket whose channel ended; it runs
// from OnStop or the context watch, whichever is first.
func (t *Tracker) dropOwner(o *owner) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o.stopped {
		return
	}
	o.stopped = true
	t.unwatch(o)
	if t.owners[o.s] == o {
		delete(t.owners, o.s)
	}
	if t.closed {
		return
	}
	t.untrackOwnerLocked(o)
}

// unwatch stops o's context watch unless its callback already started
// (that callback marks its own end in t.watches).
func (t *Tracker) unwatch(o *owner) {
	if o.unwatch() {
		t.watches.Done()
	}
}

func (t *Tracker) untrackOwnerLocked(o *owner) {
	if len(o.entries) == 0 {
		return
	}
	d := make(diff)
	for tk, e := range o.entries {
		delete(o.entries, tk)
		t.removeLocal(e, d)
	}
	t.emit(d)
	t.signal()
}

// removeLocal removes a local entry from the view and records the change.
func (t *Tracker) removeLocal(e *entry, d diff) {
	delete(t.local, e.ref)
	t.view.remove(e)
	t.record(wireOp{Rm: e.ref})
	d.leave(e)
}

// record gives a local change the next clock, which it returns, and queues
// it for publishing. Past MaxPendingOps the queue is discarded: peers see
// the gap and fetch the full state.
func (t *Tracker) record(op wireOp) uint64 {
	if len(t.pending) == 0 {
		t.pendFrom = t.clock
	}
	t.clock++
	if len(t.pending) >= t.opts.MaxPendingOps {
		t.log.LogAttrs(context.Background(), slog.LevelWarn, "presence changes discarded: publishing is too slow; peers will resynchronize",
			slog.Int("changes", len(t.pending)+1))
		t.pending = nil
		t.pendFrom = t.clock
		return t.clock
	}
	t.pending = append(t.pending, op)
	return t.clock
}

// List returns the presences of topic on every node, as this node sees
// them, by key. The maps are fresh copies. A topic without presences gives
// an empty map.
func (t *Tracker) List(topic string) map[string]Presence {
	t.mu.RLock()
	defer t.mu.RUnlock()
	keys := t.view[topic]
	out := make(map[string]Presence, len(keys))
	for k, es := range keys {
		out[k] = decodePresence(es)
	}
	return out
}

// Get returns the presences of key on topic, and whether there are any.
func (t *Tracker) Get(topic, key string) (Presence, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	es := t.view[topic][key]
	if len(es) == 0 {
		return Presence{}, false
	}
	return decodePresence(es), true
}

func decodePresence(es []*entry) Presence {
	raw := make([]json.RawMessage, len(es))
	for i, e := range es {
		raw[i] = e.meta
	}
	return decodeMetas(raw)
}

// PushState pushes presence_state with the presences of s's topic to s's
// client: [join_ref,null,topic,"presence_state",{key:{"metas":[…]},…}].
// Call it after every join (phoenix.js applies diffs only after a state for
// its current join), typically in AfterJoin before Track, as Phoenix apps do.
func (t *Tracker) PushState(s *channel.Socket) error {
	return t.PushStateTopic(s, s.Topic())
}

// PushStateTopic pushes presence_state with the presences of another topic
// than s's own. The client's Presence only applies diffs broadcast on the
// topic it joined, so later changes must reach it another way.
//
// With Options.Fetch, the state is queued behind the diffs already waiting
// for Fetch, enriched, and pushed; PushStateTopic waits for that (at most
// about FetchTimeout per message ahead of it) and returns ErrClosed if the
// Tracker closes first.
func (t *Tracker) PushStateTopic(s *channel.Socket, topic string) error {
	if t.opts.Fetch != nil {
		j := &fetchJob{topic: topic, s: s, done: make(chan error, 1)}
		t.mu.RLock()
		if t.closed {
			t.mu.RUnlock()
			return ErrClosed
		}
		j.joins = group(t.view[topic])
		ok := t.enqueue(j) // in order with the diffs emitted under t.mu
		t.mu.RUnlock()
		if !ok {
			return ErrClosed
		}
		select {
		case err := <-j.done:
			return err
		case <-t.fetchStop:
			select {
			case err := <-j.done:
				return err
			default:
				return ErrClosed
			}
		}
	}
	// The push happens under the read lock: no diff of topic can be emitted
	// between reading the state and queueing it for the client.
	t.mu.RLock()
	defer t.mu.RUnlock()
	b, err := json.Marshal(group(t.view[topic]))
	if err != nil {
		return fmt.Errorf("presence: encode state: %w", err)
	}
	return s.Push(EventState, json.RawMessage(b))
}
