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

// Socket is a test client connected to an Endpoint: Phoenix ChannelTest's
// socket and test process in one. Its in-process transport plugs into the
// channel.Server through the same channel.Transport seam as the WebSocket
// transport, so joins, hooks, mailboxes, broadcasts and terminations run
// the production code; only the network and the frame encoding are left
// out.
//
// Everything the server sends is kept in arrival order until an assertion
// takes it: AssertPush, AssertReply, AssertClosed... take the first frame
// that matches and leave the others, like a selective receive in Elixir.
// Refute assertions take nothing. Broadcasts on topics the socket
// subscribed to (SubscribeAndJoin, Subscribe) are kept separately for
// AssertBroadcast.
//
// Refs are generated like phoenix.js: one counter per socket, "1", "2"...;
// a join's join_ref is its ref.
//
// Assertions fail the test with tb.Fatalf and must be called from the
// test's goroutine. Failure messages list what did arrive.
type Socket struct {
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

// Broadcast is a message broadcast on a topic the Socket subscribed to,
// as the PubSub carried it: Phoenix's %Broadcast{}.
type Broadcast struct {
	Topic   string
	Event   string
	Payload channel.Payload
	// From is the sender id of a broadcast_from (Socket.BroadcastFrom), ""
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

func newSocket(e *Endpoint, ser channel.Serializer) *Socket {
	if ser == 0 {
		ser = channel.V2
	}
	s := &Socket{
		ep:      e,
		tb:      e.tb,
		ser:     ser,
		in:      make(chan *channel.Message),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		notify:  make(chan struct{}),
		subs:    make(map[string]*subscriber),
	}
	s.tr = &transport{s: s}
	return s
}

// transport is the in-process channel.Transport. It is a separate type so
// that Socket's own Close keeps the client's meaning.
type transport struct{ s *Socket }

// Send implements channel.Transport: the frame is kept for the
// assertions. It never blocks.
func (t *transport) Send(f *channel.Frame) { t.s.arrive(f) }

// Close implements channel.Transport: the server closes the connection.
// The read loop then calls conn.Finish.
func (t *transport) Close(code int, reason string) { t.s.startClose(byServer, code, reason) }

func (s *Socket) start() { go s.run() }

// run is the transport's read loop: it hands the test's messages to
// conn.Receive one at a time, in order, and finishes the connection when
// either side closes it.
func (s *Socket) run() {
	defer close(s.done)
	for {
		select {
		case m := <-s.in:
			// A message the test sent before closing is handled, as frames
			// before a client's close frame are; once the server closes, the
			// WebSocket transport ignores what it still reads, and so does this.
			s.mu.Lock()
			ignore := s.closedBy == byServer
			s.mu.Unlock()
			if !ignore {
				s.conn.Receive(m)
			}
		case <-s.closing:
			s.conn.Finish()
			s.ep.forget(s)
			s.mu.Lock()
			s.finished = true
			s.signalLocked()
			s.mu.Unlock()
			return
		}
	}
}

func (s *Socket) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

func (s *Socket) startClose(by closer, code int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closedBy != openConn {
		return
	}
	s.closedBy, s.code, s.reason = by, code, reason
	close(s.closing)
	s.signalLocked()
}

func (s *Socket) signalLocked() {
	close(s.notify)
	s.notify = make(chan struct{})
}

func (s *Socket) arrive(f *channel.Frame) {
	if s.ep.wire && !s.isClosing() {
		s.checkWire(f)
	}
	s.mu.Lock()
	if s.closedBy != openConn {
		s.mu.Unlock()
		return // the connection is closing: like the WebSocket, drop
	}
	if len(s.frames) >= s.ep.max {
		s.overflow = true
		s.mu.Unlock()
		s.startClose(byServer, channel.CloseSlowConsumer, "slow consumer")
		return
	}
	s.nFrames++
	s.frames = append(s.frames, &entry{seq: s.nFrames, frame: f})
	s.signalLocked()
	s.mu.Unlock()
}

func (s *Socket) checkWire(f *channel.Frame) {
	b, bin, err := f.Encode(s.ser)
	msg := ""
	switch {
	case err != nil:
		msg = fmt.Sprintf("channeltest: frame cannot be encoded with %v: %v: %s", s.ser, err, f)
	case !bin && !json.Valid(b):
		msg = fmt.Sprintf("channeltest: %v frame is not valid JSON: %s", s.ser, truncate(string(b)))
	default:
		return
	}
	s.mu.Lock()
	s.wireError = append(s.wireError, msg)
	s.mu.Unlock()
	s.tb.Errorf("%s", msg) // Errorf is safe from any goroutine
}

// joined is the server side of one join, recorded by Endpoint.onJoin.
type joined struct {
	sock    *channel.Socket
	assigns map[string]any // snapshot right after the join
}

func (s *Socket) recordJoin(cs *channel.Socket) {
	snap := make(map[string]any, len(cs.Assigns()))
	for k, v := range cs.Assigns() {
		snap[k] = v
	}
	s.mu.Lock()
	if s.joins == nil {
		s.joins = make(map[string]joined)
	}
	s.joins[cs.Topic()+"\x00"+cs.JoinRef()] = joined{sock: cs, assigns: snap}
	s.signalLocked()
	s.mu.Unlock()
}

// joinedAs returns the server side of a join. The server calls OnJoin just
// after it queued the join reply, so a test that saw the reply may get here
// first: it waits for the record (up to Options.Timeout), woken by
// recordJoin.
func (s *Socket) joinedAs(topic, joinRef string) (joined, bool) {
	key := topic + "\x00" + joinRef
	var t *time.Timer
	for {
		s.mu.Lock()
		j, ok := s.joins[key]
		notify := s.notify
		s.mu.Unlock()
		if ok {
			return j, true
		}
		if t == nil {
			t = time.NewTimer(s.ep.timeout)
			defer t.Stop()
		}
		select {
		case <-notify:
		case <-t.C:
			return joined{}, false
		}
	}
}

func (s *Socket) recordTermination(topic, joinRef string, reason error) {
	s.mu.Lock()
	s.terms = append(s.terms, termination{topic: topic, joinRef: joinRef, reason: reason})
	s.signalLocked()
	s.mu.Unlock()
}

// ID returns the socket id (ConnectInfo.ID after Connect).
func (s *Socket) ID() string { return s.conn.ID() }

// CorrelationID returns the connection's correlation id.
func (s *Socket) CorrelationID() string { return s.conn.CorrelationID() }

// Conn returns the server side of the connection.
func (s *Socket) Conn() *channel.Conn { return s.conn }

// NextRef returns the next ref of the socket's counter, for Send.
func (s *Socket) NextRef() string { return strconv.FormatUint(s.ref.Add(1), 10) }

// Join joins topic with payload through the router, like a phoenix.js
// channel.join(), and fails the test unless the join is answered "ok".
// Pushes the channel makes while joining arrive after the reply, as on a
// WebSocket. See Push for payload encoding.
func (s *Socket) Join(topic string, payload any) *Channel {
	s.tb.Helper()
	ch, reply := s.TryJoin(topic, payload)
	if ch == nil && reply != nil {
		s.tb.Fatalf("channeltest: join %q was refused: status %q, response %s", topic, reply.Status(), describePayload(reply.Payload()))
	}
	return ch
}

// SubscribeAndJoin subscribes the socket to topic on the PubSub, so that
// AssertBroadcast sees every broadcast on it, and then joins it like Join.
func (s *Socket) SubscribeAndJoin(topic string, payload any) *Channel {
	s.tb.Helper()
	s.Subscribe(topic)
	return s.Join(topic, payload)
}

// TryJoin joins topic like Join but accepts any answer: it returns the
// Channel (nil unless the reply status is "ok") and the join reply. It
// fails the test only when no reply arrives.
func (s *Socket) TryJoin(topic string, payload any) (*Channel, *channel.Frame) {
	s.tb.Helper()
	p, ok := s.encode(payload)
	if !ok {
		return nil, nil
	}
	ref := s.NextRef()
	if !s.send(&channel.Message{JoinRef: ref, Ref: ref, Topic: topic, Event: channel.EventJoin, Payload: p}) {
		return nil, nil
	}
	push := &Push{s: s, topic: topic, ref: ref, event: channel.EventJoin}
	reply := push.AssertReply("", nil)
	if reply == nil {
		return nil, nil
	}
	if reply.Status() != "ok" {
		return nil, reply
	}
	return &Channel{s: s, topic: topic, joinRef: ref, reply: reply}, reply
}

// AssertJoinError joins topic and fails the test unless the join is
// refused with status "error" and a response matching want (see Matcher),
// like
//
//	assert {:error, %{reason: "unauthorized"}} = subscribe_and_join(socket, "room:secret")
func (s *Socket) AssertJoinError(topic string, payload, want any) *channel.Frame {
	s.tb.Helper()
	ch, reply := s.TryJoin(topic, payload)
	switch {
	case reply == nil:
		return nil
	case ch != nil:
		s.tb.Fatalf("channeltest: join %q succeeded with response %s, want it refused", topic, describePayload(reply.Payload()))
		return nil
	case reply.Status() != "error":
		s.tb.Fatalf("channeltest: join %q answered with status %q, want \"error\"; response %s", topic, reply.Status(), describePayload(reply.Payload()))
		return nil
	}
	m := toMatcher(want)
	if err := m.MatchPayload(reply.Payload()); err != nil {
		s.tb.Fatalf("channeltest: join %q refused with an unexpected response\n  got:  %s\n  want: %s\n  %s",
			topic, describePayload(reply.Payload()), m, indent(err.Error(), "  "))
		return nil
	}
	return reply
}

// Send hands a raw client message to the server as it is, without filling
// in refs (see NextRef): for protocol tests such as stale join_refs or
// events on topics that were never joined. The returned Push awaits the
// reply to m.Ref.
func (s *Socket) Send(m *channel.Message) *Push {
	s.tb.Helper()
	c := *m
	if !s.send(&c) {
		return nil
	}
	return &Push{s: s, topic: m.Topic, ref: m.Ref, event: m.Event}
}

// Heartbeat sends a phoenix.js heartbeat; the server answers it "ok".
func (s *Socket) Heartbeat() *Push {
	s.tb.Helper()
	return s.Send(&channel.Message{Ref: s.NextRef(), Topic: channel.TopicPhoenix, Event: channel.EventHeartbeat, Payload: channel.JSONPayload([]byte("{}"))})
}

// Subscribe subscribes the socket to PubSub topics, like
// Phoenix.PubSub.subscribe in a test: their broadcasts are kept for
// AssertBroadcast until the Endpoint closes.
func (s *Socket) Subscribe(topics ...string) {
	s.tb.Helper()
	for _, topic := range topics {
		s.mu.Lock()
		_, dup := s.subs[topic]
		s.mu.Unlock()
		if dup {
			continue
		}
		sub := &subscriber{s: s, topic: topic}
		if err := s.ep.PubSub().Subscribe(context.Background(), topic, sub); err != nil {
			s.tb.Fatalf("channeltest: subscribe to %q: %v", topic, err)
			return
		}
		s.mu.Lock()
		s.subs[topic] = sub
		s.mu.Unlock()
	}
}

// subscriber keeps the broadcasts of one topic for AssertBroadcast.
type subscriber struct {
	s     *Socket
	topic string
}

// Deliver implements pubsub.Subscriber without blocking.
func (sub *subscriber) Deliver(msg *pubsub.Message) {
	s := sub.s
	p := channel.JSONPayload(msg.Payload)
	if msg.Binary {
		p = channel.BinaryPayload(msg.Payload)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bcasts) >= s.ep.max {
		s.dropped++
		return
	}
	s.nBcasts++
	s.bcasts = append(s.bcasts, &entry{seq: s.nBcasts, bc: &Broadcast{Topic: msg.Topic, Event: msg.Event, Payload: p, From: msg.From}})
	s.signalLocked()
}

func (s *Socket) unsubscribeAll() {
	s.mu.Lock()
	subs := s.subs
	s.subs = make(map[string]*subscriber)
	s.mu.Unlock()
	for topic, sub := range subs {
		_ = s.ep.PubSub().Unsubscribe(context.Background(), topic, sub) // the PubSub may be closed already
	}
}

// AssertPush waits for a push of event on any topic (a FramePush, or a
// FrameBroadcast the channel's topic received) whose payload matches want
// (see Matcher), takes it and returns it. See Channel.AssertPush for one
// topic.
func (s *Socket) AssertPush(event string, want any) *channel.Frame {
	s.tb.Helper()
	e := s.assert(s.pushQuery("", "", event, want))
	if e == nil {
		return nil
	}
	return e.frame
}

// RefutePush fails the test if a push of event whose payload matches want
// is waiting or arrives within window (0 means Options.RefuteTimeout).
func (s *Socket) RefutePush(event string, want any, window time.Duration) {
	s.tb.Helper()
	s.refute(s.pushQuery("", "", event, want), window)
}

// AssertBroadcast waits for a broadcast of event on any topic the socket
// subscribed to whose payload matches want, takes it and returns it, like
// Phoenix's assert_broadcast. Broadcasts made with BroadcastFrom are seen
// too: the test is not the sender.
func (s *Socket) AssertBroadcast(event string, want any) *Broadcast {
	s.tb.Helper()
	e := s.assert(s.broadcastQuery("", event, want))
	if e == nil {
		return nil
	}
	return e.bc
}

// RefuteBroadcast fails the test if a broadcast of event whose payload
// matches want is waiting or arrives within window (0 means
// Options.RefuteTimeout).
func (s *Socket) RefuteBroadcast(event string, want any, window time.Duration) {
	s.tb.Helper()
	s.refute(s.broadcastQuery("", event, want), window)
}

// AssertFrame waits for the first frame for which match returns true, takes
// it and returns it: for anything the other assertions do not cover. what
// describes the frame in failure messages. match runs on the test's
// goroutine and must not call the Socket.
func (s *Socket) AssertFrame(what string, match func(f *channel.Frame) bool) *channel.Frame {
	s.tb.Helper()
	e := s.assert(&query{what: what, want: Any, match: func(e *entry) bool { return match(e.frame) }})
	if e == nil {
		return nil
	}
	return e.frame
}

// Pending returns the frames that arrived and that no assertion took, in
// arrival order, without taking them.
func (s *Socket) Pending() []*channel.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*channel.Frame, len(s.frames))
	for i, e := range s.frames {
		out[i] = e.frame
	}
	return out
}

// Close closes the connection as a client going away does and waits until
// every channel has terminated (reason channel.ErrConnClosed, no frames
// sent). It fails the test if that takes longer than Options.Timeout. A
// closed Socket keeps its subscriptions: AssertBroadcast still works.
func (s *Socket) Close() {
	s.tb.Helper()
	if !s.shutdown() {
		s.tb.Fatalf("channeltest: Close: the connection did not finish within %v: a channel callback is blocked", s.ep.timeout)
	}
}

// shutdown closes the connection from the client side and waits for the
// read loop. It reports false if the loop did not end within the timeout.
func (s *Socket) shutdown() bool {
	s.startClose(byClient, 0, "")
	t := time.NewTimer(s.ep.timeout)
	defer t.Stop()
	select {
	case <-s.done:
		return true
	case <-t.C:
		return false
	}
}

// AssertDisconnected waits until the server has closed the connection (a
// "disconnect" broadcast to the socket id, Conn.Close, a slow consumer, a
// server shutdown) and its channels have terminated, and returns the
// WebSocket close code and reason the server chose.
func (s *Socket) AssertDisconnected() (code int, reason string) {
	s.tb.Helper()
	var by closer
	ok := s.await(s.ep.timeout, func() bool {
		by, code, reason = s.closedBy, s.code, s.reason
		return by == byClient || by == byServer && s.finished
	})
	switch {
	case by == byClient:
		s.tb.Fatalf("channeltest: AssertDisconnected: the test closed the socket, the server did not")
	case !ok:
		s.tb.Fatalf("channeltest: the server did not close the connection within %v\n%s", s.ep.timeout, s.report(nil))
	}
	return code, reason
}

// encode turns a payload argument into a client payload.
func (s *Socket) encode(payload any) (channel.Payload, bool) {
	s.tb.Helper()
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
			s.tb.Fatalf("channeltest: cannot encode payload %T: %v", payload, err)
			return p, false
		}
		p = channel.JSONPayload(b)
	}
	switch {
	case p.IsBinary() && s.ser != channel.V2:
		s.tb.Fatalf("channeltest: binary payloads need the V2 serializer, the socket uses %v", s.ser)
		return p, false
	case !p.IsBinary() && !json.Valid(p.Bytes()):
		s.tb.Fatalf("channeltest: payload is not valid JSON: %s", truncate(string(p.Bytes())))
		return p, false
	}
	return p, true
}

// send hands m to the read loop, failing the test if the connection is
// closed or does not take it in time (a channel mailbox stays full).
func (s *Socket) send(m *channel.Message) bool {
	s.tb.Helper()
	if s.isClosing() {
		s.tb.Fatalf("channeltest: cannot send %q on %q: %s", m.Event, m.Topic, s.closedText())
		return false
	}
	t := time.NewTimer(s.ep.timeout)
	defer t.Stop()
	select {
	case s.in <- m:
		return true
	case <-s.closing:
		s.tb.Fatalf("channeltest: cannot send %q on %q: %s", m.Event, m.Topic, s.closedText())
	case <-t.C:
		s.tb.Fatalf("channeltest: the connection did not take %q on %q within %v: a channel mailbox is full and its callback blocked", m.Event, m.Topic, s.ep.timeout)
	}
	return false
}
