package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOutgoingFramesAreValidPhoenixV2(t *testing.T) {
	topic, _ := json.Marshal("room:bench")
	for raw, want := range map[string][]any{
		string(appendJoin(nil, topic)): {"1", "1", "room:bench", "phx_join", map[string]any{}},
		string(appendJoinWith(nil, topic, filterJoinPayload)): {"1", "1", "room:bench", "phx_join",
			map[string]any{"filter": map[string]any{"events": []any{"msg"}}}},
		string(appendHeartbeat(nil, 42)):                       {nil, "42", "phoenix", "heartbeat", map[string]any{}},
		string(appendEcho(nil, topic, 7, 1764000000123456789)): {"1", "7", "room:bench", "echo", map[string]any{"ts": json.Number("1764000000123456789")}},
	} {
		dec := json.NewDecoder(bytesReader(raw))
		dec.UseNumber()
		var got []any
		require.NoError(t, dec.Decode(&got), raw)
		assert.Equal(t, want, got, raw)
	}
}

func TestClassifyPyreFrames(t *testing.T) {
	topic, _ := json.Marshal("room:bench")
	for _, tc := range []struct {
		msg  string
		kind frameKind
		ref  int64
		ok   bool
	}{
		{`["1","1","room:bench","phx_reply",{"response":{},"status":"ok"}]`, kindReply, 1, true},
		{`["1","1","room:bench","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`, kindReply, 1, false},
		{`["1","12","room:bench","phx_reply",{"response":{"ts":5},"status":"ok"}]`, kindReply, 12, true},
		{`[null,"3","phoenix","phx_reply",{"response":{},"status":"ok"}]`, kindHBReply, 3, true},
		{`[null,null,"room:bench","msg",{"ts":1764000000123456789,"seq":0,"pad":"xx"}]`, kindPush, 0, false},
		{`["1","1","room:bench","phx_error",{}]`, kindChanEvent, 0, false},
		{`["1",null,"room:bench","phx_close",{}]`, kindChanEvent, 0, false},
		{`["1","4","room:other","phx_reply",{"status":"ok"}]`, kindChanEvent, 0, false},
		{`{"event":"x"}`, kindOther, 0, false},
		{``, kindOther, 0, false},
	} {
		kind, ref, ok := classify([]byte(tc.msg), topic)
		assert.Equal(t, tc.kind, kind, tc.msg)
		if tc.kind == kindReply || tc.kind == kindHBReply {
			assert.Equal(t, tc.ref, ref, tc.msg)
			assert.Equal(t, tc.ok, ok, tc.msg)
		}
	}
}

func TestTSOf(t *testing.T) {
	ts, ok := tsOf([]byte(`[null,null,"room:bench","msg",{"ts":1764000000123456789,"seq":3,"pad":"x"}]`))
	assert.True(t, ok)
	assert.Equal(t, int64(1764000000123456789), ts)
	_, ok = tsOf([]byte(`[null,null,"room:bench","msg",{"seq":3}]`))
	assert.False(t, ok)
	_, ok = tsOf([]byte(`{"ts":"x"}`))
	assert.False(t, ok)
	_, ok = tsOf([]byte(`{"ts":9999999999999999999}`)) // above MaxInt64
	assert.False(t, ok)
}

func TestPushEventIs(t *testing.T) {
	topic, _ := json.Marshal("room:bench")
	msg := []byte(`[null,null,"room:bench","msg",{"ts":1,"seq":0,"pad":"x"}]`)
	odd := []byte(`[null,null,"room:bench","odd",{"ts":1,"seq":1,"pad":"x"}]`)
	assert.True(t, pushEventIs(msg, topic, "msg"))
	assert.False(t, pushEventIs(odd, topic, "msg"))
	assert.True(t, pushEventIs(odd, topic, "odd"))
	assert.False(t, pushEventIs([]byte(`[null,null,"room:bench","msgx",{}]`), topic, "msg"), "a longer name")
	assert.False(t, pushEventIs([]byte(`[null,null,"room:other","msg",{}]`), topic, "msg"), "another topic")
	assert.False(t, pushEventIs([]byte(`["1","1","room:bench","msg",{}]`), topic, "msg"), "not a broadcast")
	assert.Len(t, oddEvent, len(filterEvent), "frames of both events have the same size")
}
