package channeltest

import (
	"fmt"
	"slices"
	"time"

	"github.com/pyre-go/pyre/channel"
)

// This file holds how a Client waits for frames, broadcasts and
// terminations, and how it describes what arrived when an assertion fails.

// closedText says why nothing more can be sent or received.
func (c *Client) closedText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connStateLocked()
}

// connStateLocked describes the connection's state; c.mu is held.
func (c *Client) connStateLocked() string {
	switch c.closedBy {
	case byClient:
		return "the client was closed by the test"
	case byServer:
		txt := fmt.Sprintf("the server closed the connection with code %d %q", c.code, c.reason)
		if c.overflow {
			txt += fmt.Sprintf(" after %d frames waited for assertions (Options.MaxFrames)", len(c.frames))
		}
		return txt
	}
	return "the connection is open"
}

// await calls cond with c.mu held until it returns true or timeout passes,
// waking up whenever something arrives. It reports cond's last result.
func (c *Client) await(timeout time.Duration, cond func() bool) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		c.mu.Lock()
		ok := cond()
		ch := c.notify
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			return cond()
		}
	}
}

// query describes what an assertion waits for.
type query struct {
	what  string              // e.g. `push "new_msg" on "room:lobby"`
	bcast bool                // search the broadcasts instead of the frames
	match func(e *entry) bool // the structure: kind, topic, event, refs
	want  Matcher
	// status, if set, is the reply status the frame must have.
	status string
	// joinRef, if set, is the join_ref a push must have: frames of another
	// join of the topic are near misses.
	joinRef string
}

// mismatch returns nil if e, which q.match accepted, has the wanted status
// and payload, or else how it differs.
func (q *query) mismatch(e *entry) error {
	if f := e.frame; q.joinRef != "" && f.Kind() == channel.FramePush && f.JoinRef() != q.joinRef {
		return fmt.Errorf("from another join of the topic: join_ref %q, want %q", f.JoinRef(), q.joinRef)
	}
	if q.status != "" && e.frame.Status() != q.status {
		return fmt.Errorf("status %q, want %q; response %s", e.frame.Status(), q.status, describePayload(e.payload()))
	}
	return q.want.MatchPayload(e.payload())
}

func (c *Client) pushQuery(topic, joinRef, event string, want any) *query {
	where := "on any topic"
	if topic != "" {
		where = fmt.Sprintf("on %q", topic)
	}
	return &query{
		what:    fmt.Sprintf("push %q %s", event, where),
		want:    toMatcher(want),
		joinRef: joinRef,
		match: func(e *entry) bool {
			f := e.frame
			k := f.Kind()
			return (k == channel.FramePush || k == channel.FrameBroadcast) &&
				f.Event() == event && (topic == "" || f.Topic() == topic)
		},
	}
}

func (c *Client) broadcastQuery(topic, event string, want any) *query {
	where := "on any subscribed topic"
	if topic != "" {
		where = fmt.Sprintf("on %q", topic)
	}
	return &query{
		what:  fmt.Sprintf("broadcast %q %s", event, where),
		bcast: true,
		want:  toMatcher(want),
		match: func(e *entry) bool {
			return e.bc.Event == event && (topic == "" || e.bc.Topic == topic)
		},
	}
}

// find waits up to timeout for the first waiting entry that q matches
// (structure and payload). With take it removes the entry. Frames stop
// arriving once the connection closes, so a frame search gives up early
// then; broadcasts can arrive until the end.
func (c *Client) find(q *query, timeout time.Duration, take bool) *entry {
	t := time.NewTimer(timeout)
	defer t.Stop()
	last := 0 // entries up to this seq were looked at
	for {
		c.mu.Lock()
		list := c.frames
		if q.bcast {
			list = c.bcasts
		}
		var cand []*entry
		for _, e := range list {
			if e.seq > last {
				cand = append(cand, e)
			}
		}
		ch := c.notify
		ended := !q.bcast && c.closedBy != openConn
		c.mu.Unlock()
		for _, e := range cand {
			last = e.seq
			if !q.match(e) || q.mismatch(e) != nil {
				continue
			}
			if !take || c.take(e, q.bcast) {
				return e
			}
		}
		if ended {
			return nil
		}
		select {
		case <-ch:
		case <-t.C:
			return nil
		}
	}
}

func (c *Client) take(e *entry, bcast bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := &c.frames
	if bcast {
		list = &c.bcasts
	}
	i := slices.Index(*list, e)
	if i < 0 {
		return false // taken by an assertion on another goroutine
	}
	*list = slices.Delete(*list, i, i+1)
	return true
}

func (c *Client) assert(q *query) *entry {
	c.tb.Helper()
	if err := checkWant(q.want); err != nil {
		c.tb.Fatalf("%v", err)
		return nil
	}
	e := c.find(q, c.ep.timeout, true)
	if e == nil {
		wait := fmt.Sprintf("within %v", c.ep.timeout)
		if !q.bcast && c.isClosing() {
			wait = "before the connection closed"
		}
		want := ""
		if q.want != Any {
			want = fmt.Sprintf("  want payload: %s\n", q.want)
		}
		c.tb.Fatalf("channeltest: no %s %s\n%s%s", q.what, wait, want, c.report(q))
	}
	return e
}

func (c *Client) refute(q *query, window time.Duration) {
	c.tb.Helper()
	if err := checkWant(q.want); err != nil {
		c.tb.Fatalf("%v", err)
		return
	}
	if window <= 0 {
		window = c.ep.refute
	}
	if e := c.find(q, window, false); e != nil {
		refuted := ""
		if q.want != Any {
			refuted = fmt.Sprintf("  refuted payload: %s\n", q.want)
		}
		c.tb.Fatalf("channeltest: unexpected %s (refuted for %v)\n  got #%d: %s\n%s%s", q.what, window, e.seq, e, refuted, c.report(nil))
	}
}

// maxListed bounds the entries a failure message lists besides near misses.
const maxListed = 20

// report describes what arrived, for failure messages. With a query, the
// entries that match it except for the payload show how the payload
// differs.
func (c *Client) report(q *query) string {
	c.mu.Lock()
	frames := slices.Clone(c.frames)
	bcasts := slices.Clone(c.bcasts)
	nFrames, nBcasts, dropped := c.nFrames, c.nBcasts, c.dropped
	terms := slices.Clone(c.terms)
	var topics []string
	for t := range c.subs {
		topics = append(topics, t)
	}
	state := c.connStateLocked()
	wire := slices.Clone(c.wireError)
	c.mu.Unlock()
	slices.Sort(topics)

	var b []byte
	list := func(name string, entries []*entry, total int) {
		if len(entries) == 0 {
			b = fmt.Appendf(b, "  no %s waiting for assertions (%d arrived, all taken)\n", name, total)
			return
		}
		b = fmt.Appendf(b, "  %s that arrived and were not taken by an assertion (%d of %d):\n", name, len(entries), total)
		shown := 0
		for _, e := range entries {
			var why error
			near := q != nil && q.bcast == (e.bc != nil) && q.match(e)
			if near {
				why = q.mismatch(e)
			}
			if !near && shown >= maxListed {
				continue
			}
			shown++
			b = fmt.Appendf(b, "    #%d %s\n", e.seq, e)
			if why != nil {
				b = fmt.Appendf(b, "        %s\n", indent(why.Error(), "        "))
			}
		}
		if shown < len(entries) {
			b = fmt.Appendf(b, "    ... %d more not shown\n", len(entries)-shown)
		}
	}
	if q == nil || !q.bcast {
		list("frames", frames, nFrames)
	}
	if q == nil || q.bcast {
		if len(topics) == 0 {
			b = append(b, "  the client is subscribed to no topic: use SubscribeAndJoin or Subscribe to see broadcasts\n"...)
		} else {
			list("broadcasts", bcasts, nBcasts)
			b = fmt.Appendf(b, "  subscribed topics: %q\n", topics)
		}
		if dropped > 0 {
			b = fmt.Appendf(b, "  %d broadcasts were dropped: more than Options.MaxFrames waited\n", dropped)
		}
	}
	for _, t := range terms {
		b = fmt.Appendf(b, "  channel %q (join_ref %q) terminated: %v\n", t.topic, t.joinRef, t.reason)
	}
	for _, w := range wire {
		b = fmt.Appendf(b, "  %s\n", w)
	}
	b = fmt.Appendf(b, "  connection: %s", state)
	return string(b)
}

// terminatedLocked returns the termination of the join (topic, joinRef), if any.
func (c *Client) terminatedLocked(topic, joinRef string) (termination, bool) {
	for _, t := range c.terms {
		if t.topic == topic && t.joinRef == joinRef {
			return t, true
		}
	}
	return termination{}, false
}
