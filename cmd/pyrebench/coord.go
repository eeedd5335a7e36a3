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
	stallRcvBuf                    int
	maxQueueBytes                  int
	compression                    bool
	clientDeflate                  bool
	writeDelay                     time.Duration
	profileDir, jsonOut, logDir    string
	waitIdle                       float64
	waitIdleMax                    time.Duration
	verbose                        bool
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
	fs.StringVar(&o.topic, "topic", "room:bench", "topic to join")
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
	fs.StringVar(&o.clientCPUs, "client-cpus", "1", "with -pin: CPU list of the client processes")
	fs.IntVar(&o.rate, "rate", def.rate, "fanout/slow: broadcasts per second")
	fs.IntVar(&o.seconds, "seconds", def.seconds, "fanout/slow: publish window; rpc: loop duration")
	fs.IntVar(&o.size, "size", def.size, "fanout/slow: payload bytes")
	fs.IntVar(&o.stalled, "stalled", -1, "slow: clients that stop reading (default: -stalled-pct of -n)")
	fs.Float64Var(&o.stalledPct, "stalled-pct", 1, "slow: stalled clients in percent of -n when -stalled is not given")
	fs.IntVar(&o.stallRcvBuf, "stall-rcvbuf", 8192, "slow: SO_RCVBUF of the stalled clients' sockets (0: kernel default)")
	fs.IntVar(&o.maxQueueBytes, "max-queue-bytes", 0, "server's channel.Options.MaxQueueBytes (0: pyre's default, 1 MiB)")
	fs.DurationVar(&o.writeDelay, "write-delay", 0, "server's channel.Options.WriteDelay (0: write at once)")
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
	if o.clientDeflate && o.compression && (mode == "fanout" || mode == "slow") && o.size >= 512 {
		return nil, errors.New("-client-deflate cannot inflate: with -compression, -size must be below 512")
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

// startTarget starts a fresh bench server (or describes the -url one).
func (o *options) startTarget(tag string) (*target, error) {
	if o.url != "" {
		u, _ := url.Parse(o.url)
		t := &target{
			wsURL:   "ws://" + u.Host + strings.TrimSuffix(u.Path, "/") + "/websocket?vsn=2.0.0",
			control: "http://" + u.Host,
		}
		if o.serverPID > 0 {
			t.pid = strconv.Itoa(o.serverPID)
		}
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
	args := []string{"serve", "-addr", "127.0.0.1:0", "-topic", o.topic, "-max-queue-bytes", strconv.Itoa(o.maxQueueBytes)}
	if o.compression {
		args = append(args, "-compression")
	}
	if o.writeDelay > 0 {
		args = append(args, "-write-delay", o.writeDelay.String())
	}
	if o.verbose {
		args = append(args, "-v")
	}
	cpus := ""
	if o.pin {
		cpus = o.serverCPUs
	}
	srv, err := startChild("server", cpus, args, lf)
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
	return &target{
		srv: srv, pid: srv.pid(), logPath: logPath,
		wsURL:   "ws://" + addr + "/socket/websocket?vsn=2.0.0",
		control: "http://" + addr,
	}, nil
}

func (t *target) stop() {
	if t.srv != nil {
		t.srv.stop(syscall.SIGTERM, 10*time.Second)
	}
}

var httpc = &http.Client{Timeout: 30 * time.Second}

// mem reads the server's /debug/mem (after a GC when gc).
func (t *target) mem(gc bool) map[string]float64 {
	u := t.control + "/debug/mem"
	if gc {
		u += "?gc=1"
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

// clients are the worker processes of one run.
type clients struct {
	procs []*child
	ready []workerStat
}

// startClients starts the worker processes for n connections (stalled of
// them stop reading) and waits until every process reported "ready".
func (o *options) startClients(t *target, n, stalled int) (*clients, error) {
	procs := (n + o.perProc - 1) / o.perProc
	base := rand.IntN(253 * 200) // fresh source addresses each run: no TIME_WAIT from the last one
	cs := &clients{}
	cpus := ""
	if o.pin {
		cpus = o.clientCPUs
	}
	for p := range procs {
		cfg := workerConfig{
			ID: p, URL: t.wsURL, Topic: o.topic,
			N:               n/procs + b2i(p < n%procs),
			Stalled:         stalled/procs + b2i(p < stalled%procs),
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
		c, err := startChild(fmt.Sprintf("client %d", p), cpus, []string{"client", "-config", string(raw)}, os.Stderr)
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
	var lat, rtt hist.Snapshot
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
	}
	s.Lat, s.RTT = &lat, &rtt
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
