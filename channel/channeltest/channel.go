package channeltest

import (
	"errors"
	"fmt"
	"time"

	"github.com/pyre-go/pyre/channel"
)

// Channel is a topic the Client joined: the client side of one join, like
// a phoenix.js channel. Its assertions only look at frames of this topic
// and join_ref.
type Channel struct {
	cl      *Client
	topic   string
	joinRef string
	reply   *channel.Frame
}

// Topic returns the joined topic.
func (c *Channel) Topic() string { return c.topic }

// JoinRef returns the join_ref of the join.
func (c *Channel) JoinRef() string { return c.joinRef }

// Assigns returns the channel's assigns as they were right after its Join
// returned, like the socket Phoenix's subscribe_and_join returns. The map
// is a copy: later Assign calls of the channel do not show. The server
// records the join just after it sent the join reply; Assigns waits for
// that record up to Options.Timeout.
func (c *Channel) Assigns() map[string]any {
	c.cl.tb.Helper()
	j, ok := c.cl.joinedAs(c.topic, c.joinRef)
	if !ok {
		c.cl.tb.Fatalf("channeltest: no server-side join recorded for %s (join_ref %s)", c.topic, c.joinRef)
		return nil
	}
	return j.assigns
}

// Send delivers info to the channel's HandleInfo, like
// send(socket.channel_pid, msg) in a Phoenix test. It fails the test if the
// channel has ended or its mailbox is full.
func (c *Channel) Send(info any) {
	c.cl.tb.Helper()
	j, ok := c.cl.joinedAs(c.topic, c.joinRef)
	if !ok {
		c.cl.tb.Fatalf("channeltest: no server-side join recorded for %s (join_ref %s)", c.topic, c.joinRef)
		return
	}
	if !j.sock.Send(info) {
		c.cl.tb.Fatalf("channeltest: Send to %s failed: the channel ended or its mailbox is full", c.topic)
	}
}

// JoinReply returns the "ok" reply to the join; its Payload is what Join
// returned.
func (c *Channel) JoinReply() *channel.Frame { return c.reply }

// Client returns the Client the channel was joined on.
func (c *Channel) Client() *Client { return c.cl }

// Push sends event with payload to the channel, like phoenix.js
// channel.push, with the next ref of the client and the channel's
// join_ref, and returns the Push to await its reply. Events of one client
// reach the server in the order they were pushed.
//
// payload is encoded with encoding/json (nil is {}); JSON, json.RawMessage
// and channel.Payload are sent as they are, channel.Binary as a binary
// payload.
func (c *Channel) Push(event string, payload any) *Push {
	c.cl.tb.Helper()
	p, ok := c.cl.encode(payload)
	if !ok {
		return nil
	}
	ref := c.cl.NextRef()
	if !c.cl.send(&channel.Message{JoinRef: c.joinRef, Ref: ref, Topic: c.topic, Event: event, Payload: p}) {
		return nil
	}
	return &Push{cl: c.cl, topic: c.topic, ref: ref, event: event}
}

// Leave leaves the channel, like phoenix.js channel.leave(): the server
// replies "ok", sends phx_close, and the channel terminates with
// channel.ErrLeft. Await the reply with AssertReply("ok", nil).
func (c *Channel) Leave() *Push {
	c.cl.tb.Helper()
	ref := c.cl.NextRef()
	if !c.cl.send(&channel.Message{JoinRef: c.joinRef, Ref: ref, Topic: c.topic, Event: channel.EventLeave, Payload: channel.JSONPayload([]byte("{}"))}) {
		return nil
	}
	return &Push{cl: c.cl, topic: c.topic, ref: ref, event: channel.EventLeave}
}

// AssertPush waits for a push of event from this channel (or a broadcast
// delivered on its topic) whose payload matches want (see Matcher), takes
// it and returns it, like Phoenix's assert_push.
func (c *Channel) AssertPush(event string, want any) *channel.Frame {
	c.cl.tb.Helper()
	e := c.cl.assert(c.cl.pushQuery(c.topic, c.joinRef, event, want))
	if e == nil {
		return nil
	}
	return e.frame
}

// RefutePush fails the test if a push of event from this channel whose
// payload matches want is waiting or arrives within window (0 means
// Options.RefuteTimeout), like Phoenix's refute_push.
func (c *Channel) RefutePush(event string, want any, window time.Duration) {
	c.cl.tb.Helper()
	c.cl.refute(c.cl.pushQuery(c.topic, c.joinRef, event, want), window)
}

// AssertBroadcast waits for a broadcast of event on the channel's topic
// whose payload matches want, takes it and returns it. The client must be
// subscribed to the topic: join with SubscribeAndJoin.
func (c *Channel) AssertBroadcast(event string, want any) *Broadcast {
	c.cl.tb.Helper()
	e := c.cl.assert(c.cl.broadcastQuery(c.topic, event, want))
	if e == nil {
		return nil
	}
	return e.bc
}

// RefuteBroadcast fails the test if a broadcast of event on the channel's
// topic whose payload matches want is waiting or arrives within window (0
// means Options.RefuteTimeout).
func (c *Channel) RefuteBroadcast(event string, want any, window time.Duration) {
	c.cl.tb.Helper()
	c.cl.refute(c.cl.broadcastQuery(c.topic, event, want), window)
}

// AssertClosed waits for the phx_close of this join: the channel stopped
// normally (a handler returned channel.ErrStop, the client left, a
// duplicate join replaced it) and phoenix.js will not rejoin.
func (c *Channel) AssertClosed() *channel.Frame {
	c.cl.tb.Helper()
	return c.assertControl(channel.EventClose)
}

// AssertError waits for the phx_error of this join: the channel crashed (a
// handler panicked or returned an error) and phoenix.js would rejoin.
func (c *Channel) AssertError() *channel.Frame {
	c.cl.tb.Helper()
	return c.assertControl(channel.EventError)
}

func (c *Channel) assertControl(event string) *channel.Frame {
	c.cl.tb.Helper()
	q := &query{
		what: fmt.Sprintf("%s of %q (join_ref %q)", event, c.topic, c.joinRef),
		want: Any,
		match: func(e *entry) bool {
			f := e.frame
			return f.Kind() == channel.FramePush && f.Event() == event && f.Topic() == c.topic &&
				f.JoinRef() == c.joinRef && f.Ref() == c.joinRef
		},
	}
	e := c.cl.assert(q)
	if e == nil {
		return nil
	}
	return e.frame
}

// AssertTerminated waits until the channel's Terminate has run and
// returns the reason it was given. If want is not nil, the reason must
// match it with errors.Is: channel.ErrLeft, channel.ErrConnClosed,
// channel.ErrPanic (for a *channel.PanicError), channel.ErrStop, or an
// application error. A refused join never terminates.
func (c *Channel) AssertTerminated(want error) error {
	c.cl.tb.Helper()
	var t termination
	var found bool
	c.cl.await(c.cl.ep.timeout, func() bool {
		t, found = c.cl.terminatedLocked(c.topic, c.joinRef)
		return found
	})
	switch {
	case !found:
		c.cl.tb.Fatalf("channeltest: channel %q (join_ref %q) did not terminate within %v\n%s", c.topic, c.joinRef, c.cl.ep.timeout, c.cl.report(nil))
		return nil
	case want != nil && !errors.Is(t.reason, want):
		c.cl.tb.Fatalf("channeltest: channel %q (join_ref %q) terminated with reason %q (%T), want %q", c.topic, c.joinRef, t.reason, t.reason, want)
	}
	return t.reason
}

// Push is a message the test sent; its reply can be awaited.
type Push struct {
	cl    *Client
	topic string
	ref   string
	event string
}

// Ref returns the message's ref.
func (p *Push) Ref() string { return p.ref }

// Topic returns the message's topic.
func (p *Push) Topic() string { return p.topic }

// AssertReply waits for the reply to this push, takes it and returns it:
// the reply must have the given status ("" accepts any) and a response
// matching want (see Matcher), like Phoenix's assert_reply.
//
//	ch.Push("new_msg", map[string]any{"body": "hi"}).AssertReply("ok", channeltest.JSON(`{"id":1}`))
func (p *Push) AssertReply(status string, want any) *channel.Frame {
	p.cl.tb.Helper()
	e := p.cl.assert(p.replyQuery(status, want))
	if e == nil {
		return nil
	}
	return e.frame
}

// RefuteReply fails the test if a reply to this push is waiting or arrives
// within window (0 means Options.RefuteTimeout): for handlers that return
// channel.NoReply.
func (p *Push) RefuteReply(window time.Duration) {
	p.cl.tb.Helper()
	p.cl.refute(p.replyQuery("", nil), window)
}

func (p *Push) replyQuery(status string, want any) *query {
	what := fmt.Sprintf("reply to %q on %q (ref %q)", p.event, p.topic, p.ref)
	if status != "" {
		what = fmt.Sprintf("%q %s", status, what)
	}
	return &query{
		what:   what,
		want:   toMatcher(want),
		status: status,
		match: func(e *entry) bool {
			f := e.frame
			return f.Kind() == channel.FrameReply && f.Topic() == p.topic && f.Ref() == p.ref
		},
	}
}
