package envelope

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/pubsub"
)

func TestRoundTrip(t *testing.T) {
	node := NewNodeID()
	for _, msg := range []*pubsub.Message{
		{Topic: "room:1", Event: "new_msg", Payload: []byte(`{"a":1}`)},
		{Topic: "t", Payload: nil},
		{Topic: strings.Repeat("x", 300), Event: "e", Payload: []byte{0, 1, 255}, Binary: true, From: "n:1"},
		{Topic: "\x00", Event: "\xff", From: strings.Repeat("f", 200), Payload: bytes.Repeat([]byte{7}, 1<<20), Binary: true},
	} {
		data := Encode(node, msg)
		assert.Equal(t, Size(msg), len(data))
		assert.Equal(t, cap(data), len(data), "exactly sized")
		gotNode, got, err := Decode(data)
		require.NoError(t, err)
		assert.Equal(t, node, gotNode)
		assert.Equal(t, msg.Topic, got.Topic)
		assert.Equal(t, msg.Event, got.Event)
		assert.Equal(t, msg.From, got.From)
		assert.Equal(t, msg.Binary, got.Binary)
		assert.True(t, bytes.Equal(msg.Payload, got.Payload))
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Encode(NewNodeID(), &pubsub.Message{Topic: "t", Event: "e", Payload: []byte("p")})
	bad := map[string][]byte{
		"empty":       nil,
		"short":       good[:10],
		"version":     append([]byte{2}, good[1:]...),
		"flags":       append([]byte{1, 0x80}, good[2:]...),
		"truncated":   good[:headerLen+1],
		"huge length": append(append([]byte{}, good[:headerLen]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"empty topic": Encode(NodeID{}, &pubsub.Message{Topic: ""}),
	}
	for name, data := range bad {
		_, _, err := Decode(data)
		assert.True(t, errors.Is(err, ErrMalformed), "%s: %v", name, err)
	}
}

func TestNodeIDsDiffer(t *testing.T) {
	assert.NotEqual(t, NewNodeID(), NewNodeID())
	assert.Len(t, NewNodeID().String(), 32)
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(NewNodeID(), &pubsub.Message{Topic: "room:1", Event: "e", Payload: []byte(`{}`), From: "x"}))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		node, msg, err := Decode(data)
		if err != nil {
			return
		}
		// Lengths may be non-canonical varints, so compare decoded fields.
		node2, msg2, err := Decode(Encode(node, msg))
		if err != nil || node2 != node || msg2.Topic != msg.Topic || msg2.Event != msg.Event ||
			msg2.From != msg.From || msg2.Binary != msg.Binary || !bytes.Equal(msg2.Payload, msg.Payload) {
			t.Fatalf("round trip of %x changed it (err %v)", data, err)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	node := NewNodeID()
	msg := &pubsub.Message{Topic: "room:lobby", Event: "new_msg", Payload: bytes.Repeat([]byte("x"), 128)}
	b.ReportAllocs()
	for b.Loop() {
		_ = Encode(node, msg)
	}
}
