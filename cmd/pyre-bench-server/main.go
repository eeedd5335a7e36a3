// Command pyre-bench-server is the pyre server of the benchmarks: a trivial
// room:* channel at /socket plus the control endpoints that the anchor
// harness (an external tool that runs centrifuge v0.40.1 and a naive
// coder/websocket hub side by side) expects of each server it measures
// (POST /publish, GET /debug/mem, /debug/pprof/). It
// serves until SIGINT/SIGTERM and prints "LISTEN <addr>" on stdout once it
// accepts connections. See package benchserver for the endpoints.
//
//	pyre-bench-server -addr 127.0.0.1:8003
//	pyre-bench-server -addr 127.0.0.1:8004 -pubsub redis://127.0.0.1:6379   # one node of several
//
// The harness runs it as its "phoenix" server, given the first command line
// (PHOENIX_CMD); BENCHMARKS.md has the results.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/pyre-go/pyre/cmd/pyre-bench-server/benchserver"
)

func main() {
	var c benchserver.Config
	benchserver.RegisterFlags(flag.CommandLine, &c)
	verbose := flag.Bool("v", false, "log pyre's and net/http's warnings to stderr")
	flag.Parse()
	if *verbose {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := benchserver.Run(ctx, c, func(addr string) { fmt.Printf("LISTEN %s\n", addr) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "pyre-bench-server:", err)
		os.Exit(1)
	}
}
