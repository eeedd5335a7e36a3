package main

import (
	"bytes"
	"math"
	"strconv"
)

// Phoenix V2 JSON frames, built and recognized without decoding JSON: the
// client only ever joins one topic with join_ref "1", so every frame it
// receives starts with one of a few fixed prefixes.

var (
	prefixPush     = []byte(`[null,null,`) // broadcast push
	prefixHBReply  = []byte(`[null,"`)     // heartbeat reply: [null,"N","phoenix","phx_reply",…]
	prefixChannel  = []byte(`["1","`)      // reply (or push with a ref) on the joined channel
	prefixChanPush = []byte(`["1",null,`)  // push of the joined channel: phx_close, phx_error
	markTS         = []byte(`"ts":`)       // timestamp inside a bench payload
	markStatusOK   = []byte(`"status":"ok"`)
)

// appendJoin appends ["1","1",topic,"phx_join",{}]; topic is JSON-encoded.
func appendJoin(dst, topicJSON []byte) []byte {
	dst = append(dst, `["1","1",`...)
	dst = append(dst, topicJSON...)
	return append(dst, `,"phx_join",{}]`...)
}

// appendHeartbeat appends [null,"ref","phoenix","heartbeat",{}].
func appendHeartbeat(dst []byte, ref int64) []byte {
	dst = append(dst, `[null,"`...)
	dst = strconv.AppendInt(dst, ref, 10)
	return append(dst, `","phoenix","heartbeat",{}]`...)
}

// appendEcho appends ["1","ref",topic,"echo",{"ts":ts}].
func appendEcho(dst, topicJSON []byte, ref, ts int64) []byte {
	dst = append(dst, `["1","`...)
	dst = strconv.AppendInt(dst, ref, 10)
	dst = append(dst, `",`...)
	dst = append(dst, topicJSON...)
	dst = append(dst, `,"echo",{"ts":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, `}]`...)
}

// frameKind is what an inbound frame is.
type frameKind int

const (
	kindOther     frameKind = iota
	kindPush                // [null,null,topic,event,payload]
	kindHBReply             // [null,"N","phoenix","phx_reply",…]
	kindReply               // ["1","N",topic,"phx_reply",…]
	kindChanEvent           // ["1",…] anything else: phx_error, phx_close, pushes
)

// classify returns the kind of msg and, for replies, the ref and whether
// the status is "ok".
func classify(msg, topicJSON []byte) (kind frameKind, ref int64, ok bool) {
	switch {
	case bytes.HasPrefix(msg, prefixPush):
		return kindPush, 0, false
	case bytes.HasPrefix(msg, prefixHBReply):
		ref, rest := leadingInt(msg[len(prefixHBReply):])
		if bytes.HasPrefix(rest, []byte(`","phoenix","phx_reply",`)) {
			return kindHBReply, ref, bytes.Contains(rest, markStatusOK)
		}
		return kindOther, 0, false
	case bytes.HasPrefix(msg, prefixChannel):
		ref, rest := leadingInt(msg[len(prefixChannel):])
		if len(rest) > 2 && rest[0] == '"' && rest[1] == ',' && bytes.HasPrefix(rest[2:], topicJSON) &&
			bytes.HasPrefix(rest[2+len(topicJSON):], []byte(`,"phx_reply",`)) {
			return kindReply, ref, bytes.Contains(rest, markStatusOK)
		}
		return kindChanEvent, 0, false
	case bytes.HasPrefix(msg, prefixChanPush):
		return kindChanEvent, 0, false
	}
	return kindOther, 0, false
}

// leadingInt parses the decimal digits at the start of b (at most 19, so
// that any int64 fits: Unix nanoseconds have 19).
func leadingInt(b []byte) (int64, []byte) {
	var v uint64
	i := 0
	for ; i < len(b) && i < 19 && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + uint64(b[i]-'0')
	}
	if v > math.MaxInt64 {
		return 0, b
	}
	return int64(v), b[i:]
}

// tsOf returns the "ts" of a bench payload inside a push frame.
func tsOf(msg []byte) (int64, bool) {
	i := bytes.Index(msg, markTS)
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(markTS):]
	v, after := leadingInt(rest)
	if len(after) == len(rest) {
		return 0, false
	}
	return v, true
}
