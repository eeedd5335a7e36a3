package wstransport

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pyre-go/pyre/internal/uring"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverFrame returns an unmasked text frame carrying s, as Queue takes it.
func serverFrame(s string) []byte {
	b := make([]byte, MaxHeader, MaxHeader+len(s))
	return FinishFrame(append(b, s...), false)
}

// ringsAvailable reports whether this kernel lets the pool use io_uring;
// under CI=true it must (the write path under test would silently be the
// other one otherwise).
func ringsAvailable(t *testing.T) bool {
	r, err := uring.New(writePoolTake)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("io_uring unavailable under CI: %v", err)
		}
		return false
	}
	r.Close()
	return true
}

// With rings on, the pool's frames go out through a ring, which an exiting
// worker keeps for the next; with Config.NoRing (or where the kernel has no
// io_uring) none is made. Either way every frame arrives whole and in
// order, and Close releases the kept rings.
func TestWritePoolUsesRingsUnlessDisabled(t *testing.T) {
	have := ringsAvailable(t)
	for _, noRing := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoRing=%v", noRing), func(t *testing.T) {
			ts := newTestServer(t, Config{NoRing: noRing})
			var clients []*rawClient
			var peers []*testPeer
			for range 40 { // more than one ring batch
				c, p := ts.dial(t, "")
				clients, peers = append(clients, c), append(peers, p)
			}
			// Rounds of one frame per connection until a batch of more
			// than one connection went through a ring (a worker that
			// finds a single connection writes it with write(2)); without
			// rings, a few rounds.
			expect := have && !noRing
			for i := 0; i < 3 || (expect && ts.srv.writers.ringBatches.Load() == 0); i++ {
				require.Less(t, i, 200, "no batch of several connections in 200 rounds")
				for _, p := range peers {
					p.c.Queue(serverFrame(fmt.Sprintf("m%d", i)), false)
				}
				for _, c := range clients {
					op, payload := readFrame(t, c.br)
					assert.Equal(t, byte(0x81), op)
					assert.Equal(t, fmt.Sprintf("m%d", i), string(payload))
				}
			}
			require.Eventually(t, func() bool {
				ts.srv.writers.mu.Lock()
				defer ts.srv.writers.mu.Unlock()
				return ts.srv.writers.running == 0
			}, testTimeout, time.Millisecond)
			ts.srv.writers.mu.Lock()
			kept := len(ts.srv.writers.rings)
			ts.srv.writers.mu.Unlock()
			if expect {
				assert.Positive(t, ts.srv.writers.ringBatches.Load(), "batches went through a ring")
				assert.Positive(t, kept, "the worker kept its ring for the next")
			} else {
				assert.Zero(t, ts.srv.writers.ringBatches.Load())
				assert.Zero(t, kept)
			}
			ts.srv.Close()
			ts.srv.writers.mu.Lock()
			defer ts.srv.writers.mu.Unlock()
			assert.Empty(t, ts.srv.writers.rings, "Close releases the rings")
			assert.True(t, ts.srv.writers.ringOff)
		})
	}
}
