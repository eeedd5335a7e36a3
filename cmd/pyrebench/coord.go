package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pyre-go/pyre/cmd/pyrebench/internal/hist"
)

// options are the flags of a scenario run.
type options struct {
	mode string
	args []string // as given, for the reproduce line

	n, reps                        int
	url                            string
	serverPID                      int
	topic                          string
	perProc, srcPerProc, dialConc  int
	connTimeout, connectTimeout    time.Duration
	settle, heartbeat, hold, drain time.Duration
	readBuf, maxFail               int
	clientIO                       string
	pin                            bool
	serverCPUs, clientCPUs         string
	rate, seconds, size            int
	stalled                        int
	stalledPct                     float64
	filterPct                      float64 // fanout: subscribers that join with filterJoinPayload, in percent of -n
	filterSet                      bool    // -filter-pct was given (even 0): the row has the filter columns
	stallRcvBuf                    int
	maxQueueBytes                  int
	compression                    bool
	clientDeflate                  bool
	writeDelay                     time.Duration
	maxWriteDelay                  time.Duration
	serverNoRing                   bool
	profileDir, jsonOut, logDir    string
	waitIdle                       float64
	waitIdleMax                    time.Duration
	verbose                        bool

	server      string        // pyre | centrifuge
	anchorBin   string        // the centrifuge anchor's binary
	pubsub      string        // memory | redis://… | nats://…
	nodes       int           // fanout: server processes sharing the pubsub
	clientPoll  time.Duration // workerConfig.Poll
	clientRing  bool          // !workerConfig.NoRing
	arrival     bool          // workerConfig.Arrival
	clientNice  int           // nice value of the client processes
	tag         string        // -json annotation
	pair        int           // -json annotation: index of an interleaved pair
	redisPrefix string        // centrifuge with Redis: shared by the nodes of one run
}

func parseOptions(mode string, args []string) (*options, error) {
	o := &options{mode: mode, args: args}
	fs := flag.NewFlagSet("pyrebench "+mode, flag.ContinueOnError)
	def := map[string]struct {
		n, seconds, rate, size int
		settle                 time.Duration
	}{
		"idle":   {19000, 0, 0, 0, 5 * time.Second},
		"fanout": {10000, 10, 10, 128, time.Second},
		"rpc":    {1000, 10, 0, 0, time.Second},
		"slow":   {1000, 20, 50, 8192, time.Second},
	}[mode]
	fs.IntVar(&o.n, "n", def.n, "connections (idle), subscribers (fanout, slow) or clients (rpc)")
	fs.IntVar(&o.reps, "reps", 1, "runs, each with a fresh server; a median row follows when > 1")
	fs.StringVar(&o.url, "url", "", "measure this server instead of starting one: its socket mount, e.g. ws://127.0.0.1:8003/socket (127.0.0.0/8 only; /websocket?vsn=2.0.0 is appended, /publish and /debug/mem are used on the same host)")
	fs.IntVar(&o.serverPID, "server-pid", 0, "with -url: the server's PID, for its RSS and CPU")
	fs.StringVar(&o.topic, "topic", "", "topic to join (default: room:bench for pyre, bench for centrifuge, whose channel names cannot hold a colon without a namespace)")
	fs.StringVar(&o.server, "server", "pyre", "server to start: pyre (this tool's \"serve\", the code of cmd/pyre-bench-server) or centrifuge (the anchor of bench/anchors/centrifuge, see -anchor); fanout and idle only for centrifuge")
	fs.StringVar(&o.anchorBin, "anchor", "", "the centrifuge anchor binary (default: centrifuge-anchor next to this executable; make bench-tools builds both)")
	fs.StringVar(&o.pubsub, "pubsub", "memory", "the servers' PubSub/broker: memory, redis://127.0.0.1:6379 or (pyre only) nats://127.0.0.1:4222")
	fs.IntVar(&o.nodes, "nodes", 1, "fanout: server processes (nodes) sharing -pubsub; subscribers are split evenly over them, /publish goes to node 0")
	fs.BoolVar(&o.arrival, "client-arrival", false, "epoll clients (Linux) also measure latency at the kernel's arrival stamp of each read (SO_TIMESTAMPNS): p50/p99 at arrival leave out the time data waited for the client to read it. Enabling receive stamps costs every loopback segment a clock read, charged to the sender")
	fs.BoolVar(&o.clientRing, "client-ring", true, "epoll clients (Linux) read the connections of one epoll_wait with one io_uring call instead of one read(2) each, where the kernel allows it (false: read(2), as before 2026-12-05)")
	fs.DurationVar(&o.clientPoll, "client-poll", 0, "epoll clients: 0 blocks in epoll_wait when idle; > 0 never blocks, sleeping this long after an empty poll (the server then never wakes a client thread; adds at most this much latency)")
	fs.IntVar(&o.clientNice, "client-nice", 0, "nice value of the client processes (e.g. 19 with -pin -client-cpus all: the clients get the other core and only what the server leaves of its own)")
	fs.StringVar(&o.tag, "tag", "", "label stored in every -json record (the comparison script's section)")
	fs.IntVar(&o.pair, "pair", 0, "index stored in every -json record: runs of different servers with the same tag, rate and pair were interleaved")
	fs.IntVar(&o.perProc, "per-proc", 9500, "connections per client process (each process: one fd per connection)")
	fs.IntVar(&o.srcPerProc, "src-per-proc", 8, "loopback source addresses per client process")
	fs.IntVar(&o.dialConc, "dial-concurrency", 200, "connections in their handshake at once, per client process")
	fs.DurationVar(&o.connTimeout, "conn-timeout", 15*time.Second, "bound on dial + upgrade + join of one connection")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 180*time.Second, "bound on the whole connect phase")
	fs.IntVar(&o.maxFail, "max-fail", 0, "client process stops dialing after this many failures (0: 1% of its connections + 20)")
	fs.DurationVar(&o.settle, "settle", def.settle, "wait after the last join before measuring")
	fs.DurationVar(&o.heartbeat, "heartbeat", 30*time.Second, "Phoenix heartbeat interval per connection (phoenix.js: 30s)")
	fs.DurationVar(&o.hold, "hold", 0, "idle: keep the connections this long after measuring (for pprof by hand)")
	fs.DurationVar(&o.drain, "drain", 20*time.Second, "fanout/slow: longest wait for deliveries after publishing ended")
	fs.IntVar(&o.readBuf, "read-buf", 4096, "client read buffer per connection, bytes")
	fs.StringVar(&o.clientIO, "client-io", "epoll", "how clients read joined connections: epoll (Linux: a few pollers, one read per readiness) or goroutine (one blocked goroutine per connection)")
	fs.BoolVar(&o.pin, "pin", false, "run the server under taskset -c <server-cpus> and the clients under taskset -c <client-cpus>")
	fs.StringVar(&o.serverCPUs, "server-cpus", "0", "with -pin: CPU list of the server")
	fs.StringVar(&o.clientCPUs, "client-cpus", "1", "with -pin: CPU list of the client processes and the coordinator, or \"all\": not pinned (the server stays pinned)")
	fs.IntVar(&o.rate, "rate", def.rate, "fanout/slow: broadcasts per second")
	fs.IntVar(&o.seconds, "seconds", def.seconds, "fanout/slow: publish window; rpc: loop duration")
	fs.IntVar(&o.size, "size", def.size, "fanout/slow: payload bytes")
	fs.IntVar(&o.stalled, "stalled", -1, "slow: clients that stop reading (default: -stalled-pct of -n)")
	fs.Float64Var(&o.stalledPct, "stalled-pct", 1, "slow: stalled clients in percent of -n when -stalled is not given")
	fs.Float64Var(&o.filterPct, "filter-pct", 0, `fanout: subscribers, in percent of -n, that join with the filter {"events":["msg"]} while the server sends every other broadcast as event "odd": they get half of the broadcasts, and the run expects that many (0: no filters, every broadcast is "msg"; pyre only; a -url server must run with -odd-event odd)`)
	fs.IntVar(&o.stallRcvBuf, "stall-rcvbuf", 8192, "slow: SO_RCVBUF of the stalled clients' sockets (0: kernel default)")
	fs.IntVar(&o.maxQueueBytes, "max-queue-bytes", 0, "server's channel.Options.MaxQueueBytes (0: pyre's default, 1 MiB)")
	fs.DurationVar(&o.writeDelay, "write-delay", 0, "server's channel.Options.WriteDelay (0: the adaptive delay)")
	fs.DurationVar(&o.maxWriteDelay, "max-write-delay", 0, "server's channel.Options.MaxWriteDelay (0: pyre's default, 40ms; negative: no adaptive delay)")
	fs.BoolVar(&o.serverNoRing, "server-disable-iouring", false, "server's channel.Options.DisableIOUring: one write(2) per connection instead of io_uring batches")
	fs.BoolVar(&o.compression, "compression", false, "server's channel.Options.Compression (with -client-deflate the clients negotiate it)")
	fs.BoolVar(&o.clientDeflate, "client-deflate", false, "clients offer permessage-deflate; they cannot inflate, so with -compression fanout and slow need -size below 512 (pyre compresses from 512 bytes)")
	fs.StringVar(&o.profileDir, "profile", "", "directory for pprof profiles of the server (idle: heap, goroutine; others: CPU over the publish window) and of each client process (CPU, whole run)")
	fs.StringVar(&o.jsonOut, "json", "", "append every run's raw result as a JSON line to this file")
	fs.StringVar(&o.logDir, "logdir", "", "directory for the server's stderr (default: a new temp dir)")
	fs.Float64Var(&o.waitIdle, "wait-idle", 0, "before each run, wait until the machine was at least this % idle over 3 s (shared machines; 0: do not wait)")
	fs.DurationVar(&o.waitIdleMax, "wait-idle-max", 15*time.Minute, "longest wait for -wait-idle; the run then starts anyway")
	fs.BoolVar(&o.verbose, "v", false, "progress on stderr, and the server's warnings in its log")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.filterSet = o.filterSet || f.Name == "filter-pct" })
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.n < 1 || o.n > 10_000_000:
		return nil, errors.New("-n must be 1..10000000")
	case o.reps < 1 || o.reps > 100:
		return nil, errors.New("-reps must be 1..100")
	case o.perProc < 1 || o.perProc > 60000:
		return nil, errors.New("-per-proc must be 1..60000")
	case o.srcPerProc < 1 || o.srcPerProc > 64:
		return nil, errors.New("-src-per-proc must be 1..64")
	case o.dialConc < 1 || o.dialConc > 10000:
		return nil, errors.New("-dial-concurrency must be 1..10000")
	case o.connTimeout <= 0 || o.connTimeout > 10*time.Minute, o.connectTimeout <= 0 || o.connectTimeout > time.Hour:
		return nil, errors.New("-conn-timeout and -connect-timeout must be positive and at most 10m / 1h")
	case o.settle < 0 || o.settle > 10*time.Minute, o.hold < 0 || o.hold > time.Hour, o.drain < 0 || o.drain > 10*time.Minute:
		return nil, errors.New("-settle, -hold or -drain out of range")
	case o.heartbeat < 0 || (o.heartbeat > 0 && o.heartbeat < 100*time.Millisecond):
		return nil, errors.New("-heartbeat must be 0 (off) or at least 100ms")
	case o.readBuf < 256 || o.readBuf > 1<<20:
		return nil, errors.New("-read-buf must be 256..1048576")
	case o.waitIdle < 0 || o.waitIdle > 100 || o.waitIdleMax < 0 || o.waitIdleMax > 24*time.Hour:
		return nil, errors.New("-wait-idle must be 0..100 and -wait-idle-max 0..24h")
	case o.clientIO != "epoll" && o.clientIO != "goroutine":
		return nil, errors.New("-client-io must be epoll or goroutine")
	}
	if mode == "fanout" || mode == "slow" {
		if o.rate < 1 || o.rate > 100_000 || o.seconds < 1 || o.seconds > 600 || o.size < 32 || o.size > 1<<20 {
			return nil, errors.New("-rate 1..100000, -seconds 1..600 and -size 32..1048576 (the /publish contract)")
		}
	}
	switch {
	case o.filterPct < 0 || o.filterPct > 100:
		return nil, errors.New("-filter-pct must be 0..100")
	case o.filterPct > 0 && mode != "fanout":
		return nil, errors.New("-filter-pct: fanout only")
	case o.filterPct > 0 && o.server != "pyre":
		return nil, errors.New("-filter-pct: pyre only (the anchor has no client filters)")
	}
	if o.clientDeflate && o.compression && (mode == "fanout" || mode == "slow") && o.size >= 512 {
		return nil, errors.New("-client-deflate cannot inflate: with -compression, -size must be below 512")
	}
	switch {
	case o.server != "pyre" && o.server != "centrifuge":
		return nil, errors.New("-server must be pyre or centrifuge")
	case o.server == "centrifuge" && mode != "idle" && mode != "fanout":
		return nil, errors.New("-server centrifuge: only idle and fanout")
	case o.server == "centrifuge" && o.pubsub != "memory" && !strings.HasPrefix(o.pubsub, "redis://"):
		return nil, errors.New("-server centrifuge: -pubsub must be memory or redis://host:port")
	case o.pubsub != "memory" && !strings.HasPrefix(o.pubsub, "redis://") && !strings.HasPrefix(o.pubsub, "nats://"):
		return nil, errors.New("-pubsub must be memory, redis://host:port or nats://host:port")
	case o.nodes < 1 || o.nodes > 8:
		return nil, errors.New("-nodes must be 1..8")
	case o.nodes > 1 && (mode != "fanout" || o.pubsub == "memory" || o.url != ""):
		return nil, errors.New("-nodes > 1: fanout only, with a broker in -pubsub, without -url")
	case o.clientPoll < 0 || o.clientPoll > time.Second:
		return nil, errors.New("-client-poll must be 0..1s")
	case o.arrival && (o.clientIO != "epoll" || runtime.GOOS != "linux"):
		return nil, errors.New("-client-arrival needs -client-io epoll (Linux)")
	case o.clientNice < -20 || o.clientNice > 19:
		return nil, errors.New("-client-nice must be -20..19")
	}
	if o.pubsub != "memory" {
		u, err := url.Parse(o.pubsub)
		if err != nil {
			return nil, fmt.Errorf("-pubsub %q: %v", o.pubsub, err)
		}
		if err := checkLoopbackHost(u.Hostname()); err != nil {
			return nil, err
		}
	}
	if o.topic == "" {
		o.topic = "room:bench"
		if o.server == "centrifuge" {
			o.topic = "bench"
		}
	}
	if o.server == "centrifuge" && o.url == "" && o.anchorBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.anchorBin = filepath.Join(filepath.Dir(exe), "centrifuge-anchor")
	}
	if mode == "rpc" && (o.seconds < 1 || o.seconds > 600) {
		return nil, errors.New("-seconds must be 1..600")
	}
	if mode == "slow" {
		if o.stalled < 0 {
			o.stalled = int(float64(o.n)*o.stalledPct/100 + 0.5)
		}
		if o.stalled < 1 || o.stalled >= o.n {
			return nil, errors.New("slow: need 1 <= stalled < n")
		}
	} else {
		o.stalled = 0
	}
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "http") {
			return nil, fmt.Errorf("-url %q: want ws://127.0.0.x:port/mount", o.url)
		}
		if err := checkLoopbackHost(u.Hostname()); err != nil {
			return nil, err
		}
	}
	if o.pin && runtime.NumCPU() < 2 {
		return nil, errors.New("-pin needs at least 2 CPUs")
	}
	return o, nil
}

// errNotLoopback refuses targets outside 127.0.0.0/8.
var errNotLoopback = errors.New("only 127.0.0.0/8 (or localhost) may be targeted")

func checkLoopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() || !a.IsLoopback() {
		return fmt.Errorf("%w, got %q", errNotLoopback, host)
	}
	return nil
}

// srcAddr returns the i-th client source address: 127.0.x.y with y in
// 2..254, so 127.0.0.1 (the server) and .0/.255 are never used.
func srcAddr(i int) string {
	i %= 253 * 256
	return fmt.Sprintf("127.0.%d.%d", i/253, i%253+2)
}

// target is the server under test.
type target struct {
	topic   string
	srv     *child // nil with -url
	pid     string // "" when unknown
	wsURL   string // what the workers dial
	control string // http://host:port
	logPath string
}

func (o *options) logf(format string, a ...any) {
	if o.verbose {
		fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
}

// proto is the client protocol of the server under test.
func (o *options) proto() string {
	if o.server == "centrifuge" {
		return protoCentrifuge
	}
	return protoPhoenix
}

// startTargets starts o.nodes fresh servers (or describes the -url one);
// on an error the ones started are stopped.
func (o *options) startTargets(tag string) ([]*target, error) {
	if o.server == "centrifuge" && strings.HasPrefix(o.pubsub, "redis://") {
		o.redisPrefix = fmt.Sprintf("pyrebench%d", rand.Int64())
	}
	var ts []*target
	for i := range o.nodes {
		name := tag
		if o.nodes > 1 {
			name = fmt.Sprintf("%s-node%d", tag, i)
		}
		t, err := o.startTarget(name)
		if err != nil {
			stopTargets(ts)
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

func stopTargets(ts []*target) {
	for _, t := range ts {
		t.stop()
	}
}

// startTarget starts a fresh bench server (or describes the -url one).
func (o *options) startTarget(tag string) (*target, error) {
	if o.url != "" {
		u, _ := url.Parse(o.url)
		t := &target{
			wsURL:   "ws://" + u.Host + strings.TrimSuffix(u.Path, "/") + "/websocket?vsn=2.0.0",
			control: "http://" + u.Host,
		}
		if o.server == "centrifuge" {
			t.wsURL = "ws://" + u.Host + u.Path
		}
		if o.serverPID > 0 {
			t.pid = strconv.Itoa(o.serverPID)
		}
		t.topic = o.topic
		return t, nil
	}
	if o.logDir == "" {
		d, err := os.MkdirTemp("", "pyrebench-")
		if err != nil {
			return nil, err
		}
		o.logDir = d
	}
	logPath := filepath.Join(o.logDir, tag+".server.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child has its own descriptor
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "-addr", "127.0.0.1:0", "-topic", o.topic, "-max-queue-bytes", strconv.Itoa(o.maxQueueBytes), "-pubsub", o.pubsub}
	if o.compression {
		args = append(args, "-compression")
	}
	if o.serverNoRing {
		args = append(args, "-disable-iouring")
	}
	if o.writeDelay > 0 {
		args = append(args, "-write-delay", o.writeDelay.String())
	}
	if o.maxWriteDelay != 0 {
		args = append(args, "-max-write-delay", o.maxWriteDelay.String())
	}
	if o.filterPct > 0 {
		args = append(args, "-odd-event", oddEvent)
	}
	if o.server == "centrifuge" {
		exe = o.anchorBin
		args = []string{"-addr", "127.0.0.1:0", "-broker", o.pubsub}
		if o.redisPrefix != "" {
			args = append(args, "-redis-prefix", o.redisPrefix)
		}
	}
	if o.verbose {
		args = append(args, "-v")
	}
	cpus := ""
	if o.pin {
		cpus = o.serverCPUs
	}
	srv, err := startChildExe("server", exe, cpus, 0, args, lf)
	if err != nil {
		return nil, err
	}
	line, err := srv.next(15 * time.Second)
	addr, ok := strings.CutPrefix(string(line), "LISTEN ")
	if err != nil || !ok {
		srv.stop(syscall.SIGKILL, time.Second)
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("server did not start (%v): %s", err, b)
	}
	t := &target{
		topic: o.topic,
		srv:   srv, pid: srv.pid(), logPath: logPath,
		wsURL:   "ws://" + addr + "/socket/websocket?vsn=2.0.0",
		control: "http://" + addr,
	}
	if o.server == "centrifuge" {
		t.wsURL = "ws://" + addr + "/connection/websocket"
	}
	return t, nil
}

func (t *target) stop() {
	if t.srv != nil {
		t.srv.stop(syscall.SIGTERM, 10*time.Second)
	}
}

var httpc = &http.Client{Timeout: 30 * time.Second}

// mem reads the server's /debug/mem (after a GC when gc).
func (t *target) mem(gc bool) map[string]float64 {
	u := t.control + "/debug/mem?channel=" + url.QueryEscape(t.topic)
	if gc {
		u += "&gc=1"
	}
	out := map[string]float64{}
	resp, err := httpc.Get(u)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	}
	return out
}

type publishResult struct {
	Published int     `json:"published"`
	Skipped   int     `json:"skipped"`
	Errors    int     `json:"errors"`
	FirstErr  string  `json:"first_error"`
	ElapsedS  float64 `json:"elapsed_s"`
	MaxLagMs  float64 `json:"max_lag_ms"`
}

// publish runs the server's paced publish loop and waits for its answer.
func (t *target) publish(ctx context.Context, topic string, rate, seconds, size int) (publishResult, error) {
	var res publishResult
	q := url.Values{}
	q.Set("channel", topic)
	q.Set("rate", strconv.Itoa(rate))
	q.Set("seconds", strconv.Itoa(seconds))
	q.Set("size", strconv.Itoa(size))
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.control+"/publish?"+q.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("publish: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return res, json.Unmarshal(body, &res)
}

// saveProfile stores a pprof endpoint's answer in the -profile directory.
func (o *options) saveProfile(ctx context.Context, t *target, path, name string) {
	if o.profileDir == "" {
		return
	}
	if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.control+path, nil)
	resp, err := (&http.Client{Timeout: 11 * time.Minute}).Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pyrebench: profile:", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "pyrebench: profile:", resp.Status)
		return
	}
	f, err := os.Create(filepath.Join(o.profileDir, name))
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

// clients are the worker processes of one run; process p is connected to
// node p % nodes.
type clients struct {
	procs []*child
	ready []workerStat
	nodes int
}

// byNode sums the workers' answers per node.
func (cs *clients) byNode(sts []workerStat) []workerStat {
	groups := make([][]workerStat, max(cs.nodes, 1))
	for p, st := range sts {
		groups[p%len(groups)] = append(groups[p%len(groups)], st)
	}
	out := make([]workerStat, len(groups))
	for i, g := range groups {
		out[i] = sumStats(g)
	}
	return out
}

// filtering returns how many of n subscribers join with a filter: o.filterPct
// percent, rounded.
func (o *options) filtering(n int) int {
	return int(float64(n)*o.filterPct/100 + 0.5)
}

// startClients starts the worker processes for n connections (stalled of
// them stop reading, o.filtering(n) join with filterJoin) and waits until every process reported "ready". With
// several targets (nodes) the processes are spread evenly over them:
// process p connects to ts[p % len(ts)].
func (o *options) startClients(ts []*target, n, stalled int) (*clients, error) {
	procs := (n + o.perProc - 1) / o.perProc
	procs = (procs + len(ts) - 1) / len(ts) * len(ts)
	filtered := o.filtering(n)
	base := rand.IntN(253 * 200) // fresh source addresses each run: no TIME_WAIT from the last one
	cs := &clients{nodes: len(ts)}
	cpus := ""
	if o.pin && o.clientCPUs != "all" {
		cpus = o.clientCPUs
	}
	for p := range procs {
		cfg := workerConfig{
			ID: p, URL: ts[p%len(ts)].wsURL, Topic: o.topic, Proto: o.proto(), Poll: o.clientPoll, Arrival: o.arrival, NoRing: !o.clientRing,
			N:               n/procs + b2i(p < n%procs),
			Stalled:         stalled/procs + b2i(p < stalled%procs),
			Filtered:        filtered/procs + b2i(p < filtered%procs),
			DialConcurrency: o.dialConc,
			ConnTimeout:     o.connTimeout, ConnectTimeout: o.connectTimeout,
			Heartbeat: o.heartbeat, ReadBuf: o.readBuf, StallRcvBuf: o.stallRcvBuf,
			MaxFail: o.maxFail, IO: o.clientIO, Deflate: o.clientDeflate,
		}
		if o.profileDir != "" && o.mode != "idle" {
			_ = os.MkdirAll(o.profileDir, 0o755)
			cfg.CPUProfile = filepath.Join(o.profileDir, fmt.Sprintf("%s-client%d-stalled%d-%d-cpu.pb.gz", o.mode, p, stalled, time.Now().Unix()))
		}
		if cfg.MaxFail == 0 {
			cfg.MaxFail = cfg.N/100 + 20
		}
		for k := range o.srcPerProc {
			cfg.Src = append(cfg.Src, srcAddr(base+p*o.srcPerProc+k))
		}
		raw, _ := json.Marshal(cfg)
		exe, err := os.Executable()
		if err != nil {
			cs.stop()
			return nil, err
		}
		c, err := startChildExe(fmt.Sprintf("client %d", p), exe, cpus, o.clientNice, []string{"client", "-config", string(raw)}, os.Stderr)
		if err != nil {
			cs.stop()
			return nil, err
		}
		cs.procs = append(cs.procs, c)
	}
	for _, c := range cs.procs {
		st, err := c.receive(o.connectTimeout + 60*time.Second)
		if err != nil {
			cs.stop()
			return nil, err
		}
		cs.ready = append(cs.ready, st)
	}
	return cs, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// all sends cmd to every worker and collects the answers.
func (cs *clients) all(cmd command, timeout time.Duration) ([]workerStat, error) {
	for _, c := range cs.procs {
		if err := c.send(cmd); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	out := make([]workerStat, 0, len(cs.procs))
	for _, c := range cs.procs {
		st, err := c.receive(timeout)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// cpu returns the user+system CPU seconds of all worker processes.
func (cs *clients) cpu() float64 {
	var sum float64
	for _, c := range cs.procs {
		u, s := procCPU(c.pid())
		if u >= 0 {
			sum += u + s
		}
	}
	return sum
}

func (cs *clients) stop() {
	for _, c := range cs.procs {
		_ = c.send(command{Cmd: "quit"})
	}
	for _, c := range cs.procs {
		c.stop(0, 30*time.Second)
	}
}

// sumStats adds up the workers' answers; histograms are merged.
func sumStats(sts []workerStat) workerStat {
	var s workerStat
	var lat, rtt, arr hist.Snapshot
	for _, x := range sts {
		s.Ready += x.Ready
		s.Failed += x.Failed
		s.NotTried += x.NotTried
		s.Dropped += x.Dropped
		s.ConnectS = max(s.ConnectS, x.ConnectS)
		s.Delivered += x.Delivered
		s.LastNs = max(s.LastNs, x.LastNs)
		s.RPCDone += x.RPCDone
		s.RPCErrors += x.RPCErrors
		s.RPCInFlight += x.RPCInFlight
		s.HBSent += x.HBSent
		s.HBMissed += x.HBMissed
		s.ChanEvents += x.ChanEvents
		s.Other += x.Other
		s.StalledLive += x.StalledLive
		s.ReadyFiltered += x.ReadyFiltered
		s.FilterLeaks += x.FilterLeaks
		s.Drained += x.Drained
		s.CPUUserS += x.CPUUserS
		s.CPUSysS += x.CPUSysS
		s.RSSKB += x.RSSKB
		s.Errors = addCounts(s.Errors, x.Errors)
		s.Drops = addCounts(s.Drops, x.Drops)
		s.StalledEnds = addCounts(s.StalledEnds, x.StalledEnds)
		if s.FirstErr == "" {
			s.FirstErr = x.FirstErr
		}
		if x.Lat != nil {
			lat = lat.Merge(*x.Lat)
		}
		if x.RTT != nil {
			rtt = rtt.Merge(*x.RTT)
		}
		if x.LatArr != nil {
			arr = arr.Merge(*x.LatArr)
		}
	}
	s.Lat, s.RTT = &lat, &rtt
	if arr.Total > 0 {
		s.LatArr = &arr
	}
	return s
}

func addCounts(dst, src map[string]int64) map[string]int64 {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string]int64{}
	}
	for k, v := range src {
		dst[k] += v
	}
	return dst
}

// countsString renders {"close 3008": 20} as "close 3008 ×20".
func countsString(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitForIdle blocks until the whole machine was at least o.waitIdle %
// idle over a 3 s sample, or o.waitIdleMax passed. It returns the idle %
// of the last sample (NaN when /proc/stat is unreadable).
func (o *options) waitForIdle(ctx context.Context) (float64, error) {
	idle := math.NaN()
	deadline := time.Now().Add(o.waitIdleMax)
	for {
		b0, t0 := machineCPU()
		if err := sleepCtx(ctx, 3*time.Second); err != nil {
			return idle, err
		}
		b1, t1 := machineCPU()
		if b0 < 0 || t1 <= t0 {
			return idle, nil
		}
		idle = 100 * (1 - (b1-b0)/(t1-t0))
		if o.waitIdle == 0 || idle >= o.waitIdle || time.Now().After(deadline) {
			return idle, nil
		}
		o.logf("machine %.0f%% idle, waiting for %.0f%%", idle, o.waitIdle)
	}
}
