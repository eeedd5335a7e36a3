package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseOptionsServerAndNodes(t *testing.T) {
	o, err := parseOptions("fanout", nil)
	require.NoError(t, err)
	assert.Equal(t, "room:bench", o.topic)
	assert.Equal(t, protoPhoenix, o.proto())

	o, err = parseOptions("fanout", []string{"-server", "centrifuge", "-anchor", "/x/anchor"})
	require.NoError(t, err)
	assert.Equal(t, "bench", o.topic, "centrifuge channels cannot hold a colon without a namespace")
	assert.Equal(t, protoCentrifuge, o.proto())
	assert.Equal(t, "/x/anchor", o.anchorBin)

	o, err = parseOptions("fanout", []string{"-nodes", "2", "-pubsub", "redis://127.0.0.1:6379"})
	require.NoError(t, err)
	assert.Equal(t, 2, o.nodes)

	for _, args := range [][]string{
		{"-server", "nginx"},
		{"-server", "centrifuge", "-rate", "1", "-seconds", "1"}, // rpc below
		{"-nodes", "2"}, // no broker
		{"-nodes", "9", "-pubsub", "redis://127.0.0.1:6379"},
		{"-pubsub", "kafka://127.0.0.1:9092"},
		{"-pubsub", "redis://10.1.2.3:6379"}, // not loopback
		{"-server", "centrifuge", "-pubsub", "nats://127.0.0.1:4222"},
		{"-client-poll", "2s"},
		{"-client-nice", "20"},
	} {
		mode := "fanout"
		if args[0] == "-server" && args[1] == "centrifuge" && len(args) == 6 {
			mode = "rpc"
		}
		_, err := parseOptions(mode, args)
		assert.Error(t, err, "%s %v", mode, args)
	}
}

func TestPlacementNamesWhereThingsRan(t *testing.T) {
	o, err := parseOptions("fanout", []string{"-pin", "-client-cpus", "all", "-client-nice", "19"})
	require.NoError(t, err)
	assert.Equal(t, "server CPU 0; clients any CPU, nice 19", o.placement())
	o, err = parseOptions("fanout", []string{"-pin"})
	require.NoError(t, err)
	assert.Equal(t, "server CPU 0; clients CPU 1", o.placement())
	o, err = parseOptions("fanout", nil)
	require.NoError(t, err)
	assert.Equal(t, "unpinned", o.placement())
}

func TestParseOptionsFilterPct(t *testing.T) {
	o, err := parseOptions("fanout", nil)
	require.NoError(t, err)
	assert.Zero(t, o.filterPct)
	assert.False(t, o.filterSet, "no filter columns")
	assert.Zero(t, o.filtering(10000))
	o, err = parseOptions("fanout", []string{"-filter-pct", "0"})
	require.NoError(t, err)
	assert.True(t, o.filterSet, "the baseline of a filter comparison has the same columns")
	assert.Zero(t, o.filtering(10000))

	o, err = parseOptions("fanout", []string{"-filter-pct", "50", "-n", "10001"})
	require.NoError(t, err)
	assert.Equal(t, 50.0, o.filterPct)
	assert.Equal(t, 5001, o.filtering(o.n), "rounded")
	o, err = parseOptions("fanout", []string{"-filter-pct", "100"})
	require.NoError(t, err)
	assert.Equal(t, o.n, o.filtering(o.n))

	for _, c := range []struct {
		mode string
		args []string
	}{
		{"fanout", []string{"-filter-pct", "-1"}},
		{"fanout", []string{"-filter-pct", "101"}},
		{"rpc", []string{"-filter-pct", "50"}},
		{"slow", []string{"-filter-pct", "50"}},
		{"fanout", []string{"-filter-pct", "50", "-server", "centrifuge", "-anchor", "/x/anchor"}},
	} {
		_, err := parseOptions(c.mode, c.args)
		assert.Error(t, err, "%s %v", c.mode, c.args)
	}
}

func TestExpectedDeliveries(t *testing.T) {
	// Seq 0..239 published: 120 even, 120 odd.
	assert.Equal(t, int64(240*10000), expectedDeliveries(240, 10000, 0))
	assert.Equal(t, int64(240*5000+120*5000), expectedDeliveries(240, 10000, 5000))
	// Seq 0..4: 0, 2 and 4 reach the filtering ones.
	assert.Equal(t, int64(5*2+3*4), expectedDeliveries(5, 6, 4))
	assert.Equal(t, int64(3*6), expectedDeliveries(5, 6, 6))
	assert.Zero(t, expectedDeliveries(0, 6, 3))
}
