// Command pyrebench measures a pyre server the way the anchor harness (an
// external tool that runs centrifuge v0.40.1 and a naive coder/websocket hub
// side by side) measures its servers: with its own
// lean Phoenix V2 WebSocket client spread over several client processes and
// loopback source addresses. Each scenario prints one markdown table row per
// run, a median row, and the command line that reproduces it.
//
//	pyrebench idle   [flags]  N joined idle connections: server RSS, Go heap and
//	                          kernel memory per connection, connect rate, and
//	                          the limit that stopped the run
//	pyrebench fanout [flags]  N subscribers of one topic, R broadcasts/s:
//	                          deliveries/s, latency p50/p99/p99.9, server CPU
//	                          seconds per million deliveries; with
//	                          -filter-pct P, P % of them filter out every
//	                          other broadcast
//	pyrebench rpc    [flags]  N clients in a push/reply loop: round trips/s and
//	                          latency percentiles
//	pyrebench report FILE...  markdown tables of interleaved runs (-json with
//	                          -tag and -pair): medians, min–max spreads, and
//	                          pyre/centrifuge ratios computed per pair
//	pyrebench slow   [flags]  fanout with K clients that stop reading, next to
//	                          the same run without them: fast clients'
//	                          throughput and latency, server memory, and how
//	                          the stalled clients were closed
//
// Unless -url is given, pyrebench starts the bench server itself (the code of
// cmd/pyre-bench-server, run as "pyrebench serve") on a free loopback port, a
// fresh one for every run. With -server centrifuge it starts the centrifuge
// anchor (bench/anchors/centrifuge, built as bin/centrifuge-anchor) instead
// and its clients speak centrifuge's JSON protocol, so that both servers are
// measured by the same client; -nodes and -pubsub start several servers on
// one Redis or NATS. bench/compare.sh runs the two servers interleaved and
// "pyrebench report" summarises the runs. Only 127.0.0.0/8 is ever dialed. Every phase is
// bounded in time. Run "pyrebench <scenario> -h" for the flags.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/pyre-go/pyre/cmd/pyre-bench-server/benchserver"
)

const usage = `usage: pyrebench <idle|fanout|rpc|slow> [flags]
       pyrebench serve [pyre-bench-server flags]
       pyrebench report [-p99-max ms] results.jsonl...   (markdown of interleaved runs)

Run "pyrebench <scenario> -h" for a scenario's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch mode := os.Args[1]; mode {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err = serve(ctx, os.Args[2:])
		stop()
	case "client":
		err = client(os.Args[2:])
	case "report":
		err = report(os.Args[2:], os.Stdout)
	case "idle", "fanout", "rpc", "slow":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err = runScenario(ctx, mode, os.Args[2:])
		stop()
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pyrebench:", err)
		os.Exit(1)
	}
}

// serve runs the bench server (the child process pyrebench starts).
func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pyrebench serve", flag.ExitOnError)
	var c benchserver.Config
	benchserver.RegisterFlags(fs, &c)
	verbose := fs.Bool("v", false, "log warnings to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *verbose {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return benchserver.Run(ctx, c, func(addr string) { fmt.Printf("LISTEN %s\n", addr) })
}

// client runs one worker process; the coordinator talks to it on
// stdin/stdout.
func client(args []string) error {
	fs := flag.NewFlagSet("pyrebench client", flag.ExitOnError)
	raw := fs.String("config", "", "worker configuration (JSON, written by the coordinator)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg workerConfig
	if err := json.Unmarshal([]byte(*raw), &cfg); err != nil {
		return fmt.Errorf("client: bad -config: %w", err)
	}
	// SIGINT/SIGTERM are ignored here: the coordinator ends a worker by
	// closing its stdin (or by SIGKILL as a last resort).
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM)
	return runWorker(cfg, os.Stdin, os.Stdout)
}
