package presence

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
)

// Replication message events on Options.Topic. The payload of each is a
// wireMsg; pubsub.Message.From carries the sender's epoch so that a tracker
// skips its own messages.
const (
	evHeartbeat = "heartbeat" // Clock: the sender's last published clock
	evDelta     = "delta"     // From, Clock, Ops: the changes From+1 … Clock
	evRequest   = "request"   // To: epoch of the node asked for its state, "" for all
	evState     = "state"     // Clock, Entries: the sender's presences at Clock
	evGoodbye   = "goodbye"   // the sender shuts down: drop its presences
)

// wireVersion is the replication format version; messages of another
// version are ignored.
const wireVersion = 1

type wireMsg struct {
	V       int         `json:"v"`
	Node    string      `json:"node"`
	Epoch   string      `json:"epoch"`
	Clock   uint64      `json:"clock"`
	From    uint64      `json:"from,omitempty"`
	To      string      `json:"to,omitempty"`
	Ops     []wireOp    `json:"ops,omitempty"`
	Entries []wireEntry `json:"entries,omitempty"`
}

// wireOp is one change: Add a presence, or remove the presence with ref Rm.
type wireOp struct {
	Add *wireEntry `json:"add,omitempty"`
	Rm  string     `json:"rm,omitempty"`
}

type wireEntry struct {
	Ref   string          `json:"ref"`
	Topic string          `json:"topic"`
	Key   string          `json:"key"`
	Meta  json.RawMessage `json:"meta"`
}

func toWire(e *entry) *wireEntry {
	return &wireEntry{Ref: e.ref, Topic: e.topic, Key: e.key, Meta: e.meta}
}

// fromWire validates a peer's entry.
func fromWire(w *wireEntry) (*entry, bool) {
	if w == nil || w.Ref == "" || w.Topic == "" {
		return nil, false
	}
	m := bytes.TrimSpace(w.Meta)
	if len(m) < 2 || m[0] != '{' || !json.Valid(m) {
		return nil, false
	}
	return &entry{ref: w.Ref, topic: w.Topic, key: w.Key, meta: m}, true
}

// newRef returns a phx_ref: 12 random bytes in URL-safe base64, 16
// characters, like current phoenix_pubsub.
func newRef() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// encodeMeta returns meta as a JSON object without the reserved phx_ref
// keys. nil is {}.
func encodeMeta(meta map[string]any) ([]byte, error) {
	if _, ok := meta["phx_ref"]; ok {
		meta = maps.Clone(meta)
		delete(meta, "phx_ref")
	}
	if _, ok := meta["phx_ref_prev"]; ok {
		meta = maps.Clone(meta)
		delete(meta, "phx_ref_prev")
	}
	if meta == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("presence: encode meta: %w", err)
	}
	return b, nil
}

// withRefs appends phx_ref (and phx_ref_prev when prev is set) to the
// encoded object meta. Refs are URL-safe base64 and need no escaping.
func withRefs(meta []byte, ref, prev string) json.RawMessage {
	out := make([]byte, 0, len(meta)+50)
	out = append(out, meta[:len(meta)-1]...)
	if len(meta) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"phx_ref":"`...)
	out = append(out, ref...)
	out = append(out, '"')
	if prev != "" {
		out = append(out, `,"phx_ref_prev":"`...)
		out = append(out, prev...)
		out = append(out, '"')
	}
	return append(out, '}')
}
