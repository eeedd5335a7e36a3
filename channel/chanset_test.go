package channel

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chanSet behaves as a map by topic on both sides of its switch from a
// slice to a map.
func TestChanSetAcrossItsSwitchToAMap(t *testing.T) {
	var s chanSet
	procs := make([]*proc, 3*chanSetFew)
	for i := range procs {
		procs[i] = &proc{topic: fmt.Sprintf("room:%d", i)}
		s.set(procs[i])
		require.Equal(t, i+1, s.len())
		for _, p := range procs[:i+1] {
			require.Same(t, p, s.get(p.topic), "after %d sets", i+1)
		}
	}
	assert.Nil(t, s.get("room:none"))
	again := &proc{topic: "room:3"}
	s.set(again)
	assert.Same(t, again, s.get("room:3"), "a topic's channel is replaced")
	assert.Equal(t, len(procs), s.len())
	s.del("room:3")
	s.del("room:none")
	assert.Nil(t, s.get("room:3"))
	assert.Equal(t, len(procs)-1, s.len())
	assert.Len(t, s.take(), len(procs)-1)
	assert.Zero(t, s.len())

	var few chanSet
	few.set(procs[0])
	few.set(procs[1])
	few.del(procs[0].topic)
	assert.Nil(t, few.get(procs[0].topic))
	assert.Same(t, procs[1], few.get(procs[1].topic))
	assert.Equal(t, []*proc{procs[1]}, few.take())
}
