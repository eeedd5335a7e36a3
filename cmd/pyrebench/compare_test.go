package main

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSpreadIgnoresNaN(t *testing.T) {
	med, lo, hi, n := spread([]float64{3, math.NaN(), 1, 2, math.Inf(1)})
	assert.Equal(t, []float64{2, 1, 3}, []float64{med, lo, hi})
	assert.Equal(t, 3, n)
	assert.Equal(t, "2.0 (1.0–3.0)", fmtSpread([]float64{3, 1, 2}, 1))
	assert.Equal(t, "5", fmtSpread([]float64{5}, 0), "one run: no spread")
	assert.Equal(t, "n/a", fmtSpread(nil, 0))
}

func TestPairRatiosOnlyMatchPairs(t *testing.T) {
	pyre := map[int]float64{1: 300, 2: 280, 3: 310, 4: 999}
	cent := map[int]float64{1: 200, 2: 140, 3: 155, 5: 1}
	assert.Equal(t, []float64{1.5, 2, 2}, pairRatios(pyre, cent))
	// The median of per-pair ratios is not the ratio of the medians.
	assert.Equal(t, "2.00 (1.50–2.00)", fmtSpread(pairRatios(pyre, cent), 2))
}

func fan(server string, pair int, rate, pubSkipped, lost, p99, dps float64) record {
	return record{
		"scenario": "fanout", "server": server, "tag": "ramp", "pair": float64(pair), "rate": rate,
		"n": 10000.0, "size": 128.0, "nodes": 1.0, "pubsub": "memory", "placement": "p",
		"pub_skipped": pubSkipped, "lost": lost, "dropped": 0.0, "p99_ms": p99,
		"deliveries_per_s": dps, "pub_rate": rate, "server_cpu_pct": 90.0, "server_cpu_s_per_m": 3.0,
	}
}

func TestCeilingIsTheHighestKeptRate(t *testing.T) {
	runs := []record{
		fan("pyre", 1, 24, 0, 0, 100, 240000),
		fan("pyre", 1, 36, 0, 0, 140, 360000),
		fan("pyre", 1, 48, 0, 0, 180, 470000),   // p99 over the bound
		fan("pyre", 1, 60, 100, 0, 120, 500000), // fell behind the schedule
	}
	c, ok := ceilingOf(runs, 150)
	require.True(t, ok)
	assert.Equal(t, 36.0, c.rate)
	require.NotNil(t, c.next)
	assert.Equal(t, 48.0, c.next.f("rate"), "the lowest rate above the ceiling that was missed")
	assert.Equal(t, "p99 180 ms", why(c.next, 150))
	runs[3]["pub_rate"] = 50.0
	assert.Equal(t, "published 50.0 of 60 msg/s", why(runs[3], 150))
	assert.Equal(t, 360000.0, c.deliveries)
	assert.False(t, c.top)

	c, ok = ceilingOf(runs[:2], 150)
	require.True(t, ok)
	assert.True(t, c.top, "kept the highest rate tried")

	_, ok = ceilingOf([]record{fan("pyre", 1, 24, 0, 5, 100, 1)}, 150)
	assert.False(t, ok, "lost messages: not kept")
}

func TestBuildReportInterleavedPairs(t *testing.T) {
	var recs []record
	for p := 1; p <= 3; p++ {
		for _, rate := range []float64{24, 36} {
			recs = append(recs,
				fan("pyre", p, rate, 0, 0, 100, rate*10000),
				fan("centrifuge", p, rate, 0, 0, 130, rate*10000*map[bool]float64{true: 1, false: 0.5}[rate == 24]))
		}
	}
	recs = append(recs, record{"scenario": "idle", "server": "pyre", "tag": "idle", "pair": 1.0, "n": 19000.0, "rss_kb_per_conn": 12.0},
		record{"scenario": "idle", "server": "centrifuge", "tag": "idle", "pair": 1.0, "n": 19000.0, "rss_kb_per_conn": 28.0})
	out := buildReport(recs, 150)
	t.Log("\n" + out)
	assert.Contains(t, out, "## ramp")
	assert.Contains(t, out, "### fan-out, 10000 subscribers, 128 B, 36 msg/s asked; p")
	assert.Contains(t, out, "| **pyre** | **median (min–max) of 3** | 36.0 (36.0–36.0) | 360000 (360000–360000) |")
	assert.Less(t, strings.Index(out, "### ramp: ceiling"), strings.Index(out, "## idle"), "each tag's ceiling follows its own tables")
	assert.Contains(t, out, "Both servers kept the highest rate tried")
	// deliveries/s ratio at 36 msg/s is 2 in every pair, p99 ratio 100/130.
	assert.Contains(t, out, "| **pyre / centrifuge** | **per pair, median (min–max) of 3** | | 2.00 (2.00–2.00)× | | 0.77 (0.77–0.77)× |")
	// Ceilings: both keep 36 (the highest tried).
	assert.Contains(t, out, "| pyre | 1 | ≥ 36 (the highest tried) | 360000 |")
	assert.Contains(t, out, "| **pyre / centrifuge** | **per pair** | | **2.00 (2.00–2.00)×** |")
	assert.Contains(t, out, "### idle, 19000 connections")
	assert.Contains(t, out, "0.43×")
}

func TestLoadRecordsReportsBadLines(t *testing.T) {
	recs, err := loadRecords(strings.NewReader("{\"a\":1}\n\n{\"b\":2}\n"))
	require.NoError(t, err)
	assert.Len(t, recs, 2)
	_, err = loadRecords(strings.NewReader("{\"a\":1}\nnot json\n"))
	assert.ErrorContains(t, err, "line 2")
}
