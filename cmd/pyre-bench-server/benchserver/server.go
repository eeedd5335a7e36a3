// Package benchserver is the pyre server the benchmarks measure: a trivial
// "room:*" channel behind a channel.Server, plus the control endpoints that
// the anchor harness (an external tool running centrifuge v0.40.1 and a
// naive coder/websocket hub side by side) expects of every server it
// measures:
//
//	GET  /socket/websocket?vsn=2.0.0            the Phoenix socket
//	POST /publish?channel=C&rate=R&seconds=S&size=B
//	     broadcasts R messages/s for at most S seconds on topic C through
//	     Server.Broadcast (event "msg", payload {"ts":…,"seq":…,"pad":"x…"}
//	     of B bytes; with Config.OddEvent, odd seq go out under that event
//	     instead) and answers a PublishResult when done; a cross-origin
//	     browser request (Origin or Sec-Fetch-Site naming another site) is
//	     refused with 403, so no web page can start a publish loop
//	GET  /debug/mem[?gc=1]                       runtime.MemStats (after a GC
//	     with gc=1), goroutines, RSS and the pyre server's Stats (among
//	     them "filtered": deliveries dropped by client filters)
//	GET  /debug/pprof/…                          net/http/pprof
//
// The room channel joins everyone and answers the event "echo" with
// {"status":"ok","response":<the pushed payload>} (the rpc scenario). It is
// channel.Filterable with the default limits, so a client may join with a
// "filter" param (e.g. {"filter":{"events":["msg"]}}); a client that sends
// none gets every broadcast, as before.
// cmd/pyre-bench-server runs it as a binary; cmd/pyrebench runs the same
// code in a child process.
package benchserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/pubsub/pubsuburl"
)

// Config configures the bench server. The zero value of a field means its
// default.
type Config struct {
	// Addr is the listen address; it must be a 127.0.0.0/8 address (port 0
	// picks a free port). Defaults to 127.0.0.1:8003.
	Addr string
	// Topic is the topic the benchmarks join. Topics matching "room:*" are
	// always routed to the room channel; Topic is routed too when it does
	// not. Defaults to "room:bench".
	Topic string
	// MaxQueueBytes is channel.Options.MaxQueueBytes (0: pyre's default, 1 MiB).
	MaxQueueBytes int
	// MailboxSize is channel.Options.MailboxSize (0: pyre's default).
	MailboxSize int
	// IdleTimeout is channel.Options.IdleTimeout (0: pyre's default, 60 s).
	IdleTimeout time.Duration
	// WriteDelay is channel.Options.WriteDelay (0: the adaptive delay).
	WriteDelay time.Duration
	// MaxWriteDelay is channel.Options.MaxWriteDelay (0: pyre's default,
	// 40 ms; negative: no adaptive delay).
	MaxWriteDelay time.Duration
	// DisableIOUring is channel.Options.DisableIOUring.
	DisableIOUring bool
	// Compression is channel.Options.Compression. Defaults to off.
	Compression bool
	// Pprof mounts net/http/pprof at /debug/pprof/. Defaults to off.
	Pprof bool
	// PubSub names the bus Run opens (package pubsuburl): "memory" or ""
	// (pyre's private in-memory default, one node), redis://host:port or
	// nats://host:port (several nodes share it; the bus is wrapped in a
	// CountingPubSub whose counters /debug/mem reports). New ignores it.
	PubSub string
	// Bus is the PubSub New gives the pyre server, counted by /debug/mem.
	// Defaults to nil: pyre's private in-memory PubSub, not counted.
	Bus *CountingPubSub
	// Logger receives pyre's and the HTTP server's logs. Defaults to discarding.
	Logger *slog.Logger
	// OddEvent, when set, is the event of the broadcasts whose payload seq
	// is odd; even seq keep "msg". A client filter {"events":["msg"]} then
	// drops every other broadcast (the fanout -filter-pct runs); give it the
	// length of "msg" so that frames keep their size. Defaults to "": every
	// broadcast is "msg", the format the centrifuge anchor is compared on.
	OddEvent string
	// ReadHeaderTimeout closes a connection (in Run) whose request headers
	// have not all arrived this long after it began. Defaults to 10 s.
	ReadHeaderTimeout time.Duration
}

// RegisterFlags defines the command-line flags of the bench server on fs,
// storing into c; pyre-bench-server and "pyrebench serve" share them.
func RegisterFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8003", "listen address (127.0.0.0/8 only; port 0 picks one)")
	fs.StringVar(&c.Topic, "topic", "room:bench", "topic the benchmark joins (room:* is always routed)")
	fs.IntVar(&c.MaxQueueBytes, "max-queue-bytes", 0, "channel.Options.MaxQueueBytes: outbound bytes queued per connection before it is closed with 3008 (0 = pyre default, 1 MiB)")
	fs.IntVar(&c.MailboxSize, "mailbox-size", 0, "channel.Options.MailboxSize (0 = pyre default)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 0, "channel.Options.IdleTimeout (0 = pyre default, 60s)")
	fs.DurationVar(&c.WriteDelay, "write-delay", 0, "channel.Options.WriteDelay: hold pushes and broadcasts this long so that more share one write (0 = the adaptive delay of -max-write-delay)")
	fs.DurationVar(&c.MaxWriteDelay, "max-write-delay", 0, "channel.Options.MaxWriteDelay: bound of the adaptive write delay (0 = pyre default, 40ms; negative = off: write at once)")
	fs.BoolVar(&c.DisableIOUring, "disable-iouring", false, "channel.Options.DisableIOUring: the write pool makes one write(2) per connection instead of batching sends through io_uring")
	fs.BoolVar(&c.Compression, "compression", false, "channel.Options.Compression: permessage-deflate when the client offers it")
	fs.BoolVar(&c.Pprof, "pprof", true, "mount net/http/pprof at /debug/pprof/")
	fs.StringVar(&c.OddEvent, "odd-event", "", `event of the broadcasts with an odd seq ("" = every broadcast is "msg"); for client filters that keep half`)
	fs.StringVar(&c.PubSub, "pubsub", "memory", "PubSub: memory (one node), redis://host:port or nats://host:port (nodes sharing the broker; /debug/mem then counts broker traffic)")
}

// room is the benchmark channel: join always succeeds, "echo" replies with
// the payload it got, and clients may filter its broadcasts.
type room struct {
	channel.Base
}

// FilterLimits makes room channel.Filterable with the default limits.
func (r *room) FilterLimits() *channel.FilterLimits { return nil }

var _ channel.Filterable = (*room)(nil)

func (r *room) Join(context.Context, *channel.Socket, channel.Payload) (any, error) { return nil, nil }

func (r *room) HandleIn(_ context.Context, _ *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	if msg.Event == "echo" {
		return channel.OK(msg.Payload), nil
	}
	return channel.NoReply, channel.ErrUnhandled
}

// Server is the bench server's HTTP handler and its pyre server.
type Server struct {
	cfg     Config
	pyre    *channel.Server
	mux     *http.ServeMux
	publish sync.Mutex // one publish loop at a time
}

// New returns a Server for c.
func New(c Config) *Server {
	if c.Topic == "" {
		c.Topic = "room:bench"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	router := channel.NewRouter()
	router.Handle("room:*", func() channel.Channel { return &room{} })
	if !strings.HasPrefix(c.Topic, "room:") {
		router.Handle(c.Topic, func() channel.Channel { return &room{} })
	}
	opts := &channel.Options{
		Router:         router,
		Logger:         c.Logger,
		MaxQueueBytes:  c.MaxQueueBytes,
		WriteDelay:     c.WriteDelay,
		MaxWriteDelay:  c.MaxWriteDelay,
		DisableIOUring: c.DisableIOUring,
		MailboxSize:    c.MailboxSize,
		IdleTimeout:    c.IdleTimeout,
		Compression:    c.Compression,
	}
	if c.Bus != nil {
		opts.PubSub = c.Bus
	}
	s := &Server{cfg: c, pyre: channel.NewServer(opts), mux: http.NewServeMux()}
	s.mux.Handle("/socket/", s.pyre)
	s.mux.Handle("/publish", http.NewCrossOriginProtection().Handler(PublishHandler(&s.publish, func(ctx context.Context, topic string, payload []byte) error {
		event := "msg"
		if c.OddEvent != "" && seqOf(payload)%2 == 1 {
			event = c.OddEvent
		}
		return s.pyre.Broadcast(ctx, topic, event, json.RawMessage(payload))
	})))
	s.mux.HandleFunc("/debug/mem", s.handleMem)
	if c.Pprof {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Pyre returns the pyre server.
func (s *Server) Pyre() *channel.Server { return s.pyre }

// Close closes every connection and waits for their goroutines.
func (s *Server) Close() error { return s.pyre.Close() }

func (s *Server) handleMem(w http.ResponseWriter, r *http.Request) {
	st := s.pyre.Stats()
	out := MemStats(r)
	out["connections"] = st.Connections
	out["accepted"] = st.Accepted
	out["refused"] = st.Refused
	out["slow_closed"] = st.SlowClosed
	out["malformed"] = st.Malformed
	out["mailbox_drops"] = st.MailboxDrops
	out["frames_written"] = st.FramesWritten
	out["writes"] = st.Writes
	out["write_delay_total_ns"] = int64(st.WriteDelayTotal)
	out["filtered"] = st.Filtered
	out["subscribers"] = s.pyre.Subscribers(s.cfg.Topic)
	if s.cfg.Bus != nil {
		bc := s.cfg.Bus.Counts()
		out["broker_published"], out["broker_received"], out["broker_subscribes"] = bc.Published, bc.Received, bc.Subscribes
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// seqOf returns the seq of a payload built by AppendPayload, -1 when it has
// none.
func seqOf(payload []byte) int64 {
	_, rest, ok := bytes.Cut(payload, []byte(`"seq":`))
	if !ok {
		return -1
	}
	var v int64
	i := 0
	for ; i < len(rest) && i < 18 && rest[i] >= '0' && rest[i] <= '9'; i++ {
		v = v*10 + int64(rest[i]-'0')
	}
	if i == 0 {
		return -1
	}
	return v
}

// ErrNotLoopback is returned by Run for a listen address outside 127.0.0.0/8.
var ErrNotLoopback = errors.New("benchserver: listen address must be in 127.0.0.0/8")

// Run listens on c.Addr, calls ready with the bound address, and serves
// until ctx ends; then it closes every connection (code 1012) and stops.
func Run(ctx context.Context, c Config, ready func(addr string)) error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8003"
	}
	ap, err := netip.ParseAddrPort(c.Addr)
	if err != nil || !ap.Addr().Is4() || !ap.Addr().IsLoopback() {
		return fmt.Errorf("%w: %q", ErrNotLoopback, c.Addr)
	}
	if c.PubSub != "" && c.PubSub != "memory" {
		ps, err := pubsuburl.Open(ctx, c.PubSub, c.Logger)
		if err != nil {
			return err
		}
		defer ps.Close()
		c.Bus = NewCountingPubSub(ps)
	}
	s := New(c)
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		_ = s.Close()
		return err
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	// Slow or idle peers cannot hold connections: headers within
	// ReadHeaderTimeout (slowloris), a whole request within ReadTimeout, the
	// next keep-alive request within IdleTimeout. The benchmark's WebSockets
	// outlive them: net/http clears a connection's deadlines when it is
	// hijacked. No WriteTimeout: it runs from the request headers to the end
	// of the response and would cut a /publish loop (up to MaxSeconds) or a
	// 30 s /debug/pprof/profile.
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(logWriter{s.cfg.Logger}, "", 0),
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		_ = s.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.pyre.Shutdown(sctx)
	_ = hs.Shutdown(sctx)
	_ = s.Close()
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logWriter sends net/http's error log (accept errors such as EMFILE) to
// the slog logger.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = logWriter{}
