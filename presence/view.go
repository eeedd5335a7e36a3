package presence

import (
	"encoding/json"
	"slices"
	"sort"
)

// entry is one presence: one key tracked by one socket (local) or received
// from a peer (remote) on one topic.
type entry struct {
	ref   string
	topic string
	key   string
	meta  json.RawMessage // the meta object as sent to clients, phx_ref included
	owner *owner          // local entries only
	seq   uint64          // local entries: clock of the change that added it
}

// view indexes every presence this node knows, local and remote, by topic
// and key, in the order they were added.
type view map[string]map[string][]*entry

func (v view) add(e *entry) {
	keys := v[e.topic]
	if keys == nil {
		keys = make(map[string][]*entry)
		v[e.topic] = keys
	}
	keys[e.key] = append(keys[e.key], e)
}

func (v view) remove(e *entry) {
	keys := v[e.topic]
	es := keys[e.key]
	i := slices.Index(es, e)
	if i < 0 {
		return
	}
	es = slices.Delete(es, i, i+1)
	switch {
	case len(es) > 0:
		keys[e.key] = es
	case len(keys) > 1:
		delete(keys, e.key)
	default:
		delete(v, e.topic)
	}
}

// presenceJSON is the wire form of one key: {"metas":[…]}.
type presenceJSON struct {
	Metas []json.RawMessage `json:"metas"`
}

// group returns the wire form of a key → entries map.
func group(keys map[string][]*entry) map[string]presenceJSON {
	out := make(map[string]presenceJSON, len(keys))
	for k, es := range keys {
		metas := make([]json.RawMessage, len(es))
		for i, e := range es {
			metas[i] = e.meta
		}
		out[k] = presenceJSON{Metas: metas}
	}
	return out
}

// diffJSON is a presence_diff payload; joins is encoded before leaves.
type diffJSON struct {
	Joins  map[string]presenceJSON `json:"joins"`
	Leaves map[string]presenceJSON `json:"leaves"`
}

// diff collects the changes of one operation per topic. A presence added
// and removed within the same diff cancels out.
type diff map[string]*topicDiff

type topicDiff struct {
	joins, leaves map[string][]*entry
}

func (d diff) topic(t string) *topicDiff {
	td := d[t]
	if td == nil {
		td = &topicDiff{joins: make(map[string][]*entry), leaves: make(map[string][]*entry)}
		d[t] = td
	}
	return td
}

func (d diff) join(e *entry) {
	td := d.topic(e.topic)
	td.joins[e.key] = append(td.joins[e.key], e)
}

func (d diff) leave(e *entry) {
	td := d.topic(e.topic)
	if es := td.joins[e.key]; len(es) > 0 {
		if i := slices.Index(es, e); i >= 0 {
			if es = slices.Delete(es, i, i+1); len(es) == 0 {
				delete(td.joins, e.key)
			} else {
				td.joins[e.key] = es
			}
			return
		}
	}
	td.leaves[e.key] = append(td.leaves[e.key], e)
}

// topics returns the topics with changes, sorted.
func (d diff) topics() []string {
	var topics []string
	for t, td := range d {
		if len(td.joins) > 0 || len(td.leaves) > 0 {
			topics = append(topics, t)
		}
	}
	sort.Strings(topics)
	return topics
}

// payload returns the presence_diff payload of topic.
func (d diff) payload(topic string) []byte {
	td := d[topic]
	b, err := json.Marshal(diffJSON{Joins: group(td.joins), Leaves: group(td.leaves)})
	if err != nil {
		panic("presence: encode diff: " + err.Error()) // metas are validated JSON objects
	}
	return b
}
