// Command landale is pyre's showcase: the Go counterpart of Landale's
// Phoenix server, with every channel of Landale's UserSocket on pyre and
// simulated OBS, Twitch, Rainwave, IronMON and Nurvus services, so that
// Landale's own overlays and dashboard (phoenix.js 1.8) connect unchanged.
//
// Usage:
//
//	go run ./examples/landale [-addr 127.0.0.1:7175] [-demo=true] [-demo-rate 2]
//	    [-pubsub memory|redis://host:port|nats://host:port] [-simulate obs=down,nurvus=slow] [-slow 6s] [-v]
//
// See README.md for the pages, routes and the deviations from Landale.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pyre-go/pyre/correlation"
	"github.com/pyre-go/pyre/examples/landale/internal/app"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/pubsuburl"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "landale:", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	addr        string
	demo        bool
	demoRate    float64
	pubsub      string
	simulate    map[string]sim.Mode
	slow        time.Duration
	environment string
	idleTimeout time.Duration
	verbose     bool
	origins     []string
}

func parseFlags(args []string) (*config, error) {
	fl := flag.NewFlagSet("landale", flag.ContinueOnError)
	c := &config{}
	var simulate string
	fl.StringVar(&c.addr, "addr", "127.0.0.1:7175", "listen address")
	fl.BoolVar(&c.demo, "demo", true, "emit a plausible stream of demo events")
	fl.Float64Var(&c.demoRate, "demo-rate", 2, "demo events per second")
	fl.StringVar(&c.pubsub, "pubsub", "memory", "PubSub: memory, redis://host:port or nats://host:port")
	fl.StringVar(&simulate, "simulate", "", "initial service modes, e.g. obs=down,nurvus=slow (services: "+
		strings.Join(sim.Services, ", ")+"; modes: up, down, slow, failing)")
	fl.DurationVar(&c.slow, "slow", sim.DefaultSlowDelay, "duration of a call to a slow service")
	fl.StringVar(&c.environment, "environment", "development", "environment reported in telemetry")
	fl.DurationVar(&c.idleTimeout, "idle-timeout", app.IdleTimeout, "close sockets that send nothing for this long (Landale: 90s)")
	fl.BoolVar(&c.verbose, "v", false, "debug logging")
	var origins string
	fl.StringVar(&origins, "origins", "", "comma-separated extra origins of this server's pages, e.g. http://mybox:7175 when listening on 0.0.0.0 (the listen address's origins are always allowed)")
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fl.Args(), " "))
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.origins = append(c.origins, o)
		}
	}
	if c.demoRate <= 0 {
		return nil, errors.New("-demo-rate must be positive")
	}
	modes, err := sim.ParseSpec(simulate)
	if err != nil {
		return nil, fmt.Errorf("-simulate: %w", err)
	}
	c.simulate = modes
	return c, nil
}

// newPubSub builds the PubSub named by spec: memory, redis://host:port or
// nats://host:port. Several servers on one broker form one cluster.
func newPubSub(spec string, logger *slog.Logger) (pubsub.PubSub, error) {
	ps, err := pubsuburl.Open(context.Background(), spec, logger)
	if err != nil {
		return nil, fmt.Errorf("-pubsub %q: %w", spec, err)
	}
	return ps, nil
}

// HTTP server timeouts. See newHTTPServer.
const (
	readHeaderTimeout = 10 * time.Second
	keepAliveTimeout  = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// newHTTPServer returns the server for the App's handler, with timeouts
// that bound what a client can hold without sending anything useful:
//
//   - ReadHeaderTimeout (10 s): a request's headers must arrive within it,
//     so a slow-header client cannot hold a connection (and a goroutine).
//   - IdleTimeout (120 s): a keep-alive connection between two HTTP
//     requests is closed after it. It does not apply to a WebSocket, which
//     leaves net/http's keep-alive loop when it is upgraded.
//   - ReadTimeout and WriteTimeout stay unset on purpose: net/http applies
//     them as deadlines on the connection itself, and a hijacked WebSocket
//     keeps those deadlines, so they would cut every socket (and every
//     LongPoll hold) after that time whatever its traffic. A WebSocket's
//     liveness is the channel server's idle timeout (-idle-timeout, 90 s)
//     instead, and the API bounds reading a request body per request
//     (api.BodyReadTimeout, 10 s) and its size (api.MaxBodyBytes).
//   - MaxHeaderBytes (64 KiB) instead of net/http's 1 MiB.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       keepAliveTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

func run(args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if cfg.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(correlation.NewHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))

	ps, err := newPubSub(cfg.pubsub, logger)
	if err != nil {
		return err
	}
	defer ps.Close()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	// Browsers load the pages from this listener's address (and from the
	// names in -origins); only those origins and Landale's list may open
	// sockets or change state, whatever Host a request names.
	self := append(app.SelfOriginsFor(ln.Addr().String()), cfg.origins...)
	a, err := app.New(&app.Options{
		PubSub: ps, Logger: logger, Web: webFS(), SlowDelay: cfg.slow, Simulate: cfg.simulate,
		Demo: cfg.demo, DemoRate: cfg.demoRate, Environment: cfg.environment, IdleTimeout: cfg.idleTimeout,
		SelfOrigins: self,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Start(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	hs := newHTTPServer(a.Handler())
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "landale (pyre) listening on %s\n", base)
	fmt.Fprintf(stdout, "  overlay:   %s/overlay.html\n", base)
	fmt.Fprintf(stdout, "  dashboard: %s/dashboard.html\n", base)
	fmt.Fprintf(stdout, "  socket:    ws://%s/socket/websocket\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		_ = a.Shutdown(context.Background())
		return err
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	appErr := a.Shutdown(shutCtx)
	if err := hs.Shutdown(shutCtx); err != nil {
		return err
	}
	<-errc // Serve returned http.ErrServerClosed
	return appErr
}
