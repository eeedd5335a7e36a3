package promchannel

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/fallback"
	"github.com/pyre-go/pyre/pubsub"
)

// Options configure New. The zero value of every field means its default.
type Options struct {
	// Registerer is where New registers the Metrics. Defaults to
	// prometheus.DefaultRegisterer (served by promhttp.Handler()).
	Registerer prometheus.Registerer
	// Namespace prefixes every metric name. Defaults to "pyre".
	Namespace string
	// ConstLabels are added to every metric (e.g. {"node": "a"} when one
	// process runs several Servers). Defaults to none.
	ConstLabels prometheus.Labels
	// PubSub is read for broker metrics when it has a BrokerStats method
	// (pubsub/redis and pubsub/nats have one; see BrokerStatser) and for
	// pyre_pubsub_connected when it has a Connected method. Defaults to the
	// Server's PubSub; a PubSub without those methods (pubsub.NewMemory)
	// exports no broker metric.
	PubSub pubsub.PubSub
	// Breakers is read for pyre_breaker_state. Defaults to the Server's
	// Breakers (Options.Breakers of the Server, or its own registry).
	Breakers BreakerStates
	// DurationBuckets are the upper bounds, in seconds, of the handler
	// duration histogram. Defaults to DefaultDurationBuckets.
	DurationBuckets []float64
	// MaxEventsPerPattern bounds the event names kept as label values per
	// channel pattern: event names are chosen by clients, so names beyond
	// the first MaxEventsPerPattern handled ones, and every name a channel
	// did not handle, are counted as event="other". Defaults to 64.
	MaxEventsPerPattern int
}

// DefaultDurationBuckets are the default handler duration buckets, in
// seconds: 100 µs to 10 s, for handlers that range from in-memory replies
// to calls of slow services.
var DefaultDurationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// BreakerStates is what Options.Breakers needs: *fallback.Registry has it.
type BreakerStates interface {
	States() map[string]fallback.State
}

// BreakerStatesFunc adapts a function to BreakerStates, for a set of
// breakers kept elsewhere than in a fallback.Registry.
type BreakerStatesFunc func() map[string]fallback.State

// States calls f.
func (f BreakerStatesFunc) States() map[string]fallback.State { return f() }

// BrokerStatser is implemented by PubSubs that count broker failures:
// pubsub/redis and pubsub/nats.
type BrokerStatser interface {
	BrokerStats() pubsub.BrokerStats
}

// connectedReporter is implemented by broker adapters.
type connectedReporter interface {
	Connected() bool
}

// otherEvent is the event label of events beyond MaxEventsPerPattern and
// of events no channel handled.
const otherEvent = "other"

// Metrics exports a channel.Server's metrics to Prometheus. It is a
// prometheus.Collector, registered by New; Close unregisters it. Counters
// the Server keeps anyway (Server.Stats) are read when Prometheus
// scrapes; joins, leaves and client events are counted by an Observer
// (Server.Observe). It is safe for concurrent use.
type Metrics struct {
	srv      *channel.Server
	reg      prometheus.Registerer
	brokers  BrokerStatser     // nil: no broker metrics
	conn     connectedReporter // nil: no pyre_pubsub_connected
	breakers BreakerStates
	maxEv    int
	remove   func()
	close    sync.Once

	// Read from the Server at scrape time.
	connections, accepted, refused, slowClosed, malformed, mailboxDrops *prometheus.Desc
	framesWritten, writes, blockedWrites, lpSessions                    *prometheus.Desc
	writeDelay, writeDelayTotal                                         *prometheus.Desc
	broadcasts, deliveries, filtered, queuedBytes                       *prometheus.Desc
	publishErrors, reconnects, psConnected, breakerState                *prometheus.Desc

	// Counted by the Observer.
	joins    *prometheus.CounterVec   // pattern
	refusals *prometheus.CounterVec   // pattern, reason
	leaves   *prometheus.CounterVec   // pattern, reason
	events   *prometheus.CounterVec   // pattern, event, status
	duration *prometheus.HistogramVec // pattern, event

	mu     sync.RWMutex
	known  map[eventKey]*eventSeries // admitted (pattern, event) pairs
	counts map[string]int            // admitted event names per pattern
}

type eventKey struct{ pattern, event string }

// eventSeries caches the series of one (pattern, event) label pair, so that
// an observed event costs a map lookup rather than label hashing.
type eventSeries struct {
	event    string // the event label: the event, or "other"
	duration prometheus.Observer
	status   sync.Map // status -> prometheus.Counter
}

// New exports srv's metrics: it installs an Observer on srv and registers
// the Metrics with opts.Registerer. It fails when the registration does
// (prometheus.AlreadyRegisteredError when metrics of the same names and
// labels are registered already, such as another Server's without
// distinguishing ConstLabels).
func New(srv *channel.Server, opts *Options) (*Metrics, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.DefaultRegisterer
	}
	if o.Namespace == "" {
		o.Namespace = "pyre"
	}
	if o.PubSub == nil {
		o.PubSub = srv.PubSub()
	}
	if o.Breakers == nil {
		o.Breakers = srv.Breakers()
	}
	if len(o.DurationBuckets) == 0 {
		o.DurationBuckets = DefaultDurationBuckets
	}
	if o.MaxEventsPerPattern <= 0 {
		o.MaxEventsPerPattern = 64
	}
	m := &Metrics{
		srv:      srv,
		reg:      o.Registerer,
		breakers: o.Breakers,
		maxEv:    o.MaxEventsPerPattern,
		known:    make(map[eventKey]*eventSeries),
		counts:   make(map[string]int),
	}
	m.brokers, _ = o.PubSub.(BrokerStatser)
	if m.brokers != nil {
		m.conn, _ = o.PubSub.(connectedReporter)
	}
	ns, cl := o.Namespace, o.ConstLabels
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, cl)
	}
	m.connections = desc("connections", "Open connections, by transport (websocket, longpoll, other).", "transport")
	m.accepted = desc("connections_accepted_total", "Connections accepted.")
	m.refused = desc("connections_refused_total", "Connections refused (origin, vsn, subprotocol, Connect).")
	m.slowClosed = desc("slow_consumer_closes_total", "Connections closed because their outbound queue overflowed (code 3008).")
	m.malformed = desc("malformed_closes_total", "Connections closed for a malformed frame (1011) or invalid UTF-8 (1007).")
	m.mailboxDrops = desc("mailbox_drops_total", "Broadcasts and infos dropped at a full channel mailbox.")
	m.framesWritten = desc("websocket_frames_written_total", "Frames written to WebSocket connections.")
	m.writes = desc("websocket_writes_total", "Socket writes that carried the WebSocket frames.")
	m.blockedWrites = desc("websocket_blocked_writes_total", "WebSocket writes handed to a goroutine of their own because the socket was full.")
	m.writeDelay = desc("websocket_write_delay_seconds", "The WebSocket write pool's current write delay (channel.Options.MaxWriteDelay, or WriteDelay when set).")
	m.writeDelayTotal = desc("websocket_write_delay_seconds_total", "The write delay integrated over the time the write pool was busy: its rate is the mean delay.")
	m.lpSessions = desc("longpoll_sessions", "Open LongPoll sessions.")
	m.broadcasts = desc("broadcasts_total", "Broadcasts fanned out to subscribers on this node.")
	m.deliveries = desc("broadcast_deliveries_total", "Subscribers the broadcasts were handed to.")
	m.filtered = desc("broadcast_filtered_total", "Deliveries dropped by the clients' broadcast filters (channel.Filter).")
	m.queuedBytes = desc("outbound_queued_bytes", "Outbound bytes queued on the connections, not yet written or polled.")
	m.publishErrors = desc("pubsub_publish_errors_total", "Broadcasts whose publish to the broker failed.")
	m.reconnects = desc("pubsub_reconnects_total", "Connections to the broker re-established after a loss.")
	m.psConnected = desc("pubsub_connected", "1 when the connection to the broker is up, else 0.")
	m.breakerState = desc("breaker_state", "Circuit breaker state by service: 1 for the current state (closed, open, half-open), 0 for the others.", "service", "state")

	name := func(n string) string { return prometheus.BuildFQName(ns, "", n) }
	m.joins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("channel_joins_total"),
		Help: "Successful channel joins, by channel pattern.", ConstLabels: cl}, []string{"pattern"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("channel_join_refusals_total"),
		Help: "Refused channel joins, by channel pattern (empty when refused before routing) and reason.", ConstLabels: cl},
		[]string{"pattern", "reason"})
	m.leaves = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("channel_leaves_total"),
		Help: "Channels that ended, by channel pattern and reason (leave, closed, duplicate_join, stop, crash).", ConstLabels: cl},
		[]string{"pattern", "reason"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("channel_events_total"),
		Help: "Client events handled, by channel pattern, event and status (ok, error, noreply, unhandled, stop, crash, other).", ConstLabels: cl},
		[]string{"pattern", "event", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name("channel_handler_duration_seconds"),
		Help: "Time channels took to handle joins (event phx_join) and client events, hooks included.", ConstLabels: cl,
		Buckets: o.DurationBuckets}, []string{"pattern", "event"})

	m.remove = srv.Observe(&channel.Observer{Join: m.observeJoin, Event: m.observeEvent, Leave: m.observeLeave})
	if err := o.Registerer.Register(m); err != nil {
		m.remove()
		return nil, err
	}
	return m, nil
}

// Close removes the Observer from the Server and unregisters the Metrics.
// Calling it again does nothing.
func (m *Metrics) Close() {
	m.close.Do(func() {
		m.remove()
		m.reg.Unregister(m)
	})
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.connections, m.accepted, m.refused, m.slowClosed, m.malformed,
		m.mailboxDrops, m.framesWritten, m.writes, m.blockedWrites, m.writeDelay, m.writeDelayTotal, m.lpSessions, m.broadcasts, m.deliveries,
		m.filtered, m.queuedBytes, m.publishErrors, m.reconnects, m.psConnected, m.breakerState} {
		ch <- d
	}
	m.joins.Describe(ch)
	m.refusals.Describe(ch)
	m.leaves.Describe(ch)
	m.events.Describe(ch)
	m.duration.Describe(ch)
}

// Collect implements prometheus.Collector: it reads the Server's counters,
// the broker's and the breakers' states, and the Observer's counts.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.srv.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(m.connections, float64(st.WebSocketConnections), "websocket")
	gauge(m.connections, float64(st.LongPollConnections), "longpoll")
	gauge(m.connections, float64(max(st.Connections-st.WebSocketConnections-st.LongPollConnections, 0)), "other")
	counter(m.accepted, st.Accepted)
	counter(m.refused, st.Refused)
	counter(m.slowClosed, st.SlowClosed)
	counter(m.malformed, st.Malformed)
	counter(m.mailboxDrops, st.MailboxDrops)
	counter(m.framesWritten, st.FramesWritten)
	counter(m.writes, st.Writes)
	counter(m.blockedWrites, st.BlockedWrites)
	gauge(m.writeDelay, st.WriteDelay.Seconds())
	ch <- prometheus.MustNewConstMetric(m.writeDelayTotal, prometheus.CounterValue, st.WriteDelayTotal.Seconds())
	gauge(m.lpSessions, float64(st.LongPollSessions))
	counter(m.broadcasts, st.Broadcasts)
	counter(m.deliveries, st.Deliveries)
	counter(m.filtered, st.Filtered)
	gauge(m.queuedBytes, float64(m.srv.QueuedBytes()))
	if m.brokers != nil {
		bs := m.brokers.BrokerStats()
		counter(m.publishErrors, bs.PublishErrors)
		counter(m.reconnects, bs.Reconnects)
		if m.conn != nil {
			gauge(m.psConnected, bool01(m.conn.Connected()))
		}
	}
	if m.breakers != nil {
		for service, state := range m.breakers.States() {
			for _, s := range []fallback.State{fallback.Closed, fallback.Open, fallback.HalfOpen} {
				gauge(m.breakerState, bool01(s == state), service, s.String())
			}
		}
	}
	m.joins.Collect(ch)
	m.refusals.Collect(ch)
	m.leaves.Collect(ch)
	m.events.Collect(ch)
	m.duration.Collect(ch)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Metrics) observeJoin(i channel.JoinInfo) {
	if !i.OK {
		m.refusals.WithLabelValues(i.Pattern, string(i.Refusal)).Inc()
		if i.Refusal != channel.RefusedByChannel && i.Refusal != channel.RefusedCrashed {
			return // the channel's Join did not run
		}
	} else {
		m.joins.WithLabelValues(i.Pattern).Inc()
	}
	m.duration.WithLabelValues(i.Pattern, channel.EventJoin).Observe(i.Duration.Seconds())
}

func (m *Metrics) observeEvent(i channel.EventInfo) {
	event := i.Event
	if i.Status == "unhandled" {
		event = otherEvent
	}
	es := m.series(i.Pattern, event)
	es.duration.Observe(i.Duration.Seconds())
	status := eventStatus(i.Status)
	c, ok := es.status.Load(status)
	if !ok {
		c, _ = es.status.LoadOrStore(status, m.events.WithLabelValues(i.Pattern, es.event, status))
	}
	c.(prometheus.Counter).Inc()
}

// series returns the series of (pattern, event), admitting event as a
// label value while the pattern has fewer than MaxEventsPerPattern names.
func (m *Metrics) series(pattern, event string) *eventSeries {
	k := eventKey{pattern, event}
	m.mu.RLock()
	es := m.known[k]
	m.mu.RUnlock()
	if es != nil {
		return es
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if es = m.known[k]; es != nil {
		return es
	}
	if event != otherEvent && m.counts[pattern] >= m.maxEv {
		k.event = otherEvent
		if es = m.known[k]; es != nil {
			return es
		}
	} else if event != otherEvent {
		m.counts[pattern]++
	}
	es = &eventSeries{event: k.event, duration: m.duration.WithLabelValues(pattern, k.event)}
	m.known[k] = es
	return es
}

// eventStatus bounds the status label: reply statuses other than ok and
// error (a handler may choose any) count as "other".
func eventStatus(s string) string {
	switch s {
	case "ok", "error", "noreply", "unhandled", "stop", "crash":
		return s
	}
	return "other"
}

func (m *Metrics) observeLeave(i channel.LeaveInfo) {
	m.leaves.WithLabelValues(i.Pattern, leaveReason(i.Reason)).Inc()
}

// leaveReason maps a Terminate reason to the reason label.
func leaveReason(err error) string {
	var pe *channel.PanicError
	switch {
	case errors.Is(err, channel.ErrLeft):
		return "leave"
	case errors.Is(err, channel.ErrConnClosed):
		return "closed"
	case errors.Is(err, channel.ErrDuplicateJoin):
		return "duplicate_join"
	case errors.As(err, &pe): // before ErrStop: panic(ErrStop) is a crash
		return "crash"
	case err == nil, errors.Is(err, channel.ErrStop):
		return "stop"
	default:
		return "crash"
	}
}
