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

// The fanout -filter-pct runs: the server (pyre-bench-server -odd-event
// odd) sends the broadcasts with an odd seq as oddEvent, the others as
// filterEvent, and a filtering subscriber joins with filterJoinPayload, so
// that it gets the broadcasts of even seq only.
const (
	filterEvent       = "msg"
	oddEvent          = "odd" // as long as filterEvent: frames keep their size
	filterJoinPayload = `{"filter":{"events":["` + filterEvent + `"]}}`
)

// appendJoin appends ["1","1",topic,"phx_join",{}]; topic is JSON-encoded.
func appendJoin(dst, topicJSON []byte) []byte {
	return appendJoinWith(dst, topicJSON, "{}")
}

// appendJoinWith appends ["1","1",topic,"phx_join",payload]; topic and
// payload are JSON.
func appendJoinWith(dst, topicJSON []byte, payload string) []byte {
	dst = append(dst, `["1","1",`...)
	dst = append(dst, topicJSON...)
	dst = append(dst, `,"phx_join",`...)
	dst = append(dst, payload...)
	return append(dst, ']')
}

// pushEventIs reports whether msg, a push frame (kindPush) on topicJSON,
// carries event (a plain name, no characters JSON escapes).
func pushEventIs(msg, topicJSON []byte, event string) bool {
	rest, ok := bytes.CutPrefix(msg, prefixPush)
	if !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, topicJSON); !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"`)); !ok {
		return false
	}
	rest, ok = bytes.CutPrefix(rest, []byte(event))
	return ok && len(rest) > 0 && rest[0] == '"'
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
