package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// column is one column of a scenario's table: a key of the result map and
// how to print it (prec decimals; -1 for strings).
type column struct {
	key, title string
	prec       int
}

type table []column

func (t table) header() string {
	var b strings.Builder
	b.WriteString("| run |")
	for _, c := range t {
		b.WriteString(" " + c.title + " |")
	}
	b.WriteString("\n|---|")
	for range t {
		b.WriteString("---|")
	}
	return b.String() + "\n"
}

func (t table) row(label string, r map[string]any) string {
	var b strings.Builder
	b.WriteString("| " + label + " |")
	for _, c := range t {
		b.WriteString(" " + formatValue(r[c.key], c.prec) + " |")
	}
	return b.String() + "\n"
}

func formatValue(v any, prec int) string {
	switch x := v.(type) {
	case nil:
		return "n/a"
	case string:
		if x == "" {
			return "-"
		}
		return strings.ReplaceAll(x, "|", "/")
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "n/a"
		}
		if prec < 0 {
			prec = 0
		}
		return strconv.FormatFloat(x, 'f', prec, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	}
	return fmt.Sprint(v)
}

// num turns a counter into the float64 every numeric result holds; a
// negative reading (unreadable /proc value) becomes NaN.
func num[T int | int64 | float64](v T) float64 {
	if v < 0 {
		return math.NaN()
	}
	return float64(v)
}

// div returns a/b, NaN when either is NaN or b is 0.
func div(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// medianRow returns, per key, the median of the numeric values of rows
// (NaNs ignored) and the most frequent string value.
func medianRow(rows []map[string]any) map[string]any {
	out := map[string]any{}
	keys := map[string]bool{}
	for _, r := range rows {
		for k := range r {
			keys[k] = true
		}
	}
	for k := range keys {
		var nums []float64
		strs := map[string]int{}
		for _, r := range rows {
			switch x := r[k].(type) {
			case float64:
				if !math.IsNaN(x) {
					nums = append(nums, x)
				}
			case string:
				strs[x]++
			}
		}
		switch {
		case len(nums) > 0:
			out[k] = median(nums)
		case len(strs) > 0:
			best, bestN := "", -1
			for s, n := range strs {
				if n > bestN || (n == bestN && s < best) {
					best, bestN = s, n
				}
			}
			out[k] = best
		}
	}
	return out
}

// median returns the middle value (the mean of the two middle ones for an
// even count); NaN for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// shellQuote quotes args for a POSIX shell where needed.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// machineLine describes the machine the way BENCHMARKS.md quotes it.
func machineLine(o *options) string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	cur, hard := openFileLimit()
	memGiB := float64(meminfoKB("MemTotal")) / (1 << 20)
	pin := "not pinned (server and clients share all CPUs)"
	if o.pin {
		pin = o.placement()
	}
	pin = fmt.Sprintf("server %s (%d node(s), pubsub %s), %s", o.server, o.nodes, o.pubsub, pin)
	if o.clientPoll > 0 {
		pin += fmt.Sprintf(", clients poll every %v", o.clientPoll)
	}
	return fmt.Sprintf("machine: %d CPUs (%s), %.1f GiB RAM, open files %d/%d (soft/hard), %s, %s/%s; %s",
		runtime.NumCPU(), model, memGiB, cur, hard, runtime.Version(), runtime.GOOS, runtime.GOARCH, pin)
}
