package channeltest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/pubsub"
)

// Client is a test client connected to an Endpoint: Phoenix ChannelTest's
// socket and test process in one. Its in-process transport plugs into the
// channel.Server through the same channel.Transport seam as the WebSocket
// transport, so joins, hooks, mailboxes, broadcasts and terminations run
// the production code; only the network and the frame encoding are left
// out.
//
// Everything the server sends is kept in arrival order until an assertion
// takes it: AssertPush, AssertReply, AssertClosed... take the first frame
// that matches and leave the others, like a selective receive in Elixir.
// Refute assertions take nothing. Broadcasts on topics the client
// subscribed to (SubscribeAndJoin, Subscribe) are kept separately for
// AssertBroadcast.
//
// Refs are generated like phoenix.js: one counter per client, "1", "2"...;
// a join's join_ref is its ref.
//
// Assertions fail the test with tb.Fatalf and must be called from the
// test's goroutine. Failure messages list what did arrive.
type Client struct {
	ep   *Endpoint
	tb   testing.TB
	conn *channel.Conn
	tr   *transport
	ser  channel.Serializer
	ref  atomic.Uint64

	in      chan *channel.Message // to the read loop; unbuffered so pushes keep their order
	closing chan struct{}         // closed when either side starts closing
	done    chan struct{}         // closed when the read loop ended and conn.Finish returned

	mu        sync.Mutex
	notify    chan struct{} // closed and replaced whenever something arrives
	frames    []*entry      // frames not taken by an assertion, in arrival order
	nFrames   int
	bcasts    []*entry // broadcasts not taken, in arrival order
	nBcasts   int
	dropped   int // broadcasts dropped at MaxFrames
	overflow  bool
	terms     []termination
	joins     map[string]joined // by topic + "\x00" + join_ref
	subs      map[string]*subscriber
	closedBy  closer
	code      int
	reason    string
	finished  bool
	wireError []string
}

type closer uint8

const (
	openConn closer = iota
	byClient
	byServer
)

type termination struct {
	topic, joinRef string
	reason         error
}

// entry is one frame or broadcast waiting for an assertion.
type entry struct {
	seq   int
	frame *channel.Frame
	bc    *Broadcast
}

func (e *entry) payload() channel.Payload {
	if e.bc != nil {
		return e.bc.Payload
	}
	return e.frame.Payload()
}

func (e *entry) String() string {
	if e.bc != nil {
		return e.bc.String()
	}
	return e.frame.String()
}

// Broadcast is a message broadcast on a topic the Client subscribed to,
// as the PubSub carried it: Phoenix's %Broadcast{}.
type Broadcast struct {
	Topic   string
	Event   string
	Payload channel.Payload
	// From is the sender id of a broadcast_from (Client.BroadcastFrom), ""
	// for a plain broadcast.
	From string
}

// String renders the broadcast for failure messages.
func (b *Broadcast) String() string {
	s := fmt.Sprintf("broadcast %q on %q %s", b.Event, b.Topic, describePayload(b.Payload))
	if b.From != "" {
		s += " (from " + b.From + ")"
	}
	return s
}

func newClient(e *Endpoint, ser channel.Serializer) *Client {
	if ser == 0 {
		ser = channel.V2
	}
	c := &Client{
		ep:      e,
		tb:      e.tb,
		ser:     ser,
		in:      make(chan *channel.Message),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		notify:  make(chan struct{}),
		subs:    make(map[string]*subscriber),
	}
	c.tr = &transport{c: c}
	return c
}

// transport is the in-process channel.Transport. It is a separate type so
// that Client's own Close keeps the client's meaning.
type transport struct{ c *Client }

// Send implements channel.Transport: the frame is kept for the
// assertions. It never blocks.
func (t *transport) Send(f *channel.Frame) { t.c.arrive(f) }

// Close implements channel.Transport: the server closes the connection.
// The read loop then calls conn.Finish.
func (t *transport) Close(code int, reason string) { t.c.startClose(byServer, code, reason) }

func (c *Client) start() { go c.run() }

// run is the transport's read loop: it hands the test's messages to
// conn.Receive one at a time, in order, and finishes the connection when
// either side closes it.
func (c *Client) run() {
	defer close(c.done)
	for {
		select {
		case m := <-c.in:
			// A message the test sent before closing is handled, as frames
			// before a client's close frame are; once the server closes, the
			// WebSocket transport ignores what it still reads, and so does this.
			c.mu.Lock()
			ignore := c.closedBy == byServer
			c.mu.Unlock()
			if !ignore {
				c.conn.Receive(m)
			}
		case <-c.closing:
			c.conn.Finish()
			c.ep.forget(c)
			c.mu.Lock()
			c.finished = true
			c.signalLocked()
			c.mu.Unlock()
			return
		}
	}
}

func (c *Client) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

func (c *Client) startClose(by closer, code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closedBy != openConn {
		return
	}
	c.closedBy, c.code, c.reason = by, code, reason
	close(c.closing)
	c.signalLocked()
}

func (c *Client) signalLocked() {
	close(c.notify)
	c.notify = make(chan struct{})
}

func (c *Client) arrive(f *channel.Frame) {
	if c.ep.wire && !c.isClosing() {
		c.checkWire(f)
	}
	c.mu.Lock()
	if c.closedBy != openConn {
		c.mu.Unlock()
		return // the connection is closing: like the WebSocket, drop
	}
	if len(c.frames) >= c.ep.max {
		c.overflow = true
		c.mu.Unlock()
		c.startClose(byServer, channel.CloseSlowConsumer, "slow consumer")
		return
	}
	c.nFrames++
	c.frames = append(c.frames, &entry{seq: c.nFrames, frame: f})
	c.signalLocked()
	c.mu.Unlock()
}

func (c *Client) checkWire(f *channel.Frame) {
	b, bin, err := f.Encode(c.ser)
	msg := ""
	switch {
	case err != nil:
		msg = fmt.Sprintf("channeltest: frame cannot be encoded with %v: %v: %s", c.ser, err, f)
	case !bin && !json.Valid(b):
		msg = fmt.Sprintf("channeltest: %v frame is not valid JSON: %s", c.ser, truncate(string(b)))
	default:
		return
	}
	c.mu.Lock()
	c.wireError = append(c.wireError, msg)
	c.mu.Unlock()
	c.tb.Errorf("%s", msg) // Errorf is safe from any goroutine
}

// joined is the server side of one join, recorded by Endpoint.onJoin.
type joined struct {
	sock    *channel.Socket
	assigns map[string]any // snapshot right after the join
}

func (c *Client) recordJoin(cs *channel.Socket) {
	snap := make(map[string]any, len(cs.Assigns()))
	for k, v := range cs.Assigns() {
		snap[k] = v
	}
	c.mu.Lock()
	if c.joins == nil {
		c.joins = make(map[string]joined)
	}
	c.joins[cs.Topic()+"\x00"+cs.JoinRef()] = joined{sock: cs, assigns: snap}
	c.signalLocked()
	c.mu.Unlock()
}

// joinedAs returns the server side of a join. The server calls OnJoin just
// after it queued the join reply, so a test that saw the reply may get here
// first: it waits for the record (up to Options.Timeout), woken by
// recordJoin.
func (c *Client) joinedAs(topic, joinRef string) (joined, bool) {
	key := topic + "\x00" + joinRef
	var t *time.Timer
	for {
		c.mu.Lock()
		j, ok := c.joins[key]
		notify := c.notify
		c.mu.Unlock()
		if ok {
			return j, true
		}
		if t == nil {
			t = time.NewTimer(c.ep.timeout)
			defer t.Stop()
		}
		select {
		case <-notify:
		case <-t.C:
			return joined{}, false
		}
	}
}

func (c *Client) recordTermination(topic, joinRef string, reason error) {
	c.mu.Lock()
	c.terms = append(c.terms, termination{topic: topic, joinRef: joinRef, reason: reason})
	c.signalLocked()
	c.mu.Unlock()
}

// ID returns the socket id (ConnectInfo.ID after Connect).
func (c *Client) ID() string { return c.conn.ID() }

// CorrelationID returns the connection's correlation id.
func (c *Client) CorrelationID() string { return c.conn.CorrelationID() }

// Conn returns the server side of the connection.
func (c *Client) Conn() *channel.Conn { return c.conn }

// NextRef returns the next ref of the client's counter, for Send.
func (c *Client) NextRef() string { return strconv.FormatUint(c.ref.Add(1), 10) }

// Join joins topic with payload through the router, like a phoenix.js
// channel.join(), and fails the test unless the join is answered "ok".
// Pushes the channel makes while joining arrive after the reply, as on a
// WebSocket. See Push for payload encoding.
func (c *Client) Join(topic string, payload any) *Channel {
	c.tb.Helper()
	ch, reply := c.TryJoin(topic, payload)
	if ch == nil && reply != nil {
		c.tb.Fatalf("channeltest: join %q was refused: status %q, response %s", topic, reply.Status(), describePayload(reply.Payload()))
	}
	return ch
}

// SubscribeAndJoin subscribes the client to topic on the PubSub, so that
// AssertBroadcast sees every broadcast on it, and then joins it like Join.
func (c *Client) SubscribeAndJoin(topic string, payload any) *Channel {
	c.tb.Helper()
	c.Subscribe(topic)
	return c.Join(topic, payload)
}

// TryJoin joins topic like Join but accepts any answer: it returns the
// Channel (nil unless the reply status is "ok") and the join reply. It
// fails the test only when no reply arrives.
func (c *Client) TryJoin(topic string, payload any) (*Channel, *channel.Frame) {
	c.tb.Helper()
	p, ok := c.encode(payload)
	if !ok {
		return nil, nil
	}
	ref := c.NextRef()
	if !c.send(&channel.Message{JoinRef: ref, Ref: ref, Topic: topic, Event: channel.EventJoin, Payload: p}) {
		return nil, nil
	}
	push := &Push{cl: c, topic: topic, ref: ref, event: channel.EventJoin}
	reply := push.AssertReply("", nil)
	if reply == nil {
		return nil, nil
	}
	if reply.Status() != "ok" {
		return nil, reply
	}
	return &Channel{cl: c, topic: topic, joinRef: ref, reply: reply}, reply
}

// AssertJoinError joins topic and fails the test unless the join is
// refused with status "error" and a response matching want (see Matcher),
// like
//
//	assert {:error, %{reason: "unauthorized"}} = subscribe_and_join(socket, "room:secret")
func (c *Client) AssertJoinError(topic string, payload, want any) *channel.Frame {
	c.tb.Helper()
	ch, reply := c.TryJoin(topic, payload)
	switch {
	case reply == nil:
		return nil
	case ch != nil:
		c.tb.Fatalf("channeltest: join %q succeeded with response %s, want it refused", topic, describePayload(reply.Payload()))
		return nil
	case reply.Status() != "error":
		c.tb.Fatalf("channeltest: join %q answered with status %q, want \"error\"; response %s", topic, reply.Status(), describePayload(reply.Payload()))
		return nil
	}
	m := toMatcher(want)
	if err := m.MatchPayload(reply.Payload()); err != nil {
		c.tb.Fatalf("channeltest: join %q refused with an unexpected response\n  got:  %s\n  want: %s\n  %s",
			topic, describePayload(reply.Payload()), m, indent(err.Error(), "  "))
		return nil
	}
	return reply
}

// Send hands a raw client message to the server as it is, without filling
// in refs (see NextRef): for protocol tests such as stale join_refs or
// events on topics that were never joined. The returned Push awaits the
// reply to m.Ref.
func (c *Client) Send(m *channel.Message) *Push {
	c.tb.Helper()
	cp := *m
	if !c.send(&cp) {
		return nil
	}
	return &Push{cl: c, topic: m.Topic, ref: m.Ref, event: m.Event}
}

// Heartbeat sends a phoenix.js heartbeat; the server answers it "ok".
func (c *Client) Heartbeat() *Push {
	c.tb.Helper()
	return c.Send(&channel.Message{Ref: c.NextRef(), Topic: channel.TopicPhoenix, Event: channel.EventHeartbeat, Payload: channel.JSONPayload([]byte("{}"))})
}

// Subscribe subscribes the client to PubSub topics, like
// Phoenix.PubSub.subscribe in a test: their broadcasts are kept for
// AssertBroadcast until the Endpoint closes.
func (c *Client) Subscribe(topics ...string) {
	c.tb.Helper()
	for _, topic := range topics {
		c.mu.Lock()
		_, dup := c.subs[topic]
		c.mu.Unlock()
		if dup {
			continue
		}
		sub := &subscriber{c: c, topic: topic}
		if err := c.ep.PubSub().Subscribe(context.Background(), topic, sub); err != nil {
			c.tb.Fatalf("channeltest: subscribe to %q: %v", topic, err)
			return
		}
		c.mu.Lock()
		c.subs[topic] = sub
		c.mu.Unlock()
	}
}

// subscriber keeps the broadcasts of one topic for AssertBroadcast.
type subscriber struct {
	c     *Client
	topic string
}

// Deliver implements pubsub.Subscriber without blocking.
func (sub *subscriber) Deliver(msg *pubsub.Message) {
	c := sub.c
	p := channel.JSONPayload(msg.Payload)
	if msg.Binary {
		p = channel.BinaryPayload(msg.Payload)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bcasts) >= c.ep.max {
		c.dropped++
		return
	}
	c.nBcasts++
	c.bcasts = append(c.bcasts, &entry{seq: c.nBcasts, bc: &Broadcast{Topic: msg.Topic, Event: msg.Event, Payload: p, From: msg.From}})
	c.signalLocked()
}

func (c *Client) unsubscribeAll() {
	c.mu.Lock()
	subs := c.subs
	c.subs = make(map[string]*subscriber)
	c.mu.Unlock()
	for topic, sub := range subs {
		_ = c.ep.PubSub().Unsubscribe(context.Background(), topic, sub) // the PubSub may be closed already
	}
}

// AssertPush waits for a push of event on any topic (a FramePush, or a
// FrameBroadcast the channel's topic received) whose payload matches want
// (see Matcher), takes it and returns it. See Channel.AssertPush for one
// topic.
func (c *Client) AssertPush(event string, want any) *channel.Frame {
	c.tb.Helper()
	e := c.assert(c.pushQuery("", "", event, want))
	if e == nil {
		return nil
	}
	return e.frame
}

// RefutePush fails the test if a push of event whose payload matches want
// is waiting or arrives within window (0 means Options.RefuteTimeout).
func (c *Client) RefutePush(event string, want any, window time.Duration) {
	c.tb.Helper()
	c.refute(c.pushQuery("", "", event, want), window)
}

// AssertBroadcast waits for a broadcast of event on any topic the client
// subscribed to whose payload matches want, takes it and returns it, like
// Phoenix's assert_broadcast. Broadcasts made with BroadcastFrom are seen
// too: the test is not the sender.
func (c *Client) AssertBroadcast(event string, want any) *Broadcast {
	c.tb.Helper()
	e := c.assert(c.broadcastQuery("", event, want))
	if e == nil {
		return nil
	}
	return e.bc
}

// RefuteBroadcast fails the test if a broadcast of event whose payload
// matches want is waiting or arrives within window (0 means
// Options.RefuteTimeout).
func (c *Client) RefuteBroadcast(event string, want any, window time.Duration) {
	c.tb.Helper()
	c.refute(c.broadcastQuery("", event, want), window)
}

// AssertFrame waits for the first frame for which match returns true, takes
// it and returns it: for anything the other assertions do not cover. what
// describes the frame in failure messages. match runs on the test's
// goroutine and must not call the Client.
func (c *Client) AssertFrame(what string, match func(f *channel.Frame) bool) *channel.Frame {
	c.tb.Helper()
	e := c.assert(&query{what: what, want: Any, match: func(e *entry) bool { return match(e.frame) }})
	if e == nil {
		return nil
	}
	return e.frame
}

// Pending returns the frames that arrived and that no assertion took, in
// arrival order, without taking them.
func (c *Client) Pending() []*channel.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*channel.Frame, len(c.frames))
	for i, e := range c.frames {
		out[i] = e.frame
	}
	return out
}

// Close closes the connection as a client going away does and waits until
// every channel has terminated (reason channel.ErrConnClosed, no frames
// sent). It fails the test if that takes longer than Options.Timeout. A
// closed Client keeps its subscriptions: AssertBroadcast still works.
func (c *Client) Close() {
	c.tb.Helper()
	if !c.shutdown() {
		c.tb.Fatalf("channeltest: Close: the connection did not finish within %v: a channel callback is blocked", c.ep.timeout)
	}
}

// shutdown closes the connection from the client side and waits for the
// read loop. It reports false if the loop did not end within the timeout.
func (c *Client) shutdown() bool {
	c.startClose(byClient, 0, "")
	t := time.NewTimer(c.ep.timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

// AssertDisconnected waits until the server has closed the connection (a
// "disconnect" broadcast to the socket id, Conn.Close, a slow consumer, a
// server shutdown) and its channels have terminated, and returns the
// WebSocket close code and reason the server chose.
func (c *Client) AssertDisconnected() (code int, reason string) {
	c.tb.Helper()
	var by closer
	ok := c.await(c.ep.timeout, func() bool {
		by, code, reason = c.closedBy, c.code, c.reason
		return by == byClient || by == byServer && c.finished
	})
	switch {
	case by == byClient:
		c.tb.Fatalf("channeltest: AssertDisconnected: the test closed the client, the server did not")
	case !ok:
		c.tb.Fatalf("channeltest: the server did not close the connection within %v\n%s", c.ep.timeout, c.report(nil))
	}
	return code, reason
}

// encode turns a payload argument into a client payload.
func (c *Client) encode(payload any) (channel.Payload, bool) {
	c.tb.Helper()
	var p channel.Payload
	switch v := payload.(type) {
	case nil:
		p = channel.JSONPayload([]byte("{}"))
	case JSON:
		p = channel.JSONPayload([]byte(v))
	case json.RawMessage:
		p = channel.JSONPayload(v)
	case channel.Payload:
		p = v
	case channel.Binary:
		p = channel.BinaryPayload(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			c.tb.Fatalf("channeltest: cannot encode payload %T: %v", payload, err)
			return p, false
		}
		p = channel.JSONPayload(b)
	}
	switch {
	case p.IsBinary() && c.ser != channel.V2:
		c.tb.Fatalf("channeltest: binary payloads need the V2 serializer, the client uses %v", c.ser)
		return p, false
	case !p.IsBinary() && !json.Valid(p.Bytes()):
		c.tb.Fatalf("channeltest: payload is not valid JSON: %s", truncate(string(p.Bytes())))
		return p, false
	}
	return p, true
}

// send hands m to the read loop, failing the test if the connection is
// closed or does not take it in time (a channel mailbox stays full).
func (c *Client) send(m *channel.Message) bool {
	c.tb.Helper()
	if c.isClosing() {
		c.tb.Fatalf("channeltest: cannot send %q on %q: %s", m.Event, m.Topic, c.closedText())
		return false
	}
	t := time.NewTimer(c.ep.timeout)
	defer t.Stop()
	select {
	case c.in <- m:
		return true
	case <-c.closing:
		c.tb.Fatalf("channeltest: cannot send %q on %q: %s", m.Event, m.Topic, c.closedText())
	case <-t.C:
		c.tb.Fatalf("channeltest: the connection did not take %q on %q within %v: a channel mailbox is full and its callback blocked", m.Event, m.Topic, c.ep.timeout)
	}
	return false
}
