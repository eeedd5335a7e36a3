package main

import (
	"bytes"
	"io"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func bytesReader(s string) io.Reader { return bytes.NewReader([]byte(s)) }

func TestMedian(t *testing.T) {
	assert.Equal(t, 2.0, median([]float64{3, 1, 2}))
	assert.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
	assert.Equal(t, 7.0, median([]float64{7}))
	assert.True(t, math.IsNaN(median(nil)))
	in := []float64{3, 1, 2}
	median(in)
	assert.Equal(t, []float64{3, 1, 2}, in, "input untouched")
}

func TestMedianRow(t *testing.T) {
	rows := []map[string]any{
		{"rate": 100.0, "p99": 10.0, "stop": "all delivered", "x": math.NaN()},
		{"rate": 300.0, "p99": math.NaN(), "stop": "drain timeout"},
		{"rate": 200.0, "p99": 30.0, "stop": "all delivered"},
	}
	m := medianRow(rows)
	assert.Equal(t, 200.0, m["rate"])
	assert.Equal(t, 20.0, m["p99"], "NaNs are ignored")
	assert.Equal(t, "all delivered", m["stop"])
	assert.NotContains(t, m, "x")
}

func TestTableRow(t *testing.T) {
	tb := table{{"a", "A", 1}, {"b", "B", -1}, {"c", "C", 0}}
	assert.Equal(t, "| run | A | B | C |\n|---|---|---|---|\n", tb.header())
	assert.Equal(t, "| r1 | 1.3 | x/y | n/a |\n", tb.row("r1", map[string]any{"a": 1.26, "b": "x|y", "c": math.NaN()}))
}

func TestShellQuote(t *testing.T) {
	assert.Equal(t, "-n 500 -topic room:bench", shellQuote([]string{"-n", "500", "-topic", "room:bench"}))
	assert.Equal(t, `-url 'ws://x/a b' '' 'it'\''s'`, shellQuote([]string{"-url", "ws://x/a b", "", "it's"}))
}

func TestSrcAddrNeverTheServerOrBroadcast(t *testing.T) {
	seen := map[string]bool{}
	for i := range 253 * 256 {
		a := srcAddr(i)
		assert.NotEqual(t, "127.0.0.1", a)
		assert.False(t, seen[a], a)
		seen[a] = true
	}
	assert.Equal(t, "127.0.0.2", srcAddr(0))
	assert.Equal(t, "127.0.0.254", srcAddr(252))
	assert.Equal(t, "127.0.1.2", srcAddr(253))
	assert.Equal(t, srcAddr(0), srcAddr(253*256))
}

func TestLoopbackOnly(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "127.3.4.5", "localhost"} {
		assert.NoError(t, checkLoopbackHost(h), h)
	}
	for _, h := range []string{"10.0.0.1", "example.com", "::1", "0.0.0.0", ""} {
		assert.ErrorIs(t, checkLoopbackHost(h), errNotLoopback, h)
	}
	_, err := parseOptions("fanout", []string{"-url", "ws://192.168.1.2:8003/socket"})
	assert.ErrorIs(t, err, errNotLoopback)
}

// The mean write delay is the increase of the delay integral over the
// seconds between the snapshots, and NaN for a server without it.
func TestMeanDelayMs(t *testing.T) {
	c0 := map[string]float64{"write_delay_total_ns": 1e6}
	c1 := map[string]float64{"write_delay_total_ns": 1e6 + 2*5e6} // 5 ms for 2 s
	assert.InDelta(t, 5.0, meanDelayMs(c0, c1, 2*time.Second), 1e-9)
	assert.True(t, math.IsNaN(meanDelayMs(map[string]float64{}, c1, 2*time.Second)))
	assert.True(t, math.IsNaN(meanDelayMs(c0, c1, 0)))
}
