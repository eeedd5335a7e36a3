package wstransport

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestNewTransportCountsActivityFromCreation(t *testing.T) {
	// The server registers a connection before its upgrade completes; the
	// idle sweeper must count from the transport's creation, not the epoch
	// (pyrebench saw a few of 19 000 connecting clients closed as idle).
	var c Conn
	c.Init(NewServer(&Config{}), nil)
	assert.Less(t, time.Since(time.Unix(0, c.LastActivity())), time.Minute)
}
