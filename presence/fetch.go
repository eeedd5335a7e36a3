package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/pyre-go/pyre/channel"
)

// FetchFunc enriches the presences about to be sent to clients, as
// Phoenix.Presence's fetch/2 callback: it receives the presences of one
// topic by key, each with its metas, and returns them with extra
// per-key fields in Presence.Extra (a user record loaded in one query for
// all keys, for example). It may modify and return the map it is given. A
// returned Presence without Metas keeps the tracked metas; returned Metas
// replace them (keep their "phx_ref": phoenix.js needs it). See
// Options.Fetch.
type FetchFunc func(ctx context.Context, topic string, presences map[string]Presence) (map[string]Presence, error)

// ErrFetchPanic is logged when a FetchFunc panics; the presences are then
// sent as tracked.
var ErrFetchPanic = errors.New("presence: fetch panicked")

// MarshalJSON encodes p as Phoenix does: {"metas":[…]} followed by the
// Extra fields at the same level, as in {"metas":[…],"user":{…}}. An
// Extra field named "metas" is ignored.
func (p Presence) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(p.Extra)+1)
	for k, v := range p.Extra {
		m[k] = v
	}
	m["metas"] = p.Metas
	return json.Marshal(m)
}

// UnmarshalJSON decodes {"metas":[…], …}: fields other than "metas" go to
// Extra (nil when there are none).
func (p *Presence) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var out Presence
	if m, ok := raw["metas"]; ok {
		if err := json.Unmarshal(m, &out.Metas); err != nil {
			return fmt.Errorf("presence: decode metas: %w", err)
		}
		delete(raw, "metas")
	}
	for k, v := range raw {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		if out.Extra == nil {
			out.Extra = make(map[string]any, len(raw))
		}
		out.Extra[k] = x
	}
	*p = out
	return nil
}

// fetchJob is one outgoing message waiting for Fetch: a presence_diff of
// topic, or a presence_state for socket s (done receives Push's error).
type fetchJob struct {
	topic         string
	joins, leaves map[string]presenceJSON
	s             *channel.Socket
	done          chan error
}

// enqueue queues j for the fetch goroutine, waiting for room when
// FetchQueue jobs are already waiting. It reports false once the fetch
// goroutine has stopped.
func (t *Tracker) enqueue(j *fetchJob) bool {
	select {
	case t.fetchQ <- j:
		return true
	case <-t.fetchStop:
		return false
	}
}

// runFetch sends the queued messages in order, each after Fetch.
func (t *Tracker) runFetch() {
	defer close(t.fetchStop)
	for {
		select {
		case <-t.quit:
			for {
				select {
				case j := <-t.fetchQ:
					if j.done != nil {
						j.done <- ErrClosed
					}
				default:
					return
				}
			}
		case j := <-t.fetchQ:
			t.dispatch(j)
		}
	}
}

func (t *Tracker) dispatch(j *fetchJob) {
	if j.s != nil {
		j.done <- j.s.Push(EventState, json.RawMessage(t.enrich(j.topic, j.joins)))
		return
	}
	var b []byte
	b = append(b, `{"joins":`...)
	b = append(b, t.enrich(j.topic, j.joins)...)
	b = append(b, `,"leaves":`...)
	b = append(b, t.enrich(j.topic, j.leaves)...)
	b = append(b, '}')
	_ = t.srv.LocalBroadcast(j.topic, EventDiff, json.RawMessage(b))
}

// enrich returns the JSON of g after Fetch, or of g as tracked when Fetch
// fails, panics, overruns FetchTimeout or returns what cannot be encoded.
// An empty g is not given to Fetch.
func (t *Tracker) enrich(topic string, g map[string]presenceJSON) []byte {
	plain := func() []byte {
		b, err := json.Marshal(g)
		if err != nil {
			panic("presence: encode presences: " + err.Error()) // metas are validated JSON objects
		}
		return b
	}
	if len(g) == 0 {
		return []byte("{}")
	}
	in := make(map[string]Presence, len(g))
	for k, p := range g {
		in[k] = decodeMetas(p.Metas)
	}
	res, err := t.callFetch(topic, in)
	if err != nil {
		t.log.LogAttrs(t.ctx, slog.LevelWarn, "presence fetch failed; presences sent as tracked",
			slog.String("topic", topic), slog.Int("keys", len(g)), slog.Any("error", err))
		return plain()
	}
	out := make(map[string]any, len(g))
	for k, p := range g {
		r, ok := res[k]
		switch {
		case !ok:
			out[k] = p
		case len(r.Metas) == 0: // the tracked metas, as they were encoded
			m := make(map[string]any, len(r.Extra)+1)
			maps.Copy(m, r.Extra)
			m["metas"] = p.Metas
			out[k] = m
		default:
			out[k] = r
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.log.LogAttrs(t.ctx, slog.LevelWarn, "presence fetch result not encoded; presences sent as tracked",
			slog.String("topic", topic), slog.Any("error", err))
		return plain()
	}
	return b
}

// callFetch runs Fetch in its own goroutine, so that a Fetch ignoring its
// context holds up presence for FetchTimeout at most.
func (t *Tracker) callFetch(topic string, in map[string]Presence) (map[string]Presence, error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.opts.FetchTimeout)
	defer cancel()
	type result struct {
		m   map[string]Presence
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if v := recover(); v != nil {
				r = result{err: fmt.Errorf("%w: %v", ErrFetchPanic, v)}
			}
			ch <- r
		}()
		r.m, r.err = t.opts.Fetch(ctx, topic, in)
	}()
	select {
	case r := <-ch:
		if r.err == nil && ctx.Err() != nil {
			break // returned after its deadline: too late
		}
		return r.m, r.err
	case <-ctx.Done():
	}
	return nil, fmt.Errorf("presence: fetch: %w", context.Cause(ctx))
}

func decodeMetas(raw []json.RawMessage) Presence {
	p := Presence{Metas: make([]map[string]any, len(raw))}
	for i, m := range raw {
		_ = json.Unmarshal(m, &p.Metas[i]) // valid JSON objects by construction
	}
	return p
}

// defaultFetchTimeout bounds one Fetch call.
const defaultFetchTimeout = 5 * time.Second
