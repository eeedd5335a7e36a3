// Command centrifuge is the centrifuge anchor of pyre's benchmarks: a
// centrifuge node (github.com/centrifugal/centrifuge, the version in this
// module's go.mod) that speaks the bench contract pyrebench drives, so that
// pyre and centrifuge are measured by the same load client in one run.
//
//	GET  /connection/websocket                 centrifuge's WebSocket (client protocol v2, JSON)
//	POST /publish?channel=C&rate=R&seconds=S&size=B
//	     the paced publish loop of pyre's bench server (same schedule, same
//	     payload), each message through node.Publish
//	GET  /debug/mem[?gc=1][&channel=C]         memory, clients, subscribers of C, and with
//	     the Redis broker the broker counters (broker_published, broker_received,
//	     broker_subscribes)
//
// Every connection is granted a user id and every subscription is allowed.
// With -broker redis://host:port several anchors share centrifuge's Redis
// broker (a multi-node measurement); the default is the in-memory broker.
// It prints "LISTEN <addr>" once it accepts connections and serves until
// SIGINT/SIGTERM. It lives in its own module so that pyre's go.mod never
// requires centrifuge.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var c Config
	addr := flag.String("addr", "127.0.0.1:8001", "listen address (127.0.0.0/8 only; port 0 picks one)")
	flag.StringVar(&c.Broker, "broker", "memory", "memory, or redis://host:port for centrifuge's Redis broker")
	flag.StringVar(&c.RedisPrefix, "redis-prefix", "pyrebench-anchor", "key and channel prefix in Redis (the same on every node)")
	flag.BoolVar(&c.Tuned, "tuned", false, "centrifuge's memory-tuned WebSocket options (write-buffer pool, 1 KiB read buffer, commands off the read loop)")
	flag.BoolVar(&c.Pprof, "pprof", true, "mount net/http/pprof at /debug/pprof/")
	verbose := flag.Bool("v", false, "log centrifuge's errors to stderr")
	flag.Parse()
	if *verbose {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, c, func(a string) { fmt.Printf("LISTEN %s\n", a) }); err != nil {
		fmt.Fprintln(os.Stderr, "centrifuge anchor:", err)
		os.Exit(1)
	}
}

// errNotLoopback refuses listen addresses outside 127.0.0.0/8.
var errNotLoopback = errors.New("listen address must be in 127.0.0.0/8")

// run serves the anchor on addr until ctx ends.
func run(ctx context.Context, addr string, c Config, ready func(string)) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() || !ap.Addr().IsLoopback() {
		return fmt.Errorf("%w: %q", errNotLoopback, addr)
	}
	a, err := New(c)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = a.Shutdown(context.Background())
		return err
	}
	hs := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	ready(ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		_ = a.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	_ = a.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
