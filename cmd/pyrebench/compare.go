package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// "pyrebench report" turns the JSON lines of interleaved runs (pyrebench
// -json with -tag and -pair, as bench/compare.sh writes them) into markdown:
// every run, the median with its min–max spread per server, and the ratios
// pyre/centrifuge computed per interleaved pair (runs with the same tag,
// configuration and -pair) and summarised as median (min–max). A fan-out
// tag measured at several rates also gets each server's ceiling: the
// highest rate at which it kept the schedule (everything published and
// delivered, no connection lost) with p99 at most -p99-max.

// record is one JSON line.
type record map[string]any

func (r record) f(k string) float64 {
	if v, ok := r[k].(float64); ok {
		return v
	}
	return math.NaN()
}

func (r record) s(k string) string {
	v, _ := r[k].(string)
	return v
}

// metric is one reported quantity.
type metric struct {
	key, title string
	prec       int
	ratio      bool // a pyre/centrifuge ratio row is computed for it
}

var (
	idleMetrics = []metric{
		{"held", "held", 0, false},
		{"rss_kb_per_conn", "**RSS KB/conn**", 2, true},
		{"heap_kb_per_conn", "Go heap KB/conn", 2, true},
		{"stack_kb_per_conn", "stack KB/conn", 2, false},
		{"goroutines_per_conn", "goroutines/conn", 2, false},
		{"connect_s", "connect s", 2, false},
	}
	fanoutMetrics = []metric{
		{"pub_rate", "msg/s published", 1, false},
		{"deliveries_per_s", "**deliveries/s**", 0, true},
		{"p50_ms", "p50 ms", 1, false},
		{"p99_ms", "**p99 ms**", 1, true},
		{"lost", "lost", 0, false},
		{"server_cpu_pct", "server CPU %", 0, false},
		{"server_cpu_s_per_m", "**server CPU s/M**", 2, true},
		{"client_cpu_pct", "client CPU %", 0, false},
		{"client_cpu_s_per_m", "client CPU s/M", 2, false},
		{"machine_cpu_pct", "machine CPU %", 0, false},
	}
	nodeMetrics = []metric{
		{"pub_rate", "msg/s published", 1, false},
		{"deliveries_per_s", "**deliveries/s**", 0, true},
		{"p99_ms", "**p99 ms**", 1, true},
		{"lost", "lost", 0, false},
		{"node_cpu_pct_max", "busiest node CPU %", 0, false},
		{"node_cpu_s_per_m", "**node CPU s/M**", 2, true},
		{"node_cpu_s_per_m_max", "worst node CPU s/M", 2, true},
		{"broker_cpu_pct", "broker CPU %", 0, false},
		{"broker_cpu_s_per_m", "broker CPU s/M", 2, true},
		{"broker_pub_per_msg", "broker publishes / broadcast", 2, false},
		{"broker_recv_per_msg_node", "broker msgs / broadcast / node", 2, false},
		{"client_cpu_pct", "client CPU %", 0, false},
	}
)

// spread returns the median, min and max of the non-NaN values.
func spread(v []float64) (med, lo, hi float64, n int) {
	var ok []float64
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			ok = append(ok, x)
		}
	}
	if len(ok) == 0 {
		return math.NaN(), math.NaN(), math.NaN(), 0
	}
	return median(ok), slices.Min(ok), slices.Max(ok), len(ok)
}

// fmtSpread renders "median (min–max)", or the value alone for one run.
func fmtSpread(v []float64, prec int) string {
	med, lo, hi, n := spread(v)
	switch n {
	case 0:
		return "n/a"
	case 1:
		return fmtNum(med, prec)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(med, prec), fmtNum(lo, prec), fmtNum(hi, prec))
}

func fmtNum(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// pairRatios returns a[p]/b[p] for every pair p present in both, in pair
// order.
func pairRatios(a, b map[int]float64) []float64 {
	var pairs []int
	for p := range a {
		if _, ok := b[p]; ok {
			pairs = append(pairs, p)
		}
	}
	slices.Sort(pairs)
	var out []float64
	for _, p := range pairs {
		out = append(out, div(a[p], b[p]))
	}
	return out
}

// kept reports whether a fan-out run kept the schedule: everything asked
// was published, everything published was delivered, no subscriber was
// dropped, and p99 was at most p99Max.
func kept(r record, p99Max float64) bool {
	return r.f("pub_skipped") == 0 && r.f("lost") <= 0 && r.f("dropped") == 0 && r.f("p99_ms") <= p99Max
}

// ceiling is a server's highest kept rate in one pair of a ramp.
type ceiling struct {
	rate, deliveries, cpuPct, cpuPerM, p99, clientPct float64
	top                                               bool   // kept even the highest rate tried
	next                                              record // the lowest higher rate not kept, nil if none
}

// why says how a run missed the schedule.
func why(r record, p99Max float64) string {
	var out []string
	if r.f("pub_skipped") > 0 {
		out = append(out, fmt.Sprintf("published %s of %s msg/s", fmtNum(r.f("pub_rate"), 1), fmtNum(r.f("rate"), 0)))
	}
	if r.f("lost") > 0 {
		out = append(out, fmt.Sprintf("%s lost", fmtNum(r.f("lost"), 0)))
	}
	if r.f("dropped") > 0 {
		out = append(out, fmt.Sprintf("%s subscribers dropped", fmtNum(r.f("dropped"), 0)))
	}
	if r.f("p99_ms") > p99Max {
		out = append(out, fmt.Sprintf("p99 %s ms", fmtNum(r.f("p99_ms"), 0)))
	}
	return strings.Join(out, ", ")
}

// ceilingOf returns the ceiling among runs (one pair of one server, at
// several rates); ok is false when no rate was kept.
func ceilingOf(runs []record, p99Max float64) (c ceiling, ok bool) {
	maxRate := math.Inf(-1)
	for _, r := range runs {
		maxRate = math.Max(maxRate, r.f("rate"))
	}
	for _, r := range runs {
		if kept(r, p99Max) && (!ok || r.f("rate") > c.rate) {
			c = ceiling{rate: r.f("rate"), deliveries: r.f("deliveries_per_s"), cpuPct: r.f("server_cpu_pct"),
				cpuPerM: r.f("server_cpu_s_per_m"), p99: r.f("p99_ms"), clientPct: r.f("client_cpu_pct")}
			ok = true
		}
	}
	c.top = ok && c.rate == maxRate
	for _, r := range runs {
		if !kept(r, p99Max) && r.f("rate") > c.rate && (c.next == nil || r.f("rate") < c.next.f("rate")) {
			c.next = r
		}
	}
	return c, ok
}

// group is the runs of one configuration, by server and pair.
type group struct {
	key, title string
	scenario   string
	runs       map[string]map[int]record // server → pair → run
}

func groupKey(r record) (key, title string) {
	sc := r.s("scenario")
	switch sc {
	case "idle":
		return fmt.Sprintf("%s|idle|%v", r.s("tag"), r.f("n")), fmt.Sprintf("idle, %s connections", fmtNum(r.f("n"), 0))
	default:
		nodes := r.f("nodes")
		t := fmt.Sprintf("fan-out, %s subscribers, %s B, %s msg/s asked", fmtNum(r.f("n"), 0), fmtNum(r.f("size"), 0), fmtNum(r.f("rate"), 0))
		if nodes > 1 {
			t += fmt.Sprintf(", %s nodes on %s", fmtNum(nodes, 0), r.s("pubsub"))
		}
		if p := r.s("placement"); p != "" {
			t += "; " + p
		}
		return fmt.Sprintf("%s|%s|%v|%v|%s|%v", r.s("tag"), sc, r.f("rate"), nodes, r.s("pubsub"), r.f("n")), t
	}
}

// serverOrder puts pyre first and centrifuge second.
func serverOrder(names []string) []string {
	out := slices.Clone(names)
	rank := func(s string) int {
		switch s {
		case "pyre":
			return 0
		case "centrifuge":
			return 1
		}
		return 2
	}
	slices.SortFunc(out, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return out
}

// buildReport renders the records as markdown.
func buildReport(recs []record, p99Max float64) string {
	var b strings.Builder
	var order []string
	groups := map[string]*group{}
	var tags []string
	byTag := map[string][]record{}
	for _, r := range recs {
		if r.s("scenario") == "" {
			continue
		}
		k, title := groupKey(r)
		g := groups[k]
		if g == nil {
			g = &group{key: k, title: title, scenario: r.s("scenario"), runs: map[string]map[int]record{}}
			groups[k] = g
			order = append(order, k)
		}
		srv := r.s("server")
		if srv == "" {
			srv = "pyre"
		}
		if g.runs[srv] == nil {
			g.runs[srv] = map[int]record{}
		}
		pair := int(r.f("pair"))
		for _, taken := g.runs[srv][pair]; taken; _, taken = g.runs[srv][pair] {
			pair += 1000 // the same pair twice: keep both, unpaired
		}
		g.runs[srv][pair] = r
		tag := r.s("tag")
		if _, ok := byTag[tag]; !ok {
			tags = append(tags, tag)
		}
		byTag[tag] = append(byTag[tag], r)
	}
	for _, tag := range tags {
		name := tag
		if name == "" {
			name = "(untagged)"
		}
		fmt.Fprintf(&b, "## %s\n\n", name)
		for _, k := range order {
			if strings.SplitN(k, "|", 2)[0] == tag {
				writeGroup(&b, groups[k])
			}
		}
		writeCeilings(&b, tag, byTag[tag], p99Max)
	}
	return b.String()
}

func writeGroup(b *strings.Builder, g *group) {
	ms := fanoutMetrics
	switch {
	case g.scenario == "idle":
		ms = idleMetrics
	case strings.Contains(g.title, " nodes on "):
		ms = nodeMetrics
	}
	var servers []string
	for s := range g.runs {
		servers = append(servers, s)
	}
	servers = serverOrder(servers)
	fmt.Fprintf(b, "### %s\n\n| server | run |", g.title)
	for _, m := range ms {
		fmt.Fprintf(b, " %s |", m.title)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(ms)) + "\n")
	for _, s := range servers {
		pairs := sortedPairs(g.runs[s])
		for _, p := range pairs {
			r := g.runs[s][p]
			fmt.Fprintf(b, "| %s | pair %d |", s, p)
			for _, m := range ms {
				fmt.Fprintf(b, " %s |", fmtNum(r.f(m.key), m.prec))
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(b, "| **%s** | **median (min–max) of %d** |", s, len(pairs))
		for _, m := range ms {
			var v []float64
			for _, p := range pairs {
				v = append(v, g.runs[s][p].f(m.key))
			}
			fmt.Fprintf(b, " %s |", fmtSpread(v, m.prec))
		}
		b.WriteString("\n")
	}
	if g.runs["pyre"] != nil && g.runs["centrifuge"] != nil {
		n := 0
		for p := range g.runs["pyre"] {
			if _, ok := g.runs["centrifuge"][p]; ok {
				n++
			}
		}
		fmt.Fprintf(b, "| **pyre / centrifuge** | **per pair, median (min–max) of %d** |", n)
		for _, m := range ms {
			if !m.ratio {
				b.WriteString(" |")
				continue
			}
			rs := pairRatios(onlyKey(g.runs["pyre"], m.key), onlyKey(g.runs["centrifuge"], m.key))
			fmt.Fprintf(b, " %s |", times(fmtSpread(rs, 2)))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// onlyKey returns pair → value of key.
func onlyKey(runs map[int]record, key string) map[int]float64 {
	out := map[int]float64{}
	for p, r := range runs {
		out[p] = r.f(key)
	}
	return out
}

func sortedPairs(m map[int]record) []int {
	var ps []int
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// writeCeilings adds the ceiling table of a single-node fan-out tag that
// was measured at more than one rate.
func writeCeilings(b *strings.Builder, tag string, recs []record, p99Max float64) {
	rates := map[float64]bool{}
	byServerPair := map[string]map[int][]record{}
	for _, r := range recs {
		if r.s("scenario") != "fanout" || r.f("nodes") > 1 {
			continue
		}
		rates[r.f("rate")] = true
		srv := r.s("server")
		if byServerPair[srv] == nil {
			byServerPair[srv] = map[int][]record{}
		}
		p := int(r.f("pair"))
		byServerPair[srv][p] = append(byServerPair[srv][p], r)
	}
	if len(rates) < 2 {
		return
	}
	var servers []string
	for s := range byServerPair {
		servers = append(servers, s)
	}
	servers = serverOrder(servers)
	fmt.Fprintf(b, "### %s: ceiling, the highest rate kept (all published and delivered, p99 ≤ %g ms)\n\n", tag, p99Max)
	b.WriteString("| server | pair | highest rate kept, msg/s | **deliveries/s** there | p99 ms | server CPU % | server CPU s/M | client CPU % | next rate: what missed | its server / client CPU % | its deliveries/s |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	ceil := map[string]map[int]ceiling{}
	for _, s := range servers {
		ceil[s] = map[int]ceiling{}
		var pairs []int
		for p := range byServerPair[s] {
			pairs = append(pairs, p)
		}
		slices.Sort(pairs)
		var dv []float64
		for _, p := range pairs {
			c, ok := ceilingOf(byServerPair[s][p], p99Max)
			if !ok {
				fmt.Fprintf(b, "| %s | %d | none | | | | | | | | |\n", s, p)
				continue
			}
			ceil[s][p] = c
			dv = append(dv, c.deliveries)
			rate := fmtNum(c.rate, 0)
			if c.top {
				rate = "≥ " + rate + " (the highest tried)"
			}
			next, nextCPU, nextD := "", "", ""
			if c.next != nil {
				next = fmtNum(c.next.f("rate"), 0) + ": " + why(c.next, p99Max)
				nextCPU = fmtNum(c.next.f("server_cpu_pct"), 0) + " / " + fmtNum(c.next.f("client_cpu_pct"), 0)
				nextD = fmtNum(c.next.f("deliveries_per_s"), 0)
			}
			fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, p, rate, fmtNum(c.deliveries, 0),
				fmtNum(c.p99, 1), fmtNum(c.cpuPct, 0), fmtNum(c.cpuPerM, 2), fmtNum(c.clientPct, 0), next, nextCPU, nextD)
		}
		fmt.Fprintf(b, "| **%s** | **median (min–max)** | | **%s** | | | | | | | |\n", s, fmtSpread(dv, 0))
	}
	if ceil["pyre"] != nil && ceil["centrifuge"] != nil {
		a, c := map[int]float64{}, map[int]float64{}
		for p, x := range ceil["pyre"] {
			a[p] = x.deliveries
		}
		for p, x := range ceil["centrifuge"] {
			c[p] = x.deliveries
		}
		fmt.Fprintf(b, "| **pyre / centrifuge** | **per pair** | | **%s** | | | | | | | |\n", times(fmtSpread(pairRatios(a, c), 2)))
		tops := map[string]int{}
		for _, s := range []string{"pyre", "centrifuge"} {
			for _, x := range ceil[s] {
				if x.top {
					tops[s]++
				}
			}
		}
		switch {
		case tops["pyre"] > 0 && tops["centrifuge"] > 0:
			b.WriteString("\nBoth servers kept the highest rate tried (in some pairs): neither ceiling was reached, and the ratio says nothing about capacity. Extend the ramp.\n")
		case tops["pyre"] > 0:
			fmt.Fprintf(b, "\npyre kept the highest rate tried in %d pair(s): its ceiling lies above the ramp, so the ratio is a lower bound.\n", tops["pyre"])
		case tops["centrifuge"] > 0:
			fmt.Fprintf(b, "\ncentrifuge kept the highest rate tried in %d pair(s): its ceiling lies above the ramp, so the ratio is an upper bound.\n", tops["centrifuge"])
		}
	}
	b.WriteString("\n")
}

// times appends × to a ratio that is a number.
func times(s string) string {
	if s == "n/a" {
		return s
	}
	return s + "×"
}

// loadRecords reads JSON lines; blank lines are skipped.
func loadRecords(r io.Reader) ([]record, error) {
	var out []record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rec record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

// report is "pyrebench report [-p99-max ms] file.jsonl…".
func report(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pyrebench report", flag.ContinueOnError)
	p99Max := fs.Float64("p99-max", 150, "p99 bound (ms) of a kept rate in the ceiling tables")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: pyrebench report [-p99-max ms] results.jsonl…")
	}
	var recs []record
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		rs, err := loadRecords(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		recs = append(recs, rs...)
	}
	_, err := io.WriteString(out, buildReport(recs, *p99Max))
	return err
}
