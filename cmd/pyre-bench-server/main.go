// Command pyre-bench-server is the pyre server of the benchmarks: a trivial
// room:* channel at /socket plus the control endpoints of the shared
// benchmark contract (POST /publish, GET /debug/mem, /debug/pprof/). It
// serves until SIGINT/SIGTERM and prints "LISTEN <addr>" on stdout once it
// accepts connections. See package benchserver for the endpoints.
//
//	pyre-bench-server -addr 127.0.0.1:8003
//	PHOENIX_CMD="$PWD/bin/pyre-bench-server -addr 127.0.0.1:8003" \
//	  SERVERS="centrifuge naive phoenix" ../shared/bench/run.sh
//	pyre-bench-server -addr 127.0.0.1:8004 -pubsub redis://127.0.0.1:6379   # one node of several
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
