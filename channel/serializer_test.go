package channel

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func enc(t *testing.T, s Serializer, f frame) string {
	t.Helper()
	b, bin, err := s.encode(nil, &f)
	require.NoError(t, err)
	require.False(t, bin)
	return string(b)
}

func TestEncodeV2(t *testing.T) {
	tests := []struct {
		name string
		f    frame
		want string
	}{
		{"heartbeat reply", frame{kind: kindReply, ref: "9", topic: "phoenix", status: "ok"},
			`[null,"9","phoenix","phx_reply",{"response":{},"status":"ok"}]`},
		{"reply", frame{kind: kindReply, joinRef: "6", ref: "7", topic: "room:1", status: "error", payload: []byte(`{"reason":"x"}`)},
			`["6","7","room:1","phx_reply",{"response":{"reason":"x"},"status":"error"}]`},
		{"push", frame{kind: kindPush, joinRef: "6", topic: "room:1", event: "joined", payload: []byte(`{"status":"connected"}`)},
			`["6",null,"room:1","joined",{"status":"connected"}]`},
		{"close", frame{kind: kindPush, joinRef: "6", ref: "6", topic: "room:1", event: "phx_close"},
			`["6","6","room:1","phx_close",{}]`},
		{"broadcast", frame{kind: kindBroadcast, joinRef: "ignored", topic: "room:1", event: "new_msg", payload: []byte(`{"body":"hi"}`)},
			`[null,null,"room:1","new_msg",{"body":"hi"}]`},
		{"escaping", frame{kind: kindBroadcast, topic: "r\"o\\o\nm\x01", event: "é\xff", payload: []byte(`{}`)},
			`[null,null,"r\"o\\o\nm\u0001","é\ufffd",{}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := enc(t, V2, tt.f)
			assert.Equal(t, tt.want, got)
			assert.True(t, json.Valid([]byte(got)))
		})
	}
}

func TestEncodeV1SortsKeysAndOmitsJoinRef(t *testing.T) {
	got := enc(t, V1, frame{kind: kindReply, joinRef: "1", ref: "1", topic: "room:lobby", status: "ok"})
	assert.Equal(t, `{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:lobby"}`, got)
	got = enc(t, V1, frame{kind: kindBroadcast, topic: "room:lobby", event: "new_msg", payload: []byte(`{"body":"hi"}`)})
	assert.Equal(t, `{"event":"new_msg","payload":{"body":"hi"},"ref":null,"topic":"room:lobby"}`, got)
}

func TestEncodeBinaryVectors(t *testing.T) {
	// Test vectors from the protocol spec, section 3.3.
	tests := []struct {
		f    frame
		want string
	}{
		{frame{kind: kindPush, binary: true, joinRef: "12", topic: "topic", event: "event", payload: []byte{0x65, 0x66, 0x67}},
			"00020505" + hex.EncodeToString([]byte("12topicevent")) + "656667"},
		{frame{kind: kindReply, binary: true, joinRef: "12", ref: "123", topic: "topic", status: "ok", payload: []byte{0x65, 0x66, 0x67}},
			"0102030502" + hex.EncodeToString([]byte("12123topicok")) + "656667"},
		{frame{kind: kindBroadcast, binary: true, topic: "topic", event: "event", payload: []byte{0x65, 0x66, 0x67}},
			"020505" + hex.EncodeToString([]byte("topicevent")) + "656667"},
	}
	for _, tt := range tests {
		b, bin, err := V2.encode(nil, &tt.f)
		require.NoError(t, err)
		assert.True(t, bin)
		assert.Equal(t, tt.want, hex.EncodeToString(b))
	}
	_, _, err := V1.encode(nil, &frame{kind: kindPush, binary: true})
	assert.Error(t, err, "V1 has no binary format")
	_, _, err = V2.encode(nil, &frame{kind: kindPush, binary: true, topic: strings.Repeat("x", 256)})
	assert.Error(t, err, "fields are limited to 255 bytes")
}

func TestDecodeBinaryVectors(t *testing.T) {
	b, _ := hex.DecodeString("0002030505313231323374" + "6f7069636576656e74656667")
	m, err := V2.decode(true, b)
	require.NoError(t, err)
	assert.Equal(t, Message{JoinRef: "12", Ref: "123", Topic: "topic", Event: "event", Payload: BinaryPayload([]byte("efg"))}, m)

	b, _ = hex.DecodeString("000101" + "0a03" + "3638" + hex.EncodeToString([]byte("room:lobbybin")) + "010203")
	m, err = V2.decode(true, b)
	require.NoError(t, err)
	assert.Equal(t, "6", m.JoinRef)
	assert.Equal(t, "8", m.Ref)
	assert.Equal(t, "room:lobby", m.Topic)
	assert.Equal(t, "bin", m.Event)
	assert.Equal(t, []byte{1, 2, 3}, m.Payload.Bytes())

	for _, bad := range []string{"", "00", "0101010101", "0005050505", "02050574"} {
		b, _ := hex.DecodeString(bad)
		_, err := V2.decode(true, b)
		assert.ErrorIs(t, err, ErrMalformed, bad)
	}
	_, err = V1.decode(true, []byte{0, 0, 0, 0, 0})
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestDecodeV2(t *testing.T) {
	m, err := V2.decode(false, []byte(`["6","7","room:1","msg",{"body":"hi"},"extra"]`))
	require.NoError(t, err)
	assert.Equal(t, Message{JoinRef: "6", Ref: "7", Topic: "room:1", Event: "msg", Payload: JSONPayload([]byte(`{"body":"hi"}`))}, m)

	m, err = V2.decode(false, []byte(` [null, "9", "phoenix", "heartbeat", {}] `))
	require.NoError(t, err)
	assert.Equal(t, "", m.JoinRef)
	assert.Equal(t, "9", m.Ref)

	m, err = V2.decode(false, []byte(`[1, 2, "t\u00e9", "e\"v", []]`))
	require.NoError(t, err, "numeric refs are kept as text")
	assert.Equal(t, "1", m.JoinRef)
	assert.Equal(t, "té", m.Topic)
	assert.Equal(t, `e"v`, m.Event)

	for _, bad := range []string{
		``, `{`, `{}`, `[]`, `["1","1","t","e"]`, `[true,"1","t","e",{}]`,
		`["1",{},"t","e",{}]`, `["1","1",null,"e",{}]`, `["1","1","t",5,{}]`, `["1","1","t","e",{]`,
	} {
		_, err := V2.decode(false, []byte(bad))
		assert.ErrorIs(t, err, ErrMalformed, bad)
	}
}

func TestDecodeV1(t *testing.T) {
	m, err := V1.decode(false, []byte(`{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}`))
	require.NoError(t, err)
	assert.Equal(t, Message{Ref: "1", Topic: "room:1", Event: "phx_join", Payload: JSONPayload([]byte(`{}`))}, m)
	m, err = V1.decode(false, []byte(`{"topic":"room:1","event":"x","payload":[1],"ref":null,"join_ref":"3"}`))
	require.NoError(t, err)
	assert.Equal(t, "3", m.JoinRef)
	assert.Equal(t, "", m.Ref)
	for _, bad := range []string{`[]`, `{"topic":"t","event":"e","payload":{}}`, `{"topic":1,"event":"e","payload":{},"ref":"1"}`, `nope`} {
		_, err := V1.decode(false, []byte(bad))
		assert.ErrorIs(t, err, ErrMalformed, bad)
	}
}

func TestEncodePayload(t *testing.T) {
	cases := []struct {
		in   any
		want string
		bin  bool
	}{
		{nil, `{}`, false},
		{map[string]any{"b": 1, "a": "x"}, `{"a":"x","b":1}`, false},
		{json.RawMessage(`{"z":1}`), `{"z":1}`, false},
		{JSONPayload([]byte(`[1]`)), `[1]`, false},
		{Binary{1, 2}, "\x01\x02", true},
		{BinaryPayload([]byte{3}), "\x03", true},
	}
	for _, c := range cases {
		b, bin, err := encodePayload(c.in)
		require.NoError(t, err)
		assert.Equal(t, c.want, string(b))
		assert.Equal(t, c.bin, bin)
	}
	_, _, err := encodePayload(make(chan int))
	assert.Error(t, err)
}

func TestPayloadHelpers(t *testing.T) {
	p := JSONPayload([]byte(`{"a":1}`))
	assert.Equal(t, map[string]any{"a": 1.0}, p.Map())
	assert.Equal(t, map[string]any{}, JSONPayload([]byte(`[1]`)).Map())
	assert.Equal(t, map[string]any{}, BinaryPayload([]byte{1}).Map())
	var v struct{ A int }
	require.NoError(t, p.Decode(&v))
	assert.Equal(t, 1, v.A)
	assert.ErrorIs(t, BinaryPayload(nil).Decode(&v), ErrBinaryPayload)
	b, err := json.Marshal(map[string]any{"p": p})
	require.NoError(t, err)
	assert.Equal(t, `{"p":{"a":1}}`, string(b))
	assert.Equal(t, "<binary 2 bytes>", BinaryPayload([]byte{1, 2}).String())
}
