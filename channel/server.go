package channel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pyre-go/pyre/channel/internal/longpoll"
	"github.com/pyre-go/pyre/channel/internal/wstransport"
	"github.com/pyre-go/pyre/correlation"
	"github.com/pyre-go/pyre/fallback"
	"github.com/pyre-go/pyre/pubsub"
)

// Options configure a Server. The zero value of every field means its
// default.
type Options struct {
	// Router maps topics to channels. Required.
	Router *Router
	// PubSub carries broadcasts. Defaults to a private pubsub.NewMemory, which
	// the Server closes on Close/Shutdown; a PubSub passed in is not closed.
	PubSub pubsub.PubSub
	// Logger receives the server's logs; every record about a connection or
	// channel carries correlation_id. Defaults to slog.Default() as it is
	// when NewServer runs, so that an event no channel handles or a crashed
	// channel shows up in the log; slog.New(slog.DiscardHandler) silences it.
	Logger *slog.Logger
	// Connect authorizes a connection (Phoenix's connect/3) and may set
	// info.ID, info.Assigns and info.CorrelationID. Returning an error refuses
	// it: HTTP 403, or the status of an *HTTPError. A panic refuses with 403.
	// Defaults to accepting every connection.
	Connect func(ctx context.Context, info *ConnectInfo) error
	// AllowedOrigins lists the origins that may connect from a browser, in
	// Phoenix's check_origin syntax: "https://example.com",
	// "//example.com:8080", "//*.example.com" (scheme, host and port are
	// compared only when given; "*." matches the domain and its subdomains).
	// "*" allows every request. With a list only the list is checked, as in
	// Phoenix: an origin whose host equals the request's Host header is
	// refused unless it is listed (or AllowSameOrigin is set). An Origin
	// without a host ("null") is refused.
	//
	// Defaults to no list, which allows the request's own origin only
	// (Phoenix's check_origin: :conn): an Origin whose host and port equal
	// those of the request's Host header and whose scheme is https over TLS,
	// http or https over plain HTTP (a TLS-terminating proxy may be in
	// front). That default does not protect against DNS rebinding, where a
	// page of the attacker reaches the server under the attacker's host
	// name, so that Host and Origin agree: a server reachable on loopback or
	// a LAN (a local agent, a device, a development server) must set a list.
	//
	// Requests without an Origin header: a WebSocket handshake is allowed
	// (non-browser clients; browsers always send Origin there), as in
	// Phoenix. A LongPoll GET may come from a browser without Origin (on
	// same-origin GETs, and on cross-site <img> or <script> loads): it is
	// refused when its Sec-Fetch-Site header says cross-site or same-site,
	// and otherwise checked as if its Origin were the request's own (its
	// scheme and Host): allowed without a list or with AllowSameOrigin, and
	// with a list only when that origin is listed. A non-browser LongPoll
	// client therefore has to send a listed Origin or reach the server under
	// a listed host name (or CheckOrigin must let it in). Other LongPoll
	// requests without Origin (POSTs, which need a session token, and
	// OPTIONS) are allowed.
	AllowedOrigins []string
	// AllowSameOrigin, with AllowedOrigins set, also allows the request's
	// own origin (Phoenix's check_origin: :conn; see AllowedOrigins for the
	// comparison), for a server that serves its own pages as well as
	// listed ones. Like the default it trusts the Host header and so does
	// not protect against DNS rebinding. Without AllowedOrigins it is the
	// default policy. Defaults to false.
	AllowSameOrigin bool
	// CheckOrigin, if set, replaces AllowedOrigins and AllowSameOrigin: it is
	// called for every WebSocket handshake and every LongPoll request, with
	// or without an Origin header, and false refuses the request (WebSocket:
	// HTTP 403; LongPoll: {"status":403}).
	CheckOrigin func(r *http.Request) bool
	// IdleTimeout closes a connection (code 1002) that sent no frame for this
	// long. phoenix.js heartbeats every 30 s by default. Defaults to 60 s.
	IdleTimeout time.Duration
	// MaxFrameSize is the largest inbound message in bytes (a compressed
	// message counts inflated, and MaxInflatedSize bounds it lower); a
	// larger one closes the connection with 1009. LongPoll applies it to
	// each POSTed line. Defaults to 10 000 000.
	MaxFrameSize int64
	// MaxChannels is the most channels one connection may join; the next join
	// gets "too many channels joined". Defaults to 100.
	MaxChannels int
	// MaxTopicLength is the longest topic, in bytes, a client may join: a
	// longer one is refused with the join reply {"status":"error",
	// "response":{"reason":"topic too long"}} before the router sees it, and
	// keeps nothing on the server. Other messages on such a topic find no
	// channel (it cannot be joined) and are answered as Phoenix answers
	// messages to unjoined topics. Phoenix has no such bound. Defaults to
	// 1024.
	MaxTopicLength int
	// MaxJoinParamsBytes bounds the join payload (the params passed to
	// Join), in bytes as received (JSON text or binary): a larger one is
	// refused with {"status":"error","response":{"reason":"join params too
	// large"}} before the router sees it. Defaults to 64 KiB.
	MaxJoinParamsBytes int
	// MaxInflatedSize bounds a compressed (permessage-deflate) inbound
	// message once inflated, in bytes: inflation stops there, nothing of
	// the message reaches the channels, and the connection is closed with
	// 1009, as for MaxFrameSize, which bounds uncompressed messages (and
	// this bound, if it is lower). A few KB of compressed input can inflate
	// to megabytes, hence the lower bound. Whether a message is compressed
	// is read from its first frame header before the read; a message whose
	// header is not yet buffered behind control frames is bounded as if
	// compressed. It applies only with Compression. Defaults to 1 MiB.
	MaxInflatedSize int64
	// MaxInflateRate bounds the inflation work of one connection, in
	// inflated bytes per second of compressed messages: a token bucket
	// holding up to MaxInflatedSize bytes, refilled at this rate, is charged
	// each compressed message's inflated size. While it is in debt the
	// connection's reads pause (the client is slowed, not closed), so over
	// any t seconds a connection inflates at most about 2 * MaxInflatedSize
	// + t * MaxInflateRate bytes. A pause lasts at most MaxInflatedSize / MaxInflateRate
	// seconds (1 s by default; keep it well below IdleTimeout) and ends
	// when the connection closes. It applies only with Compression.
	// Defaults to 1 MiB/s.
	MaxInflateRate int64
	// MaxQueueBytes bounds the outbound bytes queued for one connection.
	// A connection that falls this far behind is closed with
	// CloseSlowConsumer (3008) and counted in Stats. Defaults to 1 MiB.
	MaxQueueBytes int
	// MaxWriteDelay bounds the WebSocket write pool's adaptive write delay.
	// A connection's broadcasts and pushes may wait up to this long before
	// they are written, so that frames arriving meanwhile share one socket
	// write: on loopback and in virtual machines a write costs several
	// times everything else a delivery does. The delay follows the pool's
	// load, measured every 50 ms as the share of the time its workers
	// spent writing: zero while that share is one half or less, so a
	// server that keeps up writes at once; growing linearly to
	// MaxWriteDelay as the workers approach being busy all the time, each
	// window moving it half way to that target. It grows only as far as
	// frames actually share writes (full when one frame in four goes out
	// in another's write, judged over the last ~400 ms so that one burst
	// does not swing it): a burst that gives each connection a single
	// frame, however heavy, is written without delay, since waiting would
	// merge nothing. Under a heavy fan-out the CPU it saves keeps the
	// server below saturation, which shortens the latency tail (see
	// BENCHMARKS.md). Replies (phx_reply, so also join
	// and heartbeat replies) are never delayed: a connection with one
	// queued is written as soon as a worker is free, with everything
	// queued before it. Stats.WriteDelay reports the delay in effect and
	// Stats.WriteDelayTotal its mean over time. Defaults to 40 ms;
	// negative turns the delay off. WriteDelay, when set, replaces it.
	MaxWriteDelay time.Duration
	// WriteDelay, if positive, fixes the write delay: every connection's
	// broadcasts and pushes wait this long before they are written,
	// whatever the load, in exchange for up to WriteDelay of added latency
	// on each. Replies are not delayed. Defaults to 0: the adaptive delay
	// of MaxWriteDelay applies.
	WriteDelay time.Duration
	// DisableIOUring makes the WebSocket write pool write each connection
	// with its own write(2) system call. By default, on Linux, the pool
	// submits the sends of up to 32 connections with one io_uring system
	// call (the same non-blocking writes, in the same order), which costs
	// less per write where system calls are dear, as in virtual machines
	// (see BENCHMARKS.md); where the kernel or a container's seccomp
	// profile refuses io_uring the pool falls back to write(2) by itself.
	// Other systems always use the plain path. Defaults to false.
	DisableIOUring bool
	// MailboxSize bounds the messages waiting for one channel. Client pushes
	// beyond it wait (the connection's reads pause); broadcasts to
	// intercepting channels and infos beyond it are dropped and logged.
	// Defaults to 1024.
	MailboxSize int
	// LongPoll enables the LongPoll transport at <mount>/longpoll, which
	// phoenix.js uses with transport: LongPoll or as its fallback
	// (longPollFallbackMs). Defaults to nil: off, as in Phoenix.
	LongPoll *LongPollOptions
	// Compression enables permessage-deflate (RFC 7692) when the client
	// offers it, without context takeover: each message of at least 512
	// bytes is compressed on its own, so a broadcast is compressed once for
	// all its subscribers and a connection keeps no compressor (an idle
	// connection costs about the same with or without it). Smaller messages
	// go uncompressed. It costs CPU per large message and saves bandwidth;
	// on loopback it rarely pays. Inbound compressed messages are bounded
	// by MaxInflatedSize and MaxInflateRate. Defaults to off.
	Compression bool
	// Breakers holds the circuit breakers of WithFallback and
	// PushInitialState, one per service name. Defaults to a registry with
	// fallback's default BreakerOptions (open after 5 consecutive failures, 30 s
	// cool-down, no timeout) logging to Logger.
	Breakers *fallback.Registry
	// CorrelationIDLength is the length in hex characters of generated
	// connection correlation ids. Defaults to 16.
	CorrelationIDLength int
	// Drain spreads the 1012 closes of Shutdown over time in batches, as
	// Phoenix's socket drainer does, so that clients do not all reconnect
	// to the remaining nodes at once. Defaults to nil: Phoenix's defaults
	// (see DrainOptions), under which a node with at most 10 000
	// connections closes them all at once. Close does not drain.
	Drain *DrainOptions

	// For transport authors and test harnesses (see Server.Attach): hooks
	// that follow channels as they join and terminate. Both default to nil.

	// OnTerminate, if set, is called after a channel's Terminate with the
	// same reason, on the channel's goroutine: for test harnesses
	// (channeltest observes terminations through it; metrics use
	// Server.Observe). It must not block.
	OnTerminate func(s *Socket, reason error)
	// OnJoin, if set, is called after a successful join (after the join reply
	// is queued, before the channel handles anything else) on the joining
	// goroutine. It must not block. With OnTerminate it lets test
	// harnesses follow channels (metrics use Server.Observe).
	OnJoin func(s *Socket)
}

// DrainOptions configure how Server.Shutdown closes connections: in
// batches of BatchSize, one batch every BatchInterval, the first at once,
// until every connection that was open when Shutdown began is closed with
// 1012 or Timeout has passed since then, when all the rest are closed at
// once. The Shutdown context bounds it all: when it is done, the rest are
// closed at once too and Shutdown returns ctx.Err(). New connections (and
// new LongPoll sessions) are refused with 503 from the moment Shutdown
// begins; requests of LongPoll sessions not closed yet are still served.
// The zero value of every field means its default, Phoenix's drainer
// settings.
type DrainOptions struct {
	// BatchSize is the number of connections closed per batch. Defaults to
	// 10 000.
	BatchSize int
	// BatchInterval is the wait between two batches. Defaults to 2 s.
	BatchInterval time.Duration
	// Timeout bounds the batched drain, from the start of Shutdown:
	// connections still open then are closed at once. Defaults to 30 s.
	Timeout time.Duration
}

func (o *DrainOptions) withDefaults() DrainOptions {
	var c DrainOptions
	if o != nil {
		c = *o
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 10_000
	}
	if c.BatchInterval <= 0 {
		c.BatchInterval = 2 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	return c
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = 10_000_000
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = 100
	}
	if c.MaxTopicLength <= 0 {
		c.MaxTopicLength = 1024
	}
	if c.MaxJoinParamsBytes <= 0 {
		c.MaxJoinParamsBytes = 64 << 10
	}
	if c.MaxInflatedSize <= 0 {
		c.MaxInflatedSize = 1 << 20
	}
	c.MaxInflatedSize = min(c.MaxInflatedSize, c.MaxFrameSize)
	if c.MaxInflateRate <= 0 {
		c.MaxInflateRate = 1 << 20
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 1 << 20
	}
	if c.MaxWriteDelay == 0 {
		c.MaxWriteDelay = 40 * time.Millisecond
	}
	if c.MailboxSize <= 0 {
		c.MailboxSize = 1024
	}
	if c.CorrelationIDLength <= 0 {
		c.CorrelationIDLength = correlation.DefaultLength
	}
	d := c.Drain.withDefaults()
	c.Drain = &d
	return c
}

// Server is a Phoenix socket endpoint: an http.Handler serving the
// WebSocket transport at <mount path>/websocket. Mount it under any prefix:
//
//	mux.Handle("/socket/", srv) // ws://host/socket/websocket
type Server struct {
	opts        Options
	router      *Router
	chain       atomic.Pointer[procChain] // the router's hooks, built once (routerChain)
	ps          pubsub.PubSub
	ownPS       bool
	hub         *hub
	origins     *originChecker
	breakers    *fallback.Registry
	lp          *longpoll.State // nil unless Options.LongPoll
	ownBreakers bool
	log         *slog.Logger
	nodeID      string
	procN       atomic.Uint64

	ws *wstransport.Server // the WebSocket transport's shared state

	mu    sync.Mutex
	conns map[*Conn]struct{}
	// closed refuses new connections (set when Close or Shutdown begins);
	// stopped refuses every request (set once the connections are closed,
	// before Close and Shutdown wait).
	closed, stopped bool
	// closeNow is closed by Close: a Shutdown draining meanwhile stops.
	closeNow     chan struct{}
	closeNowOnce sync.Once
	// timer returns a channel that receives after d and a func that stops
	// it: time.NewTimer, replaced by tests of the drain.
	timer func(d time.Duration) (<-chan time.Time, func() bool)
	// wg counts requests being served (see hold) and the goroutines the
	// transports start; Close and Shutdown wait for it.
	wg sync.WaitGroup

	stats serverStats
	obs   observerReg // Observers installed with Observe
}

type serverStats struct {
	connections  atomic.Int64
	wsConns      atomic.Int64 // connections of the WebSocket transport
	lpConns      atomic.Int64 // connections of the LongPoll transport
	accepted     atomic.Uint64
	refused      atomic.Uint64
	slowClosed   atomic.Uint64
	malformed    atomic.Uint64
	mailboxDrops atomic.Uint64
}

// Stats are counters of a Server.
type Stats struct {
	Connections  int64  // open connections
	Accepted     uint64 // connections accepted since start
	Refused      uint64 // connections refused (origin, vsn, Connect)
	SlowClosed   uint64 // connections closed with CloseSlowConsumer
	Malformed    uint64 // connections closed for malformed frames (1011) or invalid UTF-8 (1007)
	MailboxDrops uint64 // broadcasts/infos dropped at a full channel mailbox
	Filtered     uint64 // broadcast deliveries dropped by clients' filters (see Filter)
	// FramesWritten counts the frames written to WebSocket connections, and
	// Writes the socket writes that carried them: a busy server sends
	// several frames of a connection in one write, so Writes < FramesWritten.
	FramesWritten uint64
	Writes        uint64
	// BlockedWrites counts the writes the write pool handed to a goroutine
	// of the connection's own because they could not go out at once: the
	// client's socket buffer was full (a sign of slow clients) or a control
	// frame was being written.
	BlockedWrites uint64
	// WriteDelay is the WebSocket write pool's current write delay (see
	// Options.MaxWriteDelay; Options.WriteDelay when that is set).
	// WriteDelayTotal is that delay integrated over time, a counter that
	// grows by the delay in effect each second: its increase between two
	// snapshots divided by the seconds between them is the mean delay
	// (Prometheus: rate). Time the pool spends idle adds nothing.
	WriteDelay      time.Duration
	WriteDelayTotal time.Duration
	// WebSocketConnections and LongPollConnections split Connections by
	// transport; connections of other transports (Server.Attach, as
	// package channeltest uses it) count in neither.
	WebSocketConnections int64
	LongPollConnections  int64
	// LongPollSessions is the number of LongPoll sessions open on this
	// node (0 without Options.LongPoll): LongPollConnections plus sessions
	// being set up.
	LongPollSessions int64
	// Broadcasts counts the broadcasts this node fanned out to its local
	// subscribers (those that reached at least one), and Deliveries the
	// subscribers they were handed to: joined channels, and connections
	// subscribed by socket id. Deliveries / Broadcasts is the mean fan-out.
	Broadcasts uint64
	Deliveries uint64
}

// NewServer returns a Server. It panics if opts.Router is nil.
func NewServer(opts *Options) *Server {
	o := opts.withDefaults()
	if o.Router == nil {
		panic("channel: NewServer needs Options.Router")
	}
	s := &Server{
		opts:   o,
		router: o.Router,
		ps:     o.PubSub,
		log:    o.Logger,
		conns:  make(map[*Conn]struct{}),

		closeNow: make(chan struct{}),
		timer: func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		},
	}
	if s.ps == nil {
		s.ps = pubsub.NewMemory(nil)
		s.ownPS = true
	}
	s.hub = newHub(s.ps)
	s.ws = wstransport.NewServer(&wstransport.Config{
		MaxFrameSize:    o.MaxFrameSize,
		MaxInflatedSize: o.MaxInflatedSize,
		MaxInflateRate:  o.MaxInflateRate,
		MaxQueueBytes:   o.MaxQueueBytes,
		WriteDelay:      o.WriteDelay,
		MaxWriteDelay:   o.MaxWriteDelay,
		NoRing:          o.DisableIOUring,
		IdleTimeout:     o.IdleTimeout,
		Compression:     o.Compression,
		Group:           &s.wg,
		Conns:           s.wsConns,
	})
	s.origins = newOriginChecker(o.AllowedOrigins, o.AllowSameOrigin)

	s.breakers = o.Breakers
	s.ownBreakers = s.breakers == nil
	if s.breakers == nil {
		s.breakers = fallback.NewRegistry(&fallback.BreakerOptions{Logger: o.Logger})
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	s.nodeID = hex.EncodeToString(b[:])
	if o.LongPoll != nil {
		s.lp = newLongPoll(s) // needs the node id
	}
	return s
}

// PubSub returns the server's PubSub.
func (s *Server) PubSub() pubsub.PubSub { return s.ps }

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	ws := s.ws.Stats()
	var lpSessions int64
	if s.lp != nil {
		lpSessions = int64(s.lp.Count())
	}
	return Stats{
		Connections:   s.stats.connections.Load(),
		Accepted:      s.stats.accepted.Load(),
		Refused:       s.stats.refused.Load(),
		SlowClosed:    s.stats.slowClosed.Load(),
		Malformed:     s.stats.malformed.Load(),
		MailboxDrops:  s.stats.mailboxDrops.Load(),
		Filtered:      s.hub.filtered.Load(),
		FramesWritten: ws.FramesWritten,
		Writes:        ws.Writes,
		BlockedWrites: ws.BlockedWrites,

		WriteDelay:      ws.WriteDelay,
		WriteDelayTotal: ws.WriteDelayTotal,

		WebSocketConnections: s.stats.wsConns.Load(),
		LongPollConnections:  s.stats.lpConns.Load(),
		LongPollSessions:     lpSessions,
		Broadcasts:           s.hub.broadcasts.Load(),
		Deliveries:           s.hub.deliveries.Load(),
	}
}

// QueuedBytes returns the outbound bytes queued on this node, summed over
// the connections of the WebSocket and LongPoll transports: frames waiting
// for a socket write, and messages waiting for a LongPoll client's next
// poll. It visits every connection (taking each one's queue lock briefly),
// so it costs time in proportion to the connections: meant for a metrics
// scrape, not for a loop. Only the copy of the connection list is made
// under the server's lock, so a scrape that waits on busy queues does not
// hold up connects and disconnects.
func (s *Server) QueuedBytes() int64 {
	s.mu.Lock()
	qs := make([]queuedByteser, 0, len(s.conns))
	for c := range s.conns {
		if q, ok := c.t.(queuedByteser); ok {
			qs = append(qs, q)
		}
	}
	s.mu.Unlock()
	var n int64
	for _, q := range qs {
		n += int64(q.queuedBytes())
	}
	return n
}

// queuedByteser is implemented by transports that queue outbound bytes.
type queuedByteser interface {
	queuedBytes() int
}

// Subscribers returns the number of channels on this node joined to topic.
func (s *Server) Subscribers(topic string) int { return s.hub.count(topic) }

func (s *Server) nextProcID() string {
	return s.nodeID + "." + strconv.FormatUint(s.procN.Add(1), 36)
}

// Broadcast sends event with payload to every client joined to topic on
// every node (Phoenix's Endpoint.broadcast). A broadcast to a socket id
// with event "disconnect" closes that id's connections. See Socket.Push for
// payload encoding.
func (s *Server) Broadcast(ctx context.Context, topic, event string, payload any) error {
	return s.broadcast(ctx, topic, event, payload, "")
}

// LocalBroadcast is Broadcast to the clients of this node only, bypassing
// the PubSub. Node-local replicas (such as presence trackers, which compute
// the same diff on every node) use it so that each client gets a message
// once.
func (s *Server) LocalBroadcast(topic, event string, payload any) error {
	b, bin, err := encodePayload(payload)
	if err != nil {
		return err
	}
	s.hub.deliverLocal(&pubsub.Message{Topic: topic, Event: event, Payload: b, Binary: bin})
	return nil
}

func (s *Server) broadcast(ctx context.Context, topic, event string, payload any, from string) error {
	b, bin, err := encodePayload(payload)
	if err != nil {
		return err
	}
	msg := &pubsub.Message{Topic: topic, Event: event, Payload: b, Binary: bin}
	if from != "" {
		return s.ps.BroadcastFrom(ctx, from, msg)
	}
	return s.ps.Broadcast(ctx, msg)
}

// ServeHTTP serves the transports: a path ending in /websocket is the
// WebSocket endpoint, one ending in /longpoll the LongPoll endpoint (when
// Options.LongPoll is set); anything else is 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/websocket"):
		s.serveWebSocket(w, r)
	case strings.HasSuffix(r.URL.Path, "/longpoll") && s.opts.LongPoll != nil:
		s.lp.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) removeConn(c *Conn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.stats.connections.Add(-1)
		s.countTransport(c.t, -1)
	}
	s.mu.Unlock()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// hold counts a request being served in s.wg, unless the Server is
// closed; the caller calls release when done. Taking the count under s.mu,
// where Close and Shutdown mark the server closed before they wait, orders
// every Add before their Wait: a request either is refused or is waited
// for, and a connection it opens is in s.conns before they look.
func (s *Server) hold() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// holdSession is hold for a request of an open LongPoll session, which is
// served while Shutdown drains (until the server is stopped); Attach
// refuses new sessions from the start.
func (s *Server) holdSession() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	return true
}

// release ends a hold.
func (s *Server) release() { s.wg.Done() }

// Shutdown stops accepting connections (503), closes every open one with
// 1012 (service restart) so that clients reconnect to another node, in
// batches spread over time as Options.Drain says, and waits for their
// goroutines to end or ctx to be done, whichever is first (returning
// ctx.Err() then; connections the drain had not reached yet are closed at
// once). Register it with http.Server.RegisterOnShutdown or call it before
// http.Server.Shutdown: net/http does not track WebSocket connections.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.shutdown(ctx, false)
}

// Close closes every connection at once (code 1012 is sent if the socket
// takes it without waiting), without Options.Drain's batches, and waits
// for their goroutines, as Shutdown does but without a deadline: a
// Connect, channel callback or fallback call that never returns keeps it
// waiting. A Shutdown draining meanwhile closes the rest at once.
func (s *Server) Close() error {
	s.closeNowOnce.Do(func() { close(s.closeNow) })
	return s.shutdown(context.Background(), true)
}

// shutdown is the one close path: mark the server closed, close every
// connection (now: drop WebSocket connections without waiting for the
// close handshake; else in drain batches), stop the transports, wait for
// every goroutine and request held, then for fallback calls of the
// server's own breakers, and close the server's own PubSub.
func (s *Server) shutdown(ctx context.Context, now bool) error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if now {
		for _, c := range conns {
			c.closeNow(CloseServiceRestart, "service restart")
		}
	} else {
		s.drain(ctx, conns)
	}
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	if s.lp != nil {
		s.lp.Close()
	}
	s.ws.Close()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.ownBreakers {
		if err := s.breakers.Wait(ctx); err != nil {
			return err
		}
	}
	return s.closePubSub()
}

// drain closes conns with 1012 in batches of Drain.BatchSize, the first at
// once and one more every Drain.BatchInterval, on the caller's goroutine.
// When Drain.Timeout has passed, ctx is done or Close was called, the rest
// are closed at once (Close closes them itself).
func (s *Server) drain(ctx context.Context, conns []*Conn) {
	d := s.opts.Drain
	closeAll := func(cs []*Conn) {
		for _, c := range cs {
			c.Close(CloseServiceRestart, "service restart")
		}
	}
	if len(conns) <= d.BatchSize {
		closeAll(conns)
		return
	}
	rounds := (len(conns) + d.BatchSize - 1) / d.BatchSize
	s.log.LogAttrs(ctx, slog.LevelInfo, "shutdown: draining connections in batches",
		slog.Int("connections", len(conns)), slog.Int("batches", rounds),
		slog.Int("batch_size", d.BatchSize), slog.Duration("batch_interval", d.BatchInterval),
		slog.Duration("timeout", d.Timeout))
	deadline, stopDeadline := s.timer(d.Timeout)
	defer stopDeadline()
	for {
		n := min(d.BatchSize, len(conns))
		closeAll(conns[:n])
		conns = conns[n:]
		if len(conns) == 0 {
			return
		}
		tick, stopTick := s.timer(d.BatchInterval)
		select {
		case <-tick:
			continue
		case <-deadline:
			s.log.LogAttrs(ctx, slog.LevelWarn, "shutdown: drain timeout, closing the remaining connections at once",
				slog.Int("connections", len(conns)), slog.Duration("timeout", d.Timeout))
		case <-ctx.Done():
		case <-s.closeNow:
			stopTick()
			return
		}
		stopTick()
		closeAll(conns)
		return
	}
}
func (s *Server) closePubSub() error {
	if !s.ownPS {
		return nil
	}
	if err := s.ps.Close(); err != nil && !errors.Is(err, pubsub.ErrClosed) {
		return fmt.Errorf("channel: close pubsub: %w", err)
	}
	return nil
}
