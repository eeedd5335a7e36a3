// Package app wires the Landale example together: the simulated world,
// the event bus, the stream producer, the six channels on a pyre
// channel.Server mounted at /socket, and the HTTP API and pages.
package app

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/promchannel"
	"github.com/pyre-go/pyre/correlation"
	"github.com/pyre-go/pyre/examples/landale/internal/activity"
	"github.com/pyre-go/pyre/examples/landale/internal/api"
	"github.com/pyre-go/pyre/examples/landale/internal/channels"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/examples/landale/internal/stream"
	"github.com/pyre-go/pyre/examples/landale/internal/transcript"
	"github.com/pyre-go/pyre/fallback"
	"github.com/pyre-go/pyre/pubsub"
)

// AllowedOrigins is Landale's socket check_origin list (§1.1). The HTTP
// API uses the same list for requests that change state (POST
// /api/simulate...): no Origin, or one of these or of Options.SelfOrigins.
// The request's Host header plays no part: under DNS rebinding an
// attacker's page reaches a loopback server under the attacker's host name,
// so "same host" proves nothing.
var AllowedOrigins = []string{
	"http://localhost:5173", "http://localhost:5174", "http://127.0.0.1:5173", "http://127.0.0.1:5174",
	"http://localhost:8008", "http://saya:8008", "http://zelan:8008",
	"https://saya.tailnet-dffc.ts.net:5173", "https://zelan.tailnet-dffc.ts.net:5173",
	"https://demi.tailnet-dffc.ts.net:5173", "https://alys.tailnet-dffc.ts.net:5173",
	"http://saya.local:5173", "http://zelan.local:5173", "http://demi.local:5173", "http://alys.local:5173",
}

// IdleTimeout is Landale's socket timeout: 90 s without a frame.
const IdleTimeout = 90 * time.Second

// Options configure an App. Zero values mean the defaults.
type Options struct {
	// PubSub carries broadcasts and events. Defaults to an in-memory PubSub
	// that the App closes on Shutdown.
	PubSub pubsub.PubSub
	// Logger receives the logs. Defaults to discarding.
	Logger *slog.Logger
	// Web holds the pages. nil serves none.
	Web fs.FS
	// SlowDelay is how long a call to a slow service takes. Defaults to 6 s.
	SlowDelay time.Duration
	// Simulate sets initial service modes.
	Simulate map[string]sim.Mode
	// Demo starts the demo generator with the App.
	Demo bool
	// DemoRate is the generator's events per second. Defaults to 2.
	DemoRate float64
	// Environment is reported in telemetry. Defaults to "development".
	Environment string
	// IdleTimeout closes sockets that send nothing for this long. Defaults
	// to Landale's 90 s (IdleTimeout).
	IdleTimeout time.Duration
	// ServiceTimeout bounds channel service calls. Defaults to 5 s.
	ServiceTimeout time.Duration
	// TickerInterval rotates the omnibar ticker. Defaults to 15 s.
	TickerInterval time.Duration
	// SelfOrigins are the origins under which browsers load the pages this
	// server serves itself (scheme://host:port, e.g. "http://127.0.0.1:7175"),
	// allowed by the socket and the API besides AllowedOrigins.
	// SelfOriginsFor derives them from a listen address. Defaults to none.
	SelfOrigins []string
	// Breakers configures the circuit breaker of each service. Defaults to
	// BreakerThreshold and BreakerCoolDown. A service's breaker is reset (closed) whenever its
	// simulated mode changes.
	Breakers *fallback.BreakerOptions
}

// Breaker defaults of the example: open after 5 consecutive failures, probe
// again after 10 s.
const (
	BreakerThreshold = 5
	BreakerCoolDown  = 10 * time.Second
)

// App is the Landale example server.
type App struct {
	Ctl         *sim.Controller
	Bus         *events.Bus
	World       *sim.World
	Producer    *stream.Producer
	Transcripts *transcript.Store
	Activity    *activity.Log
	Overlays    *channels.Tracker
	Breakers    *channels.Breakers
	Demo        *sim.Demo
	Server      *channel.Server
	// Metrics is the registry served at GET /metrics: the Server's
	// metrics (package promchannel), with the PubSub's broker counters and
	// the service breakers, plus the Go runtime's and the process's.
	Metrics *prometheus.Registry
	metrics *promchannel.Metrics

	ps      pubsub.PubSub // the cluster PubSub
	node    *events.NodePubSub
	ownPS   bool
	log     *slog.Logger
	handler http.Handler
	demoOn  bool

	mu      sync.Mutex
	baseCtx context.Context
	stop    context.CancelFunc
}

// New builds the App; Start starts its background work.
func New(opts *Options) (*App, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &App{ps: o.PubSub, log: o.Logger, demoOn: o.Demo}
	if a.ps == nil {
		a.ps = pubsub.NewMemory(&pubsub.MemoryOptions{Logger: o.Logger})
		a.ownPS = true
	}
	a.Ctl = sim.NewController(o.SlowDelay)
	if err := a.Ctl.Apply(o.Simulate); err != nil {
		return nil, err
	}
	// Everything runs on the node layer over the cluster PubSub: what every
	// node derives for itself (the stream producer's state) is published to
	// this node only, so each client gets it once however many nodes share
	// the broker.
	a.node = events.NewNodePubSub(a.ps)
	a.Bus = events.NewBus(a.node, nil)
	a.World = sim.NewWorld(a.Ctl, a.Bus, nil)
	a.Producer = stream.New(a.Bus, a.Ctl, &stream.Options{TickerInterval: o.TickerInterval, Logger: o.Logger})
	a.Transcripts = transcript.NewStore(0)
	a.Activity = activity.New(a.node, 0)
	a.Overlays = channels.NewTracker()
	bs := fallback.BreakerOptions{FailureThreshold: BreakerThreshold, CoolDown: BreakerCoolDown}
	if o.Breakers != nil {
		bs = *o.Breakers
	}
	if bs.Logger == nil {
		bs.Logger = o.Logger
	}
	a.Breakers = channels.NewBreakers(&bs)
	a.Ctl.Watch(func(service string, _, _ sim.Mode) { a.Breakers.Reset(service) })
	deps := &channels.Deps{
		Bus: a.Bus, World: a.World, Producer: a.Producer, Transcripts: a.Transcripts, Overlays: a.Overlays,
		Breakers: a.Breakers, Environment: o.Environment, Started: time.Now(), ServiceTimeout: o.ServiceTimeout,
		Logger: o.Logger,
	}
	a.Demo = sim.NewDemo(a.World, &sim.DemoOptions{Rate: o.DemoRate, Logger: o.Logger,
		Transcribe: func(ctx context.Context, text string) { _ = channels.SubmitText(ctx, deps, text) }})
	idle := o.IdleTimeout
	if idle <= 0 {
		idle = IdleTimeout
	}
	origins := append(slices.Clip(AllowedOrigins), o.SelfOrigins...)
	a.Server = channel.NewServer(&channel.Options{
		Router:              channels.Router(deps),
		PubSub:              a.node,
		Logger:              o.Logger,
		AllowedOrigins:      origins,
		IdleTimeout:         idle,
		Compression:         true,
		CorrelationIDLength: 8,
		Connect:             connect,
	})
	a.Metrics = prometheus.NewRegistry()
	a.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := promchannel.New(a.Server, &promchannel.Options{
		Registerer: a.Metrics,
		PubSub:     a.ps, // the broker's counters; the Server's own PubSub is the node layer over it
		Breakers:   promchannel.BreakerStatesFunc(a.Breakers.StateValues),
	})
	if err != nil {
		return nil, err
	}
	a.metrics = m
	mux := http.NewServeMux()
	mux.Handle("/socket/", a.Server)
	// Prometheus scrapes GET /metrics; it is read-only and outside /api/,
	// so neither the API's origin guard nor its JSON rules apply.
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Metrics, promhttp.HandlerOpts{}))
	mux.Handle("/", correlation.Middleware(api.New(api.Config{
		Ctl: a.Ctl, Bus: a.Bus, Overlays: a.Overlays, Breakers: a.Breakers.States, Demo: demoControl{a},
		Web: o.Web, Stats: a.stats, AllowedOrigins: origins, Activity: a.Activity,
		Twitch: deps.TwitchStatus,
	})))
	a.handler = mux
	return a, nil
}

// connect is UserSocket.connect/3: never refuses, gives the connection a
// fresh 8-hex correlation id shared by its channels, and assigns the
// environment param (default "production").
func connect(_ context.Context, info *channel.ConnectInfo) error {
	info.CorrelationID = correlation.NewN(8)
	env, _ := info.Params["environment"].(string)
	if env == "" {
		env = "production"
	}
	assigns := make(map[string]any, len(info.Assigns)+2)
	for k, v := range info.Assigns {
		assigns[k] = v
	}
	assigns["environment"] = env
	assigns["correlation_id"] = info.CorrelationID
	info.Assigns = assigns
	info.ID = "user_socket:" + info.CorrelationID
	return nil
}

// SelfOriginsFor returns the origins browsers use for a server listening on
// addr (host:port as net.Listener.Addr gives it): for a loopback or
// unspecified address http://localhost, http://127.0.0.1 and http://[::1]
// with its port, otherwise http://host:port. Pages loaded under any other
// name (a LAN host name) need that origin added explicitly.
func SelfOriginsFor(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if host == "localhost" || (err == nil && (ip.IsLoopback() || ip.IsUnspecified())) {
		return []string{"http://localhost:" + port, "http://127.0.0.1:" + port, "http://[::1]:" + port}
	}
	return []string{"http://" + net.JoinHostPort(host, port)}
}

// Handler serves /socket/websocket, /api/*, GET /metrics and the pages.
func (a *App) Handler() http.Handler { return a.handler }

// Start starts the stream producer and, if enabled, the demo generator.
func (a *App) Start(ctx context.Context) error {
	a.mu.Lock()
	a.baseCtx, a.stop = context.WithCancel(context.WithoutCancel(ctx))
	base := a.baseCtx
	a.mu.Unlock()
	if err := a.Activity.Start(base); err != nil {
		return err
	}
	if err := a.Producer.Start(base); err != nil {
		return err
	}
	if a.demoOn {
		a.Demo.Start(base)
	}
	return nil
}

// Shutdown stops the generator, closes every connection (pyre's graceful
// 1012 close), then stops the producer and the PubSub it owns.
func (a *App) Shutdown(ctx context.Context) error {
	a.Demo.Stop()
	err := a.Server.Shutdown(ctx)
	a.metrics.Close()
	// After the connections: their overlays are untracked, then the
	// presence tracker tells the other nodes goodbye.
	err = errors.Join(err, a.Overlays.Shutdown(ctx))
	a.Producer.Close()
	a.Activity.Close()
	err = errors.Join(err, a.Breakers.Wait(ctx))
	a.mu.Lock()
	if a.stop != nil {
		a.stop()
	}
	a.mu.Unlock()
	_ = a.node.Close()
	if a.ownPS {
		if cerr := a.ps.Close(); cerr != nil && !errors.Is(cerr, pubsub.ErrClosed) {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

func (a *App) stats() map[string]any {
	st := a.Server.Stats()
	return map[string]any{
		"connections":       st.Connections,
		"producer_dropped":  a.Producer.Dropped(),
		"mailbox_drops":     st.MailboxDrops,
		"slow_consumers":    st.SlowClosed,
		"connections_total": st.Accepted,
	}
}

// demoControl adapts the generator to api.Demo, starting it under the
// App's context.
type demoControl struct{ a *App }

// Running reports whether the generator runs.
func (d demoControl) Running() bool { return d.a.Demo.Running() }

// Rate returns the generator's events per second.
func (d demoControl) Rate() float64 { return d.a.Demo.Rate() }

// Stop stops the generator.
func (d demoControl) Stop() { d.a.Demo.Stop() }

// Start starts the generator under the App's context (after App.Start).
func (d demoControl) Start() {
	d.a.mu.Lock()
	ctx := d.a.baseCtx
	d.a.mu.Unlock()
	if ctx != nil {
		d.a.Demo.Start(ctx)
	}
}
