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
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fl.Args(), " "))
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
	a, err := app.New(&app.Options{
		PubSub: ps, Logger: logger, Web: webFS(), SlowDelay: cfg.slow, Simulate: cfg.simulate,
		Demo: cfg.demo, DemoRate: cfg.demoRate, Environment: cfg.environment, IdleTimeout: cfg.idleTimeout,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Start(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	hs := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
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
