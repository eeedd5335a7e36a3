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
