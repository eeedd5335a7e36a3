package channel

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Observer follows what the channels of a Server do, for metrics and
// tracing packages (channel/promchannel is one), in the style of
// net/http/httptrace.ClientTrace: every field is optional and a nil one is
// not called. Install it with Server.Observe.
//
// The functions are called synchronously, on the goroutine doing the work
// (the connection's reader for joins, the channel's goroutine for events
// and leaves), so they must be quick and must not block; they may be called
// concurrently for different channels. Nothing on the broadcast fan-out
// path calls an Observer: broadcasts and deliveries are counted in Stats.
type Observer struct {
	// Join is called once per join request the server answers: after a
	// successful join reply is queued (before the channel handles anything
	// else), or after a refusal is queued. A join abandoned because its
	// connection closed while it ran is not reported.
	Join func(JoinInfo)
	// Event is called after a channel handled a client event (any event but
	// phx_join, phx_leave and heartbeats), once its reply, if any, is
	// queued and before the channel ends if the event ended it.
	Event func(EventInfo)
	// Leave is called when a joined channel ends, for whatever reason,
	// after its Terminate and Options.OnTerminate: once for every join
	// reported with OK set.
	Leave func(LeaveInfo)
}

// JoinRefusal tells why a join was refused. The values are few and fixed,
// fit for a metric label.
type JoinRefusal string

// Why a join was refused (JoinInfo.Refusal).
const (
	// RefusedTopicTooLong: the topic is longer than Options.MaxTopicLength.
	RefusedTopicTooLong JoinRefusal = "topic_too_long"
	// RefusedParamsTooLarge: the join params exceed
	// Options.MaxJoinParamsBytes.
	RefusedParamsTooLarge JoinRefusal = "params_too_large"
	// RefusedUnmatchedTopic: no route of the Router matches the topic.
	RefusedUnmatchedTopic JoinRefusal = "unmatched_topic"
	// RefusedTooManyChannels: the connection already has
	// Options.MaxChannels channels.
	RefusedTooManyChannels JoinRefusal = "too_many_channels"
	// RefusedByChannel: the channel's Join (or a hook) answered with an
	// error reply, such as a JoinError.
	RefusedByChannel JoinRefusal = "channel"
	// RefusedCrashed: Join (or a hook) panicked or returned an error that
	// is not a JoinError; the client got "join crashed".
	RefusedCrashed JoinRefusal = "crashed"
)

// JoinInfo describes an answered join (Observer.Join).
type JoinInfo struct {
	// Pattern is the Router pattern that matched the topic; "" when the
	// join was refused before routing (topic too long, params too large,
	// unmatched topic).
	Pattern string
	// Topic is the topic the client asked for. It is client-chosen: do not
	// use it as a metric label.
	Topic string
	// OK reports a successful join; Refusal says why it was not.
	OK      bool
	Refusal JoinRefusal
	// Duration is the time spent in the channel's Join and its hooks
	// (Router.Use, Hooker); 0 for refusals made before the channel was
	// created, and when no installed Observer has a Join or Event function.
	Duration time.Duration
}

// EventInfo describes a client event a channel handled (Observer.Event).
type EventInfo struct {
	// Pattern is the channel's Router pattern.
	Pattern string
	// Topic is the channel's topic (client-chosen: not a metric label).
	Topic string
	// Event is the event name, as the client sent it: client-chosen, so a
	// metric must bound the names it keeps as labels.
	Event string
	// Status is the outcome: the reply's status when the handler replied
	// ("ok", "error", or another status the handler chose), or "noreply"
	// (it returned NoReply), "unhandled" (it returned ErrUnhandled, also
	// when the LogUnhandled hook of Base turned that into a logged
	// no-reply), "stop" (ErrStop: the channel closes) or "crash" (a panic
	// or another error: the channel crashed).
	Status string
	// Duration is the time the handler took, hooks included.
	Duration time.Duration
}

// LeaveInfo describes a channel that ended (Observer.Leave).
type LeaveInfo struct {
	// Pattern is the channel's Router pattern.
	Pattern string
	// Topic is the channel's topic (client-chosen: not a metric label).
	Topic string
	// Reason is the reason passed to Terminate: ErrLeft, ErrConnClosed,
	// ErrDuplicateJoin, an error wrapping ErrStop, a *PanicError, or the
	// error a handler returned.
	Reason error
}

// observers is the immutable set of installed Observers; the Server swaps
// it whole, so that the paths that report read one atomic pointer.
type observers struct {
	list  []*Observer
	timed bool // some Observer has Join or Event: handlers are timed
}

// observerReg guards changes to the installed set.
type observerReg struct {
	mu  sync.Mutex
	cur atomic.Pointer[observers] // nil when none is installed
}

// Observe installs o: from now on its functions are called for the
// Server's channels, after those of Observers installed before. The
// returned function uninstalls it (calls already under way may still
// finish); calling it again does nothing. Observing costs nothing on the
// broadcast fan-out path; while an Observer with Join or Event functions is
// installed, each join and client event reads the clock twice.
func (s *Server) Observe(o *Observer) (remove func()) {
	s.obs.mu.Lock()
	s.obs.set(append(s.obs.list(), o))
	s.obs.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.obs.mu.Lock()
			defer s.obs.mu.Unlock()
			list := s.obs.list()
			if i := slices.Index(list, o); i >= 0 {
				s.obs.set(slices.Delete(list, i, i+1))
			}
		})
	}
}

// list returns a copy of the installed Observers; the caller holds mu.
func (r *observerReg) list() []*Observer {
	if cur := r.cur.Load(); cur != nil {
		return slices.Clone(cur.list)
	}
	return nil
}

// set installs list; the caller holds mu.
func (r *observerReg) set(list []*Observer) {
	if len(list) == 0 {
		r.cur.Store(nil)
		return
	}
	obs := &observers{list: list}
	for _, o := range list {
		obs.timed = obs.timed || o.Join != nil || o.Event != nil
	}
	r.cur.Store(obs)
}

// start returns the time an observed operation starts, or the zero time
// when no Observer times operations (obs may be nil).
func (obs *observers) start() time.Time {
	if obs == nil || !obs.timed {
		return time.Time{}
	}
	return time.Now()
}

func since(start time.Time) time.Duration {
	if start.IsZero() {
		return 0
	}
	return time.Since(start)
}

func (obs *observers) join(i JoinInfo) {
	for _, o := range obs.list {
		if o.Join != nil {
			o.Join(i)
		}
	}
}

func (obs *observers) event(i EventInfo) {
	for _, o := range obs.list {
		if o.Event != nil {
			o.Event(i)
		}
	}
}

func (obs *observers) leave(i LeaveInfo) {
	for _, o := range obs.list {
		if o.Leave != nil {
			o.Leave(i)
		}
	}
}

// observeRefusal reports a join refused before a channel was created.
func (c *Conn) observeRefusal(m *Message, pattern string, why JoinRefusal) {
	if obs := c.srv.obs.cur.Load(); obs != nil {
		obs.join(JoinInfo{Pattern: pattern, Topic: m.Topic, Refusal: why})
	}
}
