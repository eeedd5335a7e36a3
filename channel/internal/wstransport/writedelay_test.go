package wstransport

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The adaptive delay's law: zero up to half load, MaxWriteDelay at full
// load, linear between, scaled by how much frames share writes (none: no
// delay); each window moves half way to that target; a long idle spell
// resets it; no bound, no delay.
func TestAdaptDelay(t *testing.T) {
	const maxD = 40 * time.Millisecond
	w := delayWindow
	for _, tc := range []struct {
		name          string
		cur, busy, el time.Duration
		procs         int
		merged        float64
		maxDelay      time.Duration
		want          time.Duration
	}{
		{"idle stays zero", 0, 0, w, 1, 0.5, maxD, 0},
		{"half load stays zero", 0, w / 2, w, 1, 0.5, maxD, 0},
		{"half load on two workers stays zero", 0, w, w, 2, 0.5, maxD, 0},
		{"full load moves half way to max", 0, w, w, 1, 0.5, maxD, maxD / 2},
		{"full load from max stays max", maxD, w, w, 1, 0.5, maxD, maxD},
		{"overload is capped at max", maxD, 3 * w, w, 1, 0.5, maxD, maxD},
		{"three quarters targets half of max", 0, 3 * w / 4, w, 1, 0.5, maxD, maxD / 4},
		{"full load on two workers", 0, 2 * w, w, 2, 0.5, maxD, maxD / 2},
		{"low load halves the delay", maxD, 0, w, 1, 0.5, maxD, maxD / 2},
		{"full load, nothing merged, stays zero", 0, w, w, 1, 0, maxD, 0},
		{"full load, nothing merged, halves the delay", maxD, w, w, 1, 0, maxD, maxD / 2},
		{"full load, half the full merge, targets half", 0, w, w, 1, delayMergeFull / 2, maxD, maxD / 4},
		{"a long idle spell resets", maxD, 0, 4 * w, 1, 0.5, maxD, 0},
		{"a long busy spell jumps to the target", 0, 4 * w, 4 * w, 1, 0.5, maxD, maxD},
		{"a delay under a millisecond is zero", 1500 * time.Microsecond, 0, w, 1, 0.5, maxD, 0},
		{"no bound, no delay", 0, w, w, 1, 0.5, 0, 0},
		{"no time elapsed", maxD, w, 0, 1, 0.5, maxD, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, adaptDelay(tc.cur, tc.busy, tc.el, tc.procs, tc.merged, tc.maxDelay))
		})
	}
}

// testPool is a write pool on an injected clock, with its own frame and
// write counters, and one worker.
type testPool struct {
	writePool
	clock          int64
	frames, writes atomic.Uint64
}

func newTestPool(cfg Config) *testPool {
	p := &testPool{clock: 1} // the pool's clock starts above zero
	p.init(&cfg, &p.frames, &p.writes)
	p.now = func() int64 { return p.clock }
	p.procs = 1
	p.account(p.clock, 0) // opens the first window
	return p
}

// window passes one delayWindow in which the workers were busy for busy
// and wrote frames in writes.
func (p *testPool) window(busy time.Duration, frames, writes uint64) {
	p.frames.Add(frames)
	p.writes.Add(writes)
	p.clock += int64(delayWindow)
	p.account(p.clock, int64(busy))
}

// The pool's delay follows what account is told: busy windows whose
// frames share writes raise it, idle windows bring it back to zero, busy
// windows where every frame needs a write of its own keep it at zero, and
// a fixed WriteDelay is never changed.
func TestWritePoolDelayFollowsLoad(t *testing.T) {
	w := delayWindow
	p := newTestPool(Config{MaxWriteDelay: 40 * time.Millisecond})
	assert.Zero(t, p.currentDelay())
	for range 8 { // workers busy all the time, 1.5 frames per write
		p.window(w, 3000, 2000)
	}
	assert.Greater(t, p.currentDelay(), 39*time.Millisecond, "a saturated pool approaches the bound")
	for range 8 { // a quarter busy
		p.window(w/4, 300, 200)
	}
	assert.Less(t, p.currentDelay(), time.Millisecond, "a pool that keeps up stops delaying")
	p.clock += 10 * int64(w)
	p.account(p.clock, 0)
	assert.Zero(t, p.currentDelay())

	// Saturating bursts of one frame per connection: nothing to merge,
	// so no delay, however busy the workers.
	for range 8 {
		p.window(w, 2000, 2000)
	}
	assert.Zero(t, p.currentDelay(), "frames that do not merge are not delayed")

	// How much frames merge is judged over several windows: one window
	// that merged nothing does not take a saturated pool's delay away.
	for range 16 {
		p.window(w, 3000, 2000)
	}
	before := p.currentDelay()
	require.Greater(t, before, 39*time.Millisecond)
	p.window(w, 2000, 2000)
	assert.Greater(t, p.currentDelay(), 39*time.Millisecond, "one window without merges (from %v)", before)

	fixed := newTestPool(Config{WriteDelay: 5 * time.Millisecond, MaxWriteDelay: 40 * time.Millisecond})
	for range 8 {
		fixed.window(w, 3000, 2000)
	}
	assert.Equal(t, 5*time.Millisecond, fixed.currentDelay())
}

// delayedPool is a test server's write pool, set up for delays longer
// than the test.
type delayedPool struct{ *writePool }

// longDelayPool returns ts's write pool and makes sure that, should an
// assertion fail, the server's cleanup does not wait out the delay: the
// test's cleanup ends the delay and wakes a waiting worker.
func longDelayPool(t *testing.T, ts *testServer) delayedPool {
	w := &ts.srv.writers
	t.Cleanup(func() {
		w.delay.Store(0)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	})
	return delayedPool{w}
}

// idle reports whether no worker runs.
func (w delayedPool) idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running == 0
}

// A reply is never held back by the write delay: with a delay far longer
// than the test, a frame queued without urgency waits on the delayed
// list, and a reply queued after it takes the connection to the urgent
// list, so both go out at once, in order. Closing a connection that waits
// on the delayed list ends its writer's turn at once too (the test's
// cleanup would wait out the hour otherwise).
func TestRepliesSkipTheWriteDelay(t *testing.T) {
	ts := newTestServer(t, Config{WriteDelay: time.Hour})
	c, p := ts.dial(t, "")
	w := longDelayPool(t, ts)

	p.c.Queue(serverFrame("push"), false)
	waiting := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.running == 1 && len(w.ready)-w.head == 1 && len(w.urgent) == 0
	}
	require.Eventually(t, waiting, testTimeout, time.Millisecond, "the push waits on the delayed list")
	p.c.mu.Lock()
	queued := len(p.c.queue)
	p.c.mu.Unlock()
	assert.Equal(t, 1, queued, "nothing was written yet")

	p.c.Queue(serverFrame("reply"), true)
	for _, want := range []string{"push", "reply"} {
		_, payload := readFrame(t, c.br)
		assert.Equal(t, want, string(payload))
	}

	// The stale entry the push left on the delayed list keeps no worker.
	require.Eventually(t, w.idle, testTimeout, time.Millisecond, "the pool's worker exits")

	// A push waiting for the delay, then the connection closes: its turn
	// ends without waiting for the delay.
	p.c.Queue(serverFrame("late"), false)
	require.Eventually(t, waiting, testTimeout, time.Millisecond)
	p.c.CloseNow()
	p.waitFinished(t)
	require.Eventually(t, w.idle, testTimeout, time.Millisecond, "the closed connection's turn ended")
	p.c.mu.Lock()
	writing := p.c.writing
	p.c.mu.Unlock()
	assert.False(t, writing)
}

// Without a fixed delay, a pool that keeps up writes at once: a lone
// connection's push goes out without waiting for any delay.
func TestAdaptiveDelayIsZeroAtLowLoad(t *testing.T) {
	ts := newTestServer(t, Config{MaxWriteDelay: time.Hour})
	c, p := ts.dial(t, "")
	for i := range 20 {
		p.c.Queue(serverFrame("push"), false)
		_, payload := readFrame(t, c.br) // the client's read deadline is testTimeout
		assert.Equal(t, "push", string(payload), "push %d", i)
	}
	assert.Zero(t, ts.srv.writers.currentDelay())
}

// WriteDelayTotal integrates the delay over the windows the pool was
// busy: a fixed delay over a second of busy windows adds that delay, an
// adaptive one adds what it was in each window, and a long idle spell
// adds nothing.
func TestWriteDelayTotal(t *testing.T) {
	w := delayWindow
	perSecond := int(time.Second / delayWindow)

	fixed := newTestPool(Config{WriteDelay: 5 * time.Millisecond})
	for range perSecond {
		fixed.window(w, 100, 100)
	}
	assert.Equal(t, 5*time.Millisecond, time.Duration(fixed.delayTotal.Load()), "a second at 5 ms")
	fixed.clock += 20 * int64(w) // idle, then one more window
	fixed.account(fixed.clock, 0)
	assert.Equal(t, 5*time.Millisecond, time.Duration(fixed.delayTotal.Load()), "the idle spell adds nothing")

	adaptive := newTestPool(Config{MaxWriteDelay: 40 * time.Millisecond})
	var want time.Duration
	for range perSecond {
		cur := adaptive.currentDelay()
		adaptive.window(w, 3000, 2000)
		want += cur * w / time.Second
	}
	assert.Positive(t, want)
	assert.InDelta(t, float64(want), float64(adaptive.delayTotal.Load()), float64(time.Microsecond))

	none := newTestPool(Config{})
	for range perSecond {
		none.window(w, 3000, 2000)
	}
	assert.Zero(t, none.delayTotal.Load())
}

// A delay left over from a busy spell does not hold the first frame
// after the pool has been idle: the pool starts again from no delay.
func TestAdaptiveDelayResetsAfterIdle(t *testing.T) {
	ts := newTestServer(t, Config{MaxWriteDelay: time.Hour})
	c, p := ts.dial(t, "")
	w := longDelayPool(t, ts)
	require.Eventually(t, w.idle, testTimeout, time.Millisecond)

	// The end of a saturated spell, long enough ago.
	w.mu.Lock()
	w.delay.Store(int64(time.Hour))
	w.winStart = w.now() - int64(5*delayWindow)
	w.mu.Unlock()

	p.c.Queue(serverFrame("push"), false)
	_, payload := readFrame(t, c.br) // the client's read deadline is testTimeout
	assert.Equal(t, "push", string(payload))
	assert.Zero(t, w.currentDelay())
}

// A worker takes the entries that are due and those due within an eighth
// of the delay with them, so that a delay does not split its batches
// into one wake-up per entry; it waits for the rest.
func TestTakeBatchesEntriesDueTogether(t *testing.T) {
	p := newTestPool(Config{WriteDelay: 8 * time.Millisecond})
	conns := make([]*Conn, 4)
	for i := range conns {
		conns[i] = &Conn{}
	}
	at := p.clock
	ms := int64(time.Millisecond)
	p.ready = []readyConn{
		{conns[0], 0, at},
		{conns[1], 0, at + ms/2}, // due half a millisecond after the first: taken with it
		{conns[2], 0, at + ms},   // due with the first's wake-up plus an eighth of the delay: taken too
		{conns[3], 0, at + 3*ms}, // not yet
	}
	var batch [writePoolTake]readyConn
	n, wait := p.take(batch[:], at+8*ms)
	require.Equal(t, 3, n)
	assert.Zero(t, wait)
	for i := range n {
		assert.Same(t, conns[i], batch[i].c)
	}
	n, wait = p.take(batch[:], at+8*ms)
	assert.Zero(t, n)
	assert.Equal(t, 3*time.Millisecond, wait, "the last entry is due at 11 ms")
}
