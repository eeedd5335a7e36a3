package main

import (
	"bytes"
	"fmt"
	"time"

	"github.com/pyre-go/pyre/cmd/pyrebench/internal/wsc"
)

// The centrifuge client protocol v2 (JSON), as far as the benchmark needs
// it, so that the same lean client measures the centrifuge anchor
// (bench/anchors/centrifuge). A connection sends {"id":1,"connect":{…}},
// waits for the reply with id 1, sends {"id":2,"subscribe":{"channel":C}}
// and waits for the reply with id 2. A server frame may carry several
// replies or pushes separated by newlines; a publication is
// {"push":{"channel":C,"pub":{"data":<the bench payload>}}}, and an empty
// object {} is the server's ping, answered with {}.

var (
	centConnect   = []byte(`{"id":1,"connect":{"name":"pyrebench"}}`)
	centPing      = []byte(`{}`)
	prefixCentID  = []byte(`{"id":`)
	prefixCentPub = []byte(`{"push":`)
	markCentPub   = []byte(`"pub":`)
	markCentError = []byte(`"error":`)
)

// appendCentSubscribe appends {"id":2,"subscribe":{"channel":topic}}; topic
// is JSON-encoded.
func appendCentSubscribe(dst, topicJSON []byte) []byte {
	dst = append(dst, `{"id":2,"subscribe":{"channel":`...)
	dst = append(dst, topicJSON...)
	return append(dst, `}}`...)
}

// centKind is what one line of a centrifuge frame is.
type centKind int

const (
	centOther    centKind = iota
	centPub               // a publication push
	centPingKind          // {} from the server
	centReply             // {"id":N,…}: a reply, ok unless it has "error"
)

// classifyCent returns the kind of one line and, for replies, the id and
// whether it is not an error.
func classifyCent(line []byte) (kind centKind, id int64, ok bool) {
	switch {
	case bytes.Equal(line, centPing):
		return centPingKind, 0, false
	case bytes.HasPrefix(line, prefixCentPub):
		if bytes.Contains(line, markCentPub) {
			return centPub, 0, false
		}
		return centOther, 0, false
	case bytes.HasPrefix(line, prefixCentID):
		id, rest := leadingInt(line[len(prefixCentID):])
		return centReply, id, !bytes.Contains(rest, markCentError)
	}
	return centOther, 0, false
}

// centJoin connects and subscribes a fresh centrifuge connection.
func (w *worker) centJoin(ws *wsc.Conn) error {
	if err := ws.WriteMessage(wsc.OpText, centConnect); err != nil {
		return err
	}
	if err := centAwait(ws, 1); err != nil {
		return err
	}
	if err := ws.WriteMessage(wsc.OpText, appendCentSubscribe(nil, w.topicJSON)); err != nil {
		return err
	}
	return centAwait(ws, 2)
}

// centAwait reads until the reply with id arrives (answering pings).
func centAwait(ws *wsc.Conn, id int64) error {
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		for line := range bytes.SplitSeq(msg, []byte{'\n'}) {
			kind, got, ok := classifyCent(line)
			switch {
			case kind == centPingKind:
				if err := ws.WriteMessage(wsc.OpText, centPing); err != nil {
					return err
				}
			case kind == centReply && got == id:
				if !ok {
					return fmt.Errorf("%w: %.200s", errJoinRefused, line)
				}
				return nil
			}
		}
	}
}

// handleCent accounts for one inbound centrifuge message of a joined
// connection: each publication line is a delivery (latency from its ts).
func (w *worker) handleCent(c *wconn, msg []byte) error {
	var now int64
	for len(msg) > 0 {
		var line []byte
		line, msg, _ = bytes.Cut(msg, []byte{'\n'})
		kind, _, _ := classifyCent(line)
		switch kind {
		case centPub:
			ts, hasTS := tsOf(line)
			if !hasTS {
				w.other.Add(1)
				continue
			}
			if c.stalled {
				w.drained.Add(1)
				continue
			}
			if now == 0 {
				now = time.Now().UnixNano()
			}
			w.lat.Record(now - ts)
			if c.arrival > 0 {
				w.latArr.Record(c.arrival - ts)
			}
			c.delivered.Add(1)
			c.lastRecv.Store(now)
		case centPingKind:
			w.hbSent.Add(1) // answered pings, the centrifuge side of heartbeats
			if err := c.ws.WriteMessage(wsc.OpText, centPing); err != nil {
				return err
			}
		case centReply:
			w.chanEvents.Add(1)
		default:
			if len(line) > 0 {
				w.other.Add(1)
			}
		}
	}
	return nil
}
