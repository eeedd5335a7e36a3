package channel

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// obsRecorder is an Observer whose calls arrive on channels: the reply a
// client reads is queued before the Observer is called, so tests wait for
// the record rather than assume it.
type obsRecorder struct {
	joins  chan JoinInfo
	events chan EventInfo
	leaves chan LeaveInfo
}

func newObsRecorder() *obsRecorder {
	return &obsRecorder{joins: make(chan JoinInfo, 64), events: make(chan EventInfo, 64), leaves: make(chan LeaveInfo, 64)}
}

func (r *obsRecorder) observer() *Observer {
	return &Observer{
		Join:  func(i JoinInfo) { r.joins <- i },
		Event: func(i EventInfo) { r.events <- i },
		Leave: func(i LeaveInfo) { r.leaves <- i },
	}
}

func recv[T any](t *testing.T, c chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("no %T observed", *new(T))
		panic("unreachable")
	}
}

func TestObserverSeesJoinsAndRefusals(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), MaxChannels: 1, MaxTopicLength: 20, MaxJoinParamsBytes: 64})
	r := newObsRecorder()
	e.srv.Observe(r.observer())
	c := e.dial(t, "vsn=2.0.0", nil)

	joinRefused := func(frame string, want JoinInfo) {
		t.Helper()
		c.send(frame)
		require.Contains(t, c.read(), `"status":"error"`)
		got := recv(t, r.joins)
		if want.Pattern != "" && want.Refusal != RefusedTooManyChannels {
			assert.Positive(t, got.Duration, "the channel's Join is timed")
		} else {
			assert.Zero(t, got.Duration, "refused before a channel existed")
		}
		got.Duration = 0
		assert.Equal(t, want, got)
	}
	joinRefused(`["1","1","nomatch:1","phx_join",{}]`, JoinInfo{Topic: "nomatch:1", Refusal: RefusedUnmatchedTopic})
	joinRefused(`["1","1","room:`+strings.Repeat("x", 30)+`","phx_join",{}]`,
		JoinInfo{Topic: "room:" + strings.Repeat("x", 30), Refusal: RefusedTopicTooLong})
	joinRefused(`["1","1","room:a","phx_join",{"p":"`+strings.Repeat("x", 100)+`"}]`,
		JoinInfo{Topic: "room:a", Refusal: RefusedParamsTooLarge})
	joinRefused(`["2","2","room:a","phx_join",{"reject":true}]`, JoinInfo{Pattern: "room:*", Topic: "room:a", Refusal: RefusedByChannel})
	joinRefused(`["3","3","room:a","phx_join",{"crash":true}]`, JoinInfo{Pattern: "room:*", Topic: "room:a", Refusal: RefusedCrashed})
	joinRefused(`["4","4","room:a","phx_join",{"fail":true}]`, JoinInfo{Pattern: "room:*", Topic: "room:a", Refusal: RefusedCrashed})

	c.join("5", "room:a", "{}")
	got := recv(t, r.joins)
	assert.Positive(t, got.Duration)
	got.Duration = 0
	assert.Equal(t, JoinInfo{Pattern: "room:*", Topic: "room:a", OK: true}, got)

	joinRefused(`["6","6","room:b","phx_join",{}]`, JoinInfo{Pattern: "room:*", Topic: "room:b", Refusal: RefusedTooManyChannels})
	select {
	case l := <-r.leaves:
		t.Fatalf("refused joins reported a leave: %+v", l)
	default:
	}
}

func TestObserverSeesEventsByStatus(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	r := newObsRecorder()
	e.srv.Observe(r.observer())
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	recv(t, r.joins)

	for _, tc := range []struct{ event, status string }{
		{"echo", "ok"}, {"custom", "queued"}, {"noreply", "noreply"}, {"nope", "unhandled"},
	} {
		c.send(`["1","2","room:a","` + tc.event + `",{}]`)
		got := recv(t, r.events)
		assert.Positive(t, got.Duration, tc.event)
		got.Duration = 0
		assert.Equal(t, EventInfo{Pattern: "room:*", Topic: "room:a", Event: tc.event, Status: tc.status}, got)
	}

	// An event that stops the channel is reported before the channel's end.
	c.send(`["1","3","room:a","stop",{}]`)
	assert.Equal(t, "stop", recv(t, r.events).Status)
	l := recv(t, r.leaves)
	assert.ErrorIs(t, l.Reason, ErrStop)
	assert.Equal(t, "room:*", l.Pattern)

	c.join("4", "room:a", "{}")
	recv(t, r.joins)
	c.send(`["4","5","room:a","boom",{}]`)
	assert.Equal(t, "crash", recv(t, r.events).Status)
	var pe *PanicError
	assert.ErrorAs(t, recv(t, r.leaves).Reason, &pe)

	c.join("6", "room:a", "{}")
	recv(t, r.joins)
	c.send(`["6","7","room:a","fail",{}]`)
	assert.Equal(t, "crash", recv(t, r.events).Status, "an error other than ErrStop/ErrUnhandled crashes the channel")
	assert.EqualError(t, recv(t, r.leaves).Reason, "handler failed")
}

func TestObserverSeesLeavesByReason(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	r := newObsRecorder()
	e.srv.Observe(r.observer())
	c := e.dial(t, "vsn=2.0.0", nil)

	c.join("1", "room:a", "{}")
	c.send(`["1","2","room:a","phx_leave",{}]`)
	assert.ErrorIs(t, recv(t, r.leaves).Reason, ErrLeft)

	c.join("3", "room:a", "{}")
	c.join("4", "room:a", "{}")
	assert.ErrorIs(t, recv(t, r.leaves).Reason, ErrDuplicateJoin)

	require.NoError(t, c.c.CloseNow())
	l := recv(t, r.leaves)
	assert.ErrorIs(t, l.Reason, ErrConnClosed)
	assert.Equal(t, LeaveInfo{Pattern: "room:*", Topic: "room:a", Reason: l.Reason}, l)
	oks := 0
	for range 3 {
		if recv(t, r.joins).OK {
			oks++
		}
	}
	assert.Equal(t, 3, oks, "one leave for every successful join")
}

func TestObserveInstallsInOrderAndRemoves(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	calls := make(chan string, 16)
	removeA := e.srv.Observe(&Observer{Event: func(i EventInfo) { calls <- "a:" + i.Event }})
	e.srv.Observe(&Observer{Event: func(i EventInfo) { calls <- "b:" + i.Event }})
	e.srv.Observe(&Observer{}) // no functions: installed, never called
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	c.send(`["1","2","room:a","echo",{}]`)
	assert.Equal(t, "a:echo", recv(t, calls))
	assert.Equal(t, "b:echo", recv(t, calls))

	removeA()
	removeA() // a second call does nothing
	c.send(`["1","3","room:a","noreply",{}]`)
	assert.Equal(t, "b:noreply", recv(t, calls))
	c.send(`["1","4","room:a","echo",{}]`)
	c.expect(`["1","4","room:a","phx_reply",{"response":{},"status":"ok"}]`)
	assert.Equal(t, "b:echo", recv(t, calls))
	assert.Empty(t, calls)
}

func TestObserverWithoutTimingFunctionsDoesNotTime(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil)})
	leaves := make(chan LeaveInfo, 1)
	e.srv.Observe(&Observer{Leave: func(i LeaveInfo) { leaves <- i }})
	assert.False(t, e.srv.obs.cur.Load().timed)
	assert.True(t, e.srv.obs.cur.Load().start().IsZero())
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", "{}")
	c.send(`["1","2","room:a","phx_leave",{}]`)
	assert.ErrorIs(t, recv(t, leaves).Reason, ErrLeft)
}

func TestStatsCountTransportsAndFanout(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), LongPoll: &LongPollOptions{}})
	a := e.dial(t, "vsn=2.0.0", nil)
	b := e.dial(t, "vsn=2.0.0", nil)
	a.join("1", "room:a", "{}")
	b.join("1", "room:a", "{}")

	lp := newLPClient(t, e.srv, "vsn=2.0.0")
	lp.open()
	require.Equal(t, lpOK, lp.post(`["1","1","room:a","phx_join",{}]`).Status)
	lp.pollUntil(lpJoinOK)

	st := e.srv.Stats()
	assert.EqualValues(t, 3, st.Connections)
	assert.EqualValues(t, 2, st.WebSocketConnections)
	assert.EqualValues(t, 1, st.LongPollConnections)
	assert.EqualValues(t, 1, st.LongPollSessions)
	assert.Zero(t, st.Broadcasts)
	// The LongPoll session's queue was polled empty; the join replies
	// leave the count once the write pool has accounted for them.
	require.Eventually(t, func() bool { return e.srv.QueuedBytes() == 0 }, testTimeout, time.Millisecond,
		"queued bytes: %d", e.srv.QueuedBytes())

	require.NoError(t, e.srv.Broadcast(context.Background(), "room:a", "n", map[string]int{"i": 1}))
	a.expectNext(`[null,null,"room:a","n",{"i":1}]`)
	b.expectNext(`[null,null,"room:a","n",{"i":1}]`)
	// The LongPoll client has not polled: its copy waits in its queue.
	// The WebSocket copies leave the count when the write pool accounts
	// for their write, which may be just after the clients read them.
	frame := `[null,null,"room:a","n",{"i":1}]`
	require.Eventually(t, func() bool { return e.srv.QueuedBytes() == int64(len(frame)) }, testTimeout, time.Millisecond,
		"queued bytes: %d", e.srv.QueuedBytes())
	// broadcast_from skips the sender: two deliveries, not three.
	a.send(`["1","2","room:a","bcast_from",{}]`)
	b.expect(`[null,null,"room:a","bcast_from",{}]`)
	// A broadcast to a topic without subscribers on this node counts nothing.
	require.NoError(t, e.srv.Broadcast(context.Background(), "room:nobody", "n", nil))

	st = e.srv.Stats()
	assert.EqualValues(t, 2, st.Broadcasts)
	assert.EqualValues(t, 5, st.Deliveries)

	require.NoError(t, a.c.CloseNow())
	require.Eventually(t, func() bool { return e.srv.Stats().WebSocketConnections == 1 }, testTimeout, time.Millisecond)
	assert.EqualValues(t, 2, e.srv.Stats().Connections)
}

// The fan-out counters are written once per broadcast, however many
// subscribers it reaches.
func TestStatsFanoutCountedPerBroadcast(t *testing.T) {
	srv := NewServer(&Options{Router: roomRouter(nil), Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	tr := &countTransport{}
	const subs = 50
	for range subs {
		c, err := srv.Attach(context.Background(), &ConnectInfo{}, tr)
		require.NoError(t, err)
		c.Receive(&Message{JoinRef: "1", Ref: "1", Topic: "room:f", Event: EventJoin, Payload: JSONPayload([]byte(`{}`))})
		defer c.Finish()
	}
	for range 3 {
		require.NoError(t, srv.Broadcast(context.Background(), "room:f", "x", nil))
	}
	st := srv.Stats()
	assert.EqualValues(t, 3, st.Broadcasts)
	assert.EqualValues(t, 3*subs, st.Deliveries)
	assert.Zero(t, st.WebSocketConnections+st.LongPollConnections, "Attach'ed transports count in neither")
	assert.EqualValues(t, subs, st.Connections)
}

// blockingQueueTransport's queuedBytes waits until release is closed, as
// a queue lock held by a busy writer would.
type blockingQueueTransport struct {
	entered chan struct{}
	release chan struct{}
}

func (*blockingQueueTransport) Send(*Frame)       {}
func (*blockingQueueTransport) Close(int, string) {}
func (b *blockingQueueTransport) queuedBytes() int {
	close(b.entered)
	<-b.release
	return 7
}

// A scrape that waits on one connection's queue does not hold the server's
// lock: connections still attach (before, Attach waited for the scrape).
func TestQueuedBytesDoesNotBlockConnects(t *testing.T) {
	srv := NewServer(&Options{Router: roomRouter(nil), Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	slow := &blockingQueueTransport{entered: make(chan struct{}), release: make(chan struct{})}
	c, err := srv.Attach(context.Background(), &ConnectInfo{}, slow)
	require.NoError(t, err)
	defer c.Finish()

	scraped := make(chan int64)
	go func() { scraped <- srv.QueuedBytes() }()
	<-slow.entered

	attached := make(chan error, 1)
	go func() {
		c2, err := srv.Attach(context.Background(), &ConnectInfo{}, &countTransport{})
		if err == nil {
			c2.Finish()
		}
		attached <- err
	}()
	select {
	case err := <-attached:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		close(slow.release)
		<-scraped
		<-attached
		t.Fatal("Attach waited for QueuedBytes")
	}
	close(slow.release)
	assert.EqualValues(t, 7, <-scraped)
}
