package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

var tables = map[string]table{
	"idle": {
		{"n", "N asked", 0}, {"held", "held", 0}, {"failed", "failed", 0}, {"procs", "client procs", 0},
		{"connect_s", "connect s", 2}, {"conn_per_s", "conn/s", 0},
		{"rss0_mb", "server RSS before MB", 1}, {"rss1_mb", "after MB", 1},
		{"rss_kb_per_conn", "**RSS KB/conn**", 2}, {"heap_kb_per_conn", "Go heap KB/conn", 2},
		{"stack_kb_per_conn", "stack KB/conn", 2}, {"goroutines_per_conn", "goroutines/conn", 2},
		{"slab_kb_per_conn", "kernel slab KB/conn (both ends)", 2}, {"tcp_mem_kb", "TCP buffers KB", 0},
		{"client_rss_kb_per_conn", "client RSS KB/conn", 1}, {"server_fds", "server fds", 0},
		{"stopped_by", "what stopped it", -1},
	},
	"fanout": {
		{"subs", "subs", 0}, {"rate", "msg/s asked", 0}, {"pub_rate", "msg/s published", 1},
		{"deliveries_per_s", "**deliveries/s**", 0},
		{"p50_ms", "p50 ms", 1}, {"p99_ms", "p99 ms", 1}, {"p999_ms", "p99.9 ms", 1}, {"max_ms", "max ms", 1},
		{"lost", "lost", 0}, {"dropped", "dropped", 0},
		{"server_cpu_pct", "server CPU %", 0}, {"server_sys_pct", "of which sys %", 0},
		{"client_cpu_pct", "client CPU %", 0}, {"machine_cpu_pct", "machine CPU % (all cores)", 0},
		{"others_cpu_pct", "other processes CPU %", 0},
		{"server_cpu_s_per_m", "**server CPU s/M deliv**", 2}, {"frames_per_write", "frames/write", 2},
		{"write_delay_ms", "mean write delay ms", 1},
		{"server_rss_mb", "server RSS MB", 0},
		{"stop", "stop", -1},
	},
	"fanout-filter": {
		{"subs", "subs", 0}, {"filtering", "of which filter", 0}, {"rate", "msg/s asked", 0},
		{"pub_rate", "msg/s published", 1},
		{"expected", "deliveries expected", 0}, {"deliveries_per_s", "**deliveries/s**", 0},
		{"p50_ms", "p50 ms", 1}, {"p99_ms", "p99 ms", 1}, {"p999_ms", "p99.9 ms", 1}, {"max_ms", "max ms", 1},
		{"lost", "lost", 0}, {"dropped", "dropped", 0},
		{"server_cpu_pct", "server CPU %", 0}, {"client_cpu_pct", "client CPU %", 0},
		{"others_cpu_pct", "other processes CPU %", 0},
		{"server_cpu_s_per_m", "**server CPU s/M deliv**", 2}, {"frames_per_write", "frames/write", 2},
		{"server_filtered", "server Stats.Filtered", 0}, {"filter_leaks", "filter leaks", 0},
		{"stop", "stop", -1},
	},
	"fanout-nodes": {
		{"subs", "subs", 0}, {"rate", "msg/s asked", 0}, {"pub_rate", "msg/s published", 1},
		{"deliveries_per_s", "**deliveries/s**", 0},
		{"p50_ms", "p50 ms", 1}, {"p99_ms", "p99 ms", 1}, {"max_ms", "max ms", 1},
		{"lost", "lost", 0},
		{"node_cpu_pct_max", "busiest node CPU %", 0}, {"client_cpu_pct", "client CPU %", 0},
		{"machine_cpu_pct", "machine CPU % (all cores)", 0},
		{"node_cpu_s_per_m", "**node CPU s/M deliv**", 2}, {"node_cpu_s_per_m_max", "(worst node)", 2},
		{"broker_cpu_pct", "broker CPU %", 0}, {"broker_cpu_s_per_m", "broker CPU s/M deliv", 2},
		{"broker_pub_per_msg", "broker publishes per broadcast", 2},
		{"broker_recv_per_msg_node", "broker messages per broadcast and node", 2},
		{"stop", "stop", -1},
	},
	"rpc": {
		{"clients", "clients", 0}, {"seconds", "s", 0}, {"round_trips", "round trips", 0},
		{"rt_per_s", "**round trips/s**", 0},
		{"p50_ms", "p50 ms", 2}, {"p99_ms", "p99 ms", 2}, {"p999_ms", "p99.9 ms", 2}, {"max_ms", "max ms", 2},
		{"errors", "errors", 0}, {"server_cpu_pct", "server CPU %", 0}, {"client_cpu_pct", "client CPU %", 0},
		{"server_cpu_s_per_m", "server CPU s/M rt", 2}, {"server_rss_mb", "server RSS MB", 0},
	},
	"slow": {
		{"stalled", "stalled", 0}, {"subs", "fast subs", 0}, {"pub_rate", "msg/s published", 1},
		{"deliveries_per_s", "**fast deliveries/s**", 0}, {"vs_baseline_pct", "vs no-stall %", 1},
		{"p50_ms", "p50 ms", 1}, {"p99_ms", "p99 ms", 1}, {"p999_ms", "p99.9 ms", 1}, {"lost", "lost (fast)", 0},
		{"dropped", "fast clients closed", 0},
		{"rss_peak_mb", "server RSS peak MB", 1}, {"heap_peak_mb", "heap in use peak MB", 1},
		{"queue_bound_mb", "stalled × queue limit MB", 1},
		{"slow_closed", "server slow-closed", 0}, {"close_first_s", "closed after s (first)", 1},
		{"close_last_s", "(last)", 1}, {"stalled_ends", "stalled clients saw", -1},
		{"server_cpu_s_per_m", "server CPU s/M deliv", 2}, {"others_cpu_pct", "other processes CPU %", 0},
	},
}

func runScenario(ctx context.Context, mode string, args []string) error {
	o, err := parseOptions(mode, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.pin && o.clientCPUs != "all" {
		// The coordinator (this process) polls the clients and the server
		// during a run; on the clients' CPUs it takes nothing from the
		// server's.
		if err := pinSelf(o.clientCPUs); err != nil {
			return err
		}
	}
	tbl := tables[mode]
	if mode == "fanout" && o.nodes > 1 {
		tbl = tables["fanout-nodes"]
	} else if mode == "fanout" && o.filterSet {
		tbl = tables["fanout-filter"]
	}
	if mode == "fanout" && o.arrival {
		// Latency at the kernel's arrival stamp, next to p99 at the read.
		t := make(table, 0, len(tbl)+2)
		for _, c := range tbl {
			t = append(t, c)
			if c.key == "p99_ms" {
				t = append(t, column{"p50_arrival_ms", "p50 at arrival ms", 1}, column{"p99_arrival_ms", "p99 at arrival ms", 1})
			}
		}
		tbl = t
	}
	fmt.Println(machineLine(o))
	fmt.Print(tbl.header())
	var rows, baseRows []map[string]any
	for rep := 1; rep <= o.reps; rep++ {
		var out []map[string]any
		idleBefore := math.NaN()
		if o.waitIdle > 0 {
			v, err := o.waitForIdle(ctx)
			if err != nil {
				return err
			}
			idleBefore = v
		}
		switch mode {
		case "idle":
			r, err := o.idleOnce(ctx, rep)
			if err != nil {
				return fmt.Errorf("idle run %d: %w", rep, err)
			}
			out = append(out, r)
		case "fanout":
			r, err := o.fanoutOnce(ctx, rep, 0)
			if err != nil {
				return fmt.Errorf("fanout run %d: %w", rep, err)
			}
			out = append(out, r)
		case "rpc":
			r, err := o.rpcOnce(ctx, rep)
			if err != nil {
				return fmt.Errorf("rpc run %d: %w", rep, err)
			}
			out = append(out, r)
		case "slow":
			b, err := o.fanoutOnce(ctx, rep, 0)
			if err != nil {
				return fmt.Errorf("slow run %d (no stall): %w", rep, err)
			}
			s, err := o.fanoutOnce(ctx, rep, o.stalled)
			if err != nil {
				return fmt.Errorf("slow run %d (stalled): %w", rep, err)
			}
			s["vs_baseline_pct"] = 100 * div(s["deliveries_per_s"].(float64), b["deliveries_per_s"].(float64))
			b["label"], s["label"] = fmt.Sprintf("r%d no stall", rep), fmt.Sprintf("r%d stalled", rep)
			baseRows = append(baseRows, b)
			out = append(out, b, s)
		}
		for _, r := range out {
			r["machine_idle_before_pct"] = idleBefore
			label, _ := r["label"].(string)
			if label == "" {
				label = "r" + strconv.Itoa(rep)
			}
			fmt.Print(tbl.row(label, r))
			if mode != "slow" || r["stalled"].(float64) > 0 {
				rows = append(rows, r)
			}
			if err := o.appendJSON(rep, r); err != nil {
				return err
			}
		}
	}
	if o.reps > 1 {
		if mode == "slow" {
			fmt.Print(tbl.row(fmt.Sprintf("**median of %d, no stall**", o.reps), medianRow(baseRows)))
			fmt.Print(tbl.row(fmt.Sprintf("**median of %d, stalled**", o.reps), medianRow(rows)))
		} else {
			fmt.Print(tbl.row(fmt.Sprintf("**median of %d**", o.reps), medianRow(rows)))
		}
	}
	fmt.Printf("\ncommand: pyrebench %s %s\n", mode, shellQuote(o.args))
	if o.logDir != "" {
		fmt.Printf("server logs: %s\n", o.logDir)
	}
	return nil
}

func (o *options) appendJSON(rep int, r map[string]any) error {
	if o.jsonOut == "" {
		return nil
	}
	f, err := os.OpenFile(o.jsonOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	rec := map[string]any{
		"scenario": o.mode, "rep": rep, "args": o.args, "time": time.Now().Format(time.RFC3339),
		"server": o.server, "tag": o.tag, "pair": o.pair, "nodes": o.nodes, "pubsub": o.pubsub,
		"placement": o.placement(), "client_poll_ms": float64(o.clientPoll) / 1e6,
	}
	for k, v := range r {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			continue
		}
		rec[k] = v
	}
	return json.NewEncoder(f).Encode(rec)
}

func rssKB(pid string) float64 {
	if pid == "" {
		return math.NaN()
	}
	return num(procStatusKB(pid, "VmRSS"))
}

func serverCPU(pid string) (user, sys float64) {
	if pid == "" {
		return math.NaN(), math.NaN()
	}
	u, s := procCPU(pid)
	return num(u), num(s)
}

// idleOnce holds n joined connections and measures the server's memory.
func (o *options) idleOnce(ctx context.Context, rep int) (map[string]any, error) {
	t, err := o.startTarget(fmt.Sprintf("idle-r%d", rep))
	if err != nil {
		return nil, err
	}
	defer t.stop()
	if err := sleepCtx(ctx, time.Second); err != nil {
		return nil, err
	}
	rss0, mem0 := rssKB(t.pid), t.mem(true)
	slab0, tcp0 := meminfoKB("Slab"), sockstatTCPMemKB()
	o.logf("idle r%d: server RSS %.0f kB; connecting %d", rep, rss0, o.n)
	cs, err := o.startClients([]*target{t}, o.n, 0)
	if err != nil {
		return nil, err
	}
	defer cs.stop()
	agg := sumStats(cs.ready)
	o.logf("idle r%d: ready %d failed %d in %.2fs; settling %v", rep, agg.Ready, agg.Failed, agg.ConnectS, o.settle)
	if err := sleepCtx(ctx, o.settle); err != nil {
		return nil, err
	}
	rss1, mem1 := rssKB(t.pid), t.mem(true)
	slab1, tcp1 := meminfoKB("Slab"), sockstatTCPMemKB()
	fds, lim := int64(-1), int64(-1)
	if t.pid != "" {
		fds, lim = fdCount(t.pid), fdLimit(t.pid)
	}
	now, err := cs.all(command{Cmd: "stat"}, 30*time.Second)
	if err != nil {
		return nil, err
	}
	later := sumStats(now)
	o.saveProfile(ctx, t, "/debug/pprof/heap?gc=1", fmt.Sprintf("idle-r%d-heap.pb.gz", rep))
	o.saveProfile(ctx, t, "/debug/pprof/goroutine", fmt.Sprintf("idle-r%d-goroutine.pb.gz", rep))
	if o.hold > 0 {
		fmt.Fprintf(os.Stderr, "pyrebench: holding %d connections for %v (server %s)\n", later.Ready-later.Dropped, o.hold, t.control)
		if err := sleepCtx(ctx, o.hold); err != nil {
			return nil, err
		}
	}
	held := float64(agg.Ready)
	r := map[string]any{
		"n": float64(o.n), "held": held, "failed": float64(agg.Failed + agg.NotTried), "procs": float64(len(cs.procs)),
		"connect_s": agg.ConnectS, "conn_per_s": div(held, agg.ConnectS),
		"rss0_mb": rss0 / 1024, "rss1_mb": rss1 / 1024,
		"rss_kb_per_conn":        div(rss1-rss0, held),
		"heap_kb_per_conn":       div(mem1["heap_alloc"]-mem0["heap_alloc"], 1024*held),
		"stack_kb_per_conn":      div(mem1["stack_inuse"]-mem0["stack_inuse"], 1024*held),
		"goroutines_per_conn":    div(mem1["goroutines"]-mem0["goroutines"], held),
		"slab_kb_per_conn":       div(num(slab1)-num(slab0), held),
		"tcp_mem_kb":             num(tcp1) - num(tcp0),
		"client_rss_kb_per_conn": div(float64(later.RSSKB), held),
		"server_fds":             num(fds), "server_fd_limit": num(lim),
		"dropped_while_held": float64(later.Dropped),
		"errors":             countsString(agg.Errors),
		"stopped_by":         stoppedBy(o.n, agg, fds, lim),
	}
	if len(mem0) == 0 || len(mem1) == 0 {
		r["heap_kb_per_conn"], r["stack_kb_per_conn"], r["goroutines_per_conn"] = math.NaN(), math.NaN(), math.NaN()
	}
	return r, nil
}

// stoppedBy names the limit that kept the run from holding all n.
func stoppedBy(n int, agg workerStat, fds, lim int64) string {
	if agg.Ready >= int64(n) {
		if lim > 0 {
			return fmt.Sprintf("nothing: all held (server at %d of %d fds)", fds, lim)
		}
		return "nothing: all held"
	}
	var why []string
	if lim > 0 && fds >= lim-64 {
		why = append(why, fmt.Sprintf("server open-file limit (RLIMIT_NOFILE %d, %d fds open)", lim, fds))
	}
	if avail := meminfoKB("MemAvailable"); avail >= 0 && avail < 512<<10 {
		why = append(why, fmt.Sprintf("memory (MemAvailable %d MB)", avail>>10))
	}
	if len(agg.Errors) > 0 {
		why = append(why, "client errors: "+countsString(agg.Errors))
	}
	if agg.NotTried > 0 {
		why = append(why, fmt.Sprintf("%d not dialed after -max-fail", agg.NotTried))
	}
	if agg.FirstErr != "" {
		why = append(why, "first: "+agg.FirstErr)
	}
	return strings.Join(why, "; ")
}

// fanoutOnce runs one broadcast measurement with n subscribers, stalled of
// which stop reading (the slow scenario), on o.nodes servers sharing
// o.pubsub (publishing on the first).
func (o *options) fanoutOnce(ctx context.Context, rep, stalled int) (map[string]any, error) {
	ts, err := o.startTargets(fmt.Sprintf("%s-r%d-stalled%d", o.mode, rep, stalled))
	if err != nil {
		return nil, err
	}
	defer stopTargets(ts)
	t := ts[0]
	if err := sleepCtx(ctx, time.Second); err != nil {
		return nil, err
	}
	cs, err := o.startClients(ts, o.n, stalled)
	if err != nil {
		return nil, err
	}
	defer cs.stop()
	agg := sumStats(cs.ready)
	subs := agg.Ready - agg.StalledLive
	filtering := agg.ReadyFiltered
	o.logf("%s r%d: %d fast (%d filtering) + %d stalled joined, %d failed", o.mode, rep, subs, filtering, agg.StalledLive, agg.Failed)
	if subs <= 0 {
		return nil, fmt.Errorf("no subscriber joined: %s", agg.FirstErr)
	}
	if err := sleepCtx(ctx, o.settle); err != nil {
		return nil, err
	}
	watchMem := o.mode == "slow"
	brokerPID := brokerPID(o.pubsub)
	ctr0, ctrT0 := memAll(ts), time.Now()
	scpu0 := cpuAll(ts)
	bu0, bs0 := serverCPU(brokerPID)
	cc0 := cs.cpu()
	mb0, mt0 := machineCPU()

	var wg sync.WaitGroup
	defer wg.Wait()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.profileDir != "" {
		wg.Go(func() {
			o.saveProfile(pctx, t, fmt.Sprintf("/debug/pprof/profile?seconds=%d", o.seconds),
				fmt.Sprintf("%s-%s-r%d-stalled%d-cpu.pb.gz", o.mode, o.server, rep, stalled))
		})
	}
	type pubOut struct {
		res publishResult
		err error
	}
	pubc := make(chan pubOut, 1)
	t0 := time.Now()
	wg.Go(func() {
		res, err := t.publish(pctx, o.topic, o.rate, o.seconds, o.size)
		pubc <- pubOut{res, err}
	})

	var (
		pub                   *pubOut
		pubEnd                time.Time
		expected              = int64(-1)
		delivered, lastNs     int64
		lastProgress          = time.Now()
		stop                  string
		rssPeak, heapPeak     float64
		slowClosed            float64
		closeFirst, closeLast = math.NaN(), math.NaN()
		lastMemPoll           time.Time
		hardStop              = time.Duration(o.seconds)*time.Second + 60*time.Second + o.drain
		tick                  = time.NewTicker(100 * time.Millisecond)
	)
	defer tick.Stop()
	pollMem := func() {
		if !watchMem {
			return
		}
		m := t.mem(false)
		heapPeak = max(heapPeak, m["heap_inuse"])
		rssPeak = max(rssPeak, m["rss_kb"])
		if sc := m["slow_closed"]; sc > slowClosed {
			at := time.Since(t0).Seconds()
			if slowClosed == 0 {
				closeFirst = at
			}
			closeLast = at
			slowClosed = sc
		}
	}
loop:
	for {
		select {
		case out := <-pubc:
			pub, pubEnd = &out, time.Now()
			if out.err != nil {
				return nil, out.err
			}
			expected = expectedDeliveries(out.res.Published, subs, filtering)
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		st, err := cs.all(command{Cmd: "stat"}, 30*time.Second)
		if err != nil {
			return nil, err
		}
		s := sumStats(st)
		if s.Delivered != delivered {
			delivered, lastProgress = s.Delivered, time.Now()
		}
		lastNs = s.LastNs
		if watchMem && time.Since(lastMemPoll) >= 250*time.Millisecond {
			lastMemPoll = time.Now()
			pollMem()
		}
		switch {
		case expected >= 0 && delivered >= expected:
			stop = "all delivered"
		case expected >= 0 && time.Since(lastProgress) > 3*time.Second:
			stop = "no progress for 3s"
		case expected >= 0 && time.Since(pubEnd) > o.drain:
			stop = "drain timeout"
		case time.Since(t0) > hardStop:
			stop = "hard stop"
		default:
			continue
		}
		break loop
	}
	scpu1 := cpuAll(ts)
	bu1, bs1 := serverCPU(brokerPID)
	cc1 := cs.cpu()
	mb1, mt1 := machineCPU()
	pollMem()
	ctr1, ctrT1 := memAll(ts), time.Now()
	rssAfter := rssKB(t.pid)
	if t.pid != "" && watchMem {
		rssPeak = max(rssPeak, num(procStatusKB(t.pid, "VmHWM")))
	}

	if stalled > 0 {
		// Let the stalled clients read again and see what the server left them.
		if _, err := cs.all(command{Cmd: "resume"}, 30*time.Second); err != nil {
			return nil, err
		}
		var drained int64 = -1
		flat := time.Now()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
				return nil, err
			}
			st, err := cs.all(command{Cmd: "stat"}, 30*time.Second)
			if err != nil {
				return nil, err
			}
			s := sumStats(st)
			if s.StalledLive == 0 {
				break
			}
			if s.Drained != drained {
				drained, flat = s.Drained, time.Now()
			} else if time.Since(flat) > 2*time.Second {
				break
			}
		}
	}
	final, err := cs.all(command{Cmd: "report"}, 60*time.Second)
	if err != nil {
		return nil, err
	}
	fin := sumStats(final)
	perNode := cs.byNode(final)
	lat := fin.Lat
	window := max(float64(o.seconds), float64(lastNs-t0.UnixNano())/1e9)
	var srvCPU, srvSys float64
	for i := range ts {
		srvCPU += (scpu1[i][0] + scpu1[i][1]) - (scpu0[i][0] + scpu0[i][1])
		srvSys += scpu1[i][1] - scpu0[i][1]
	}
	brokerCPU := (bu1 + bs1) - (bu0 + bs0)
	r := map[string]any{
		"n": float64(o.n), "subs": float64(subs), "rate": float64(o.rate), "seconds": float64(o.seconds), "size": float64(o.size),
		"expected": float64(expected), "delivered": float64(fin.Delivered),
		"lost":    float64(expected - fin.Delivered),
		"dropped": float64(fin.Dropped), "drops": countsString(fin.Drops),
		"window_s":         window,
		"deliveries_per_s": float64(fin.Delivered) / window,
		"p50_ms":           lat.Quantile(0.5) / 1e6, "p90_ms": lat.Quantile(0.9) / 1e6,
		"p99_ms": lat.Quantile(0.99) / 1e6, "p999_ms": lat.Quantile(0.999) / 1e6, "max_ms": float64(lat.Max) / 1e6,
		"server_cpu_s":       srvCPU,
		"server_cpu_pct":     100 * srvCPU / window,
		"server_sys_pct":     100 * srvSys / window,
		"client_cpu_pct":     100 * (cc1 - cc0) / window,
		"client_cpu_s_per_m": div(cc1-cc0, float64(fin.Delivered)/1e6),
		"machine_cpu_pct":    100 * div(mb1-mb0, mt1-mt0),
		"others_cpu_pct":     100 * ((mb1-mb0)/clkTck - srvCPU - (cc1 - cc0) - zeroNaN(brokerCPU)) / window,
		"server_cpu_s_per_m": div(srvCPU, float64(fin.Delivered)/1e6),
		// Frames per socket write (pyre's Stats; NaN for other servers).
		"frames_per_write": div(ctr1[0]["frames_written"]-ctr0[0]["frames_written"], ctr1[0]["writes"]-ctr0[0]["writes"]),
		// The write pool's mean delay (pyre's Stats; NaN for other servers).
		"write_delay_ms": meanDelayMs(ctr0[0], ctr1[0], ctrT1.Sub(ctrT0)),
		"server_rss_mb":  rssAfter / 1024,
		"stop":           stop,
		"stalled":        float64(stalled),
		"hb_missed":      float64(fin.HBMissed),
	}
	if a := fin.LatArr; a != nil {
		r["p50_arrival_ms"] = a.Quantile(0.5) / 1e6
		r["p99_arrival_ms"] = a.Quantile(0.99) / 1e6
	}
	if o.filterSet {
		r["filter_pct"] = o.filterPct
		r["filtering"] = float64(filtering)
		r["filter_leaks"] = float64(fin.FilterLeaks)
		var f float64
		for i := range ts {
			f += ctr1[i]["filtered"] - ctr0[i]["filtered"]
		}
		r["server_filtered"] = f
		if len(ctr0[0]) == 0 || len(ctr1[0]) == 0 {
			r["server_filtered"] = math.NaN()
		}
	}
	if len(ts) > 1 || o.pubsub != "memory" {
		worst, cpuMax := math.NaN(), math.NaN()
		for i := range ts {
			c := (scpu1[i][0] + scpu1[i][1]) - (scpu0[i][0] + scpu0[i][1])
			per := div(c, float64(perNode[i].Delivered)/1e6)
			r[fmt.Sprintf("node%d_cpu_s_per_m", i)] = per
			r[fmt.Sprintf("node%d_cpu_pct", i)] = 100 * c / window
			r[fmt.Sprintf("node%d_deliveries_per_s", i)] = float64(perNode[i].Delivered) / window
			worst = nanMax(worst, per)
			cpuMax = nanMax(cpuMax, 100*c/window)
		}
		var pubs, recvs float64
		for i := range ts {
			pubs += ctr1[i]["broker_published"] - ctr0[i]["broker_published"]
			recvs += ctr1[i]["broker_received"] - ctr0[i]["broker_received"]
		}
		r["node_cpu_s_per_m"] = r["server_cpu_s_per_m"]
		r["node_cpu_s_per_m_max"] = worst
		r["node_cpu_pct_max"] = cpuMax
		r["broker_cpu_pct"] = 100 * brokerCPU / window
		r["broker_cpu_s_per_m"] = div(brokerCPU, float64(fin.Delivered)/1e6)
		if pub != nil {
			r["broker_pub_per_msg"] = div(pubs, float64(pub.res.Published))
			r["broker_recv_per_msg_node"] = div(recvs, float64(pub.res.Published)*float64(len(ts)))
		}
	}
	if pub != nil {
		r["published"] = float64(pub.res.Published)
		r["pub_rate"] = float64(pub.res.Published) / float64(o.seconds)
		r["pub_skipped"] = float64(pub.res.Skipped)
		r["pub_max_lag_ms"] = pub.res.MaxLagMs
	}
	if watchMem {
		r["rss_peak_mb"] = rssPeak / 1024
		r["heap_peak_mb"] = heapPeak / (1 << 20)
		q := o.maxQueueBytes
		if q == 0 {
			q = 1 << 20
		}
		r["queue_bound_mb"] = float64(stalled) * float64(q) / (1 << 20)
		r["slow_closed"] = slowClosed
		r["close_first_s"], r["close_last_s"] = closeFirst, closeLast
		ends := fin.StalledEnds
		if open := fin.StalledLive; open > 0 {
			ends = addCounts(ends, map[string]int64{fmt.Sprintf("still open (drained %d msgs)", fin.Drained): open})
		}
		r["stalled_ends"] = countsString(ends)
		if stalled == 0 {
			r["stalled_ends"] = ""
		}
	}
	return r, nil
}

// expectedDeliveries is what subs subscribers should get of published
// broadcasts when filtering of them keep only those of even seq (the
// broadcasts of a -filter-pct run, sent as event "msg"; the odd ones are
// "odd"). The publisher numbers its slots from 0 and publishes them in
// order, so the even seq among published are (published+1)/2 — exactly, as
// long as no publish failed (a failed one leaves a gap in the seq; the row
// then shows it under "lost", and the publish result counts it in errors).
func expectedDeliveries(published int, subs, filtering int64) int64 {
	return int64(published)*(subs-filtering) + int64((published+1)/2)*filtering
}

// memAll reads every target's /debug/mem.
func memAll(ts []*target) []map[string]float64 {
	out := make([]map[string]float64, len(ts))
	for i, t := range ts {
		out[i] = t.mem(false)
	}
	return out
}

// cpuAll reads every target's user and system CPU seconds.
func cpuAll(ts []*target) [][2]float64 {
	out := make([][2]float64, len(ts))
	for i, t := range ts {
		out[i][0], out[i][1] = serverCPU(t.pid)
	}
	return out
}

// meanDelayMs is the mean write delay, in milliseconds, between two of a
// pyre server's counter snapshots taken d apart: the increase of its
// delay integral (nanoseconds of delay per second) over the seconds
// between them. NaN when the server reports no such counter.
func meanDelayMs(c0, c1 map[string]float64, d time.Duration) float64 {
	a, ok0 := c0["write_delay_total_ns"]
	b, ok1 := c1["write_delay_total_ns"]
	if !ok0 || !ok1 {
		return math.NaN()
	}
	return div(b-a, d.Seconds()) / 1e6
}

func zeroNaN(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func nanMax(a, b float64) float64 {
	switch {
	case math.IsNaN(a):
		return b
	case math.IsNaN(b):
		return a
	}
	return max(a, b)
}

// brokerPID finds the broker process of a pubsub spec on this machine
// (redis-server or nats-server, by its command name); "" when there is none
// or it is not local.
func brokerPID(spec string) string {
	name := ""
	switch {
	case strings.HasPrefix(spec, "redis://"):
		name = "redis-server"
	case strings.HasPrefix(spec, "nats://"):
		name = "nats-server"
	default:
		return ""
	}
	return findProcess(name)
}

// placement describes where the server and the clients ran.
func (o *options) placement() string {
	switch {
	case !o.pin:
		return "unpinned"
	case o.clientCPUs == "all" && o.clientNice != 0:
		return fmt.Sprintf("server CPU %s; clients any CPU, nice %d", o.serverCPUs, o.clientNice)
	case o.clientCPUs == "all":
		return fmt.Sprintf("server CPU %s; clients any CPU", o.serverCPUs)
	}
	return fmt.Sprintf("server CPU %s; clients CPU %s", o.serverCPUs, o.clientCPUs)
}

// rpcOnce runs n clients in an echo push/reply loop for -seconds.
func (o *options) rpcOnce(ctx context.Context, rep int) (map[string]any, error) {
	t, err := o.startTarget(fmt.Sprintf("rpc-r%d", rep))
	if err != nil {
		return nil, err
	}
	defer t.stop()
	if err := sleepCtx(ctx, time.Second); err != nil {
		return nil, err
	}
	cs, err := o.startClients([]*target{t}, o.n, 0)
	if err != nil {
		return nil, err
	}
	defer cs.stop()
	agg := sumStats(cs.ready)
	if agg.Ready == 0 {
		return nil, fmt.Errorf("no client joined: %s", agg.FirstErr)
	}
	if err := sleepCtx(ctx, o.settle); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.profileDir != "" {
		wg.Go(func() {
			o.saveProfile(pctx, t, fmt.Sprintf("/debug/pprof/profile?seconds=%d", o.seconds), fmt.Sprintf("rpc-r%d-cpu.pb.gz", rep))
		})
	}
	su0, ss0 := serverCPU(t.pid)
	cc0 := cs.cpu()
	t0 := time.Now()
	if _, err := cs.all(command{Cmd: "rpc", Seconds: o.seconds}, 30*time.Second); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, time.Until(t0.Add(time.Duration(o.seconds)*time.Second))); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		st, err := cs.all(command{Cmd: "stat"}, 30*time.Second)
		if err != nil {
			return nil, err
		}
		if sumStats(st).RPCInFlight == 0 {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
	elapsed := time.Since(t0).Seconds()
	su1, ss1 := serverCPU(t.pid)
	cc1 := cs.cpu()
	final, err := cs.all(command{Cmd: "report"}, 60*time.Second)
	if err != nil {
		return nil, err
	}
	fin := sumStats(final)
	rtt := fin.RTT
	srvCPU := (su1 + ss1) - (su0 + ss0)
	return map[string]any{
		"clients": float64(agg.Ready), "seconds": float64(o.seconds), "round_trips": float64(fin.RPCDone),
		"rt_per_s": float64(fin.RPCDone) / float64(o.seconds),
		"p50_ms":   rtt.Quantile(0.5) / 1e6, "p90_ms": rtt.Quantile(0.9) / 1e6,
		"p99_ms": rtt.Quantile(0.99) / 1e6, "p999_ms": rtt.Quantile(0.999) / 1e6, "max_ms": float64(rtt.Max) / 1e6,
		"errors":             float64(fin.RPCErrors + fin.Dropped),
		"server_cpu_s":       srvCPU,
		"server_cpu_pct":     100 * srvCPU / elapsed,
		"client_cpu_pct":     100 * (cc1 - cc0) / elapsed,
		"server_cpu_s_per_m": div(srvCPU, float64(fin.RPCDone)/1e6),
		"server_rss_mb":      rssKB(t.pid) / 1024,
	}, nil
}
