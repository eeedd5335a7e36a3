package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCentSubscribeIsValidJSON(t *testing.T) {
	topic, _ := json.Marshal("bench")
	var v map[string]any
	require.NoError(t, json.Unmarshal(appendCentSubscribe(nil, topic), &v))
	assert.Equal(t, map[string]any{"id": 2.0, "subscribe": map[string]any{"channel": "bench"}}, v)
	require.NoError(t, json.Unmarshal(centConnect, &v))
	assert.Equal(t, 1.0, v["id"])
}

func TestClassifyCentrifugeLines(t *testing.T) {
	for line, want := range map[string]struct {
		kind centKind
		id   int64
		ok   bool
	}{
		`{}`: {centPingKind, 0, false},
		`{"id":1,"connect":{"client":"a1","version":"0.40.1","ping":25,"pong":true}}`: {centReply, 1, true},
		`{"id":2,"subscribe":{}}`:                                               {centReply, 2, true},
		`{"id":2,"error":{"code":102,"message":"unknown channel"}}`:             {centReply, 2, false},
		`{"push":{"channel":"bench","pub":{"data":{"ts":1,"seq":0,"pad":""}}}}`: {centPub, 0, false},
		`{"push":{"channel":"bench","join":{"info":{}}}}`:                       {centOther, 0, false},
		`[null,null,"room:bench","msg",{}]`:                                     {centOther, 0, false},
	} {
		kind, id, ok := classifyCent([]byte(line))
		assert.Equal(t, want.kind, kind, line)
		assert.Equal(t, want.id, id, line)
		assert.Equal(t, want.ok, ok, line)
	}
}
