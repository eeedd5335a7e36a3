package wstransport

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The adaptive delay's law: zero up to half load, MaxWriteDelay at full
// load, linear between; each window moves half way to that target; a
// long idle spell resets it; no bound, no delay.
func TestAdaptDelay(t *testing.T) {
	const maxD = 40 * time.Millisecond
	w := delayWindow
	for _, tc := range []struct {
		name          string
		cur, busy, el time.Duration
		procs         int
		maxDelay      time.Duration
		want          time.Duration
	}{
		{"idle stays zero", 0, 0, w, 1, maxD, 0},
		{"half load stays zero", 0, w / 2, w, 1, maxD, 0},
		{"half load on two workers stays zero", 0, w, w, 2, maxD, 0},
		{"full load moves half way to max", 0, w, w, 1, maxD, maxD / 2},
		{"full load from max stays max", maxD, w, w, 1, maxD, maxD},
		{"overload is capped at max", maxD, 3 * w, w, 1, maxD, maxD},
		{"three quarters targets half of max", 0, 3 * w / 4, w, 1, maxD, maxD / 4},
		{"full load on two workers", 0, 2 * w, w, 2, maxD, maxD / 2},
		{"low load halves the delay", maxD, 0, w, 1, maxD, maxD / 2},
		{"a long idle spell resets", maxD, 0, 4 * w, 1, maxD, 0},
		{"a long busy spell jumps to the target", 0, 4 * w, 4 * w, 1, maxD, maxD},
		{"no bound, no delay", 0, w, w, 1, 0, 0},
		{"no time elapsed", maxD, w, 0, 1, maxD, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, adaptDelay(tc.cur, tc.busy, tc.el, tc.procs, tc.maxDelay))
		})
	}
}

// The pool's delay follows what account is told: a busy window raises
// it, idle windows bring it back to zero, and a fixed WriteDelay is never
// changed.
func TestWritePoolDelayFollowsLoad(t *testing.T) {
	clock := int64(1) // the pool's clock starts above zero
	p := &writePool{}
	p.init(&Config{MaxWriteDelay: 40 * time.Millisecond})
	p.now = func() int64 { return clock }
	p.procs = 1
	w := int64(delayWindow)

	p.account(clock, 0) // opens the first window
	assert.Zero(t, p.currentDelay())
	for range 8 { // workers busy all the time
		clock += w
		p.account(clock, w)
	}
	assert.Greater(t, p.currentDelay(), 39*time.Millisecond, "a saturated pool approaches the bound")
	for range 8 { // a quarter busy
		clock += w
		p.account(clock, w/4)
	}
	assert.Less(t, p.currentDelay(), time.Millisecond, "a pool that keeps up stops delaying")
	clock += 10 * w
	p.account(clock, 0)
	assert.Zero(t, p.currentDelay())

	fixed := &writePool{}
	fixed.init(&Config{WriteDelay: 5 * time.Millisecond, MaxWriteDelay: 40 * time.Millisecond})
	fixed.now = func() int64 { return clock }
	for range 8 {
		clock += w
		fixed.account(clock, w)
	}
	assert.Equal(t, 5*time.Millisecond, fixed.currentDelay())
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
	w := &ts.srv.writers
	t.Cleanup(func() {
		// Should an assertion fail, the server's cleanup must not wait
		// out the hour: end the delay and wake the waiting worker.
		w.delay.Store(0)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	})

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
	idle := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.running == 0
	}
	require.Eventually(t, idle, testTimeout, time.Millisecond, "the pool's worker exits")

	// A push waiting for the delay, then the connection closes: its turn
	// ends without waiting for the delay.
	p.c.Queue(serverFrame("late"), false)
	require.Eventually(t, waiting, testTimeout, time.Millisecond)
	p.c.CloseNow()
	p.waitFinished(t)
	require.Eventually(t, idle, testTimeout, time.Millisecond, "the closed connection's turn ended")
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
	clock := int64(1)
	w := int64(delayWindow)
	perSecond := int(time.Second / delayWindow)

	fixed := &writePool{}
	fixed.init(&Config{WriteDelay: 5 * time.Millisecond})
	fixed.account(clock, 0) // opens the first window
	for range perSecond {
		clock += w
		fixed.account(clock, w)
	}
	assert.Equal(t, 5*time.Millisecond, time.Duration(fixed.delayTotal.Load()), "a second at 5 ms")
	clock += 20 * w // idle, then one more window
	fixed.account(clock, 0)
	assert.Equal(t, 5*time.Millisecond, time.Duration(fixed.delayTotal.Load()), "the idle spell adds nothing")

	adaptive := &writePool{}
	adaptive.init(&Config{MaxWriteDelay: 40 * time.Millisecond})
	adaptive.procs = 1
	adaptive.account(clock, 0)
	var want time.Duration
	for range perSecond {
		cur := adaptive.currentDelay()
		clock += w
		adaptive.account(clock, w)
		want += cur * time.Duration(w) / time.Second
	}
	assert.Positive(t, want)
	assert.InDelta(t, float64(want), float64(adaptive.delayTotal.Load()), float64(time.Microsecond))

	none := &writePool{}
	none.init(&Config{})
	for range perSecond {
		clock += w
		none.account(clock, w)
	}
	assert.Zero(t, none.delayTotal.Load())
}

// A delay left over from a busy spell does not hold the first frame
// after the pool has been idle: the pool starts again from no delay.
func TestAdaptiveDelayResetsAfterIdle(t *testing.T) {
	ts := newTestServer(t, Config{MaxWriteDelay: time.Hour})
	c, p := ts.dial(t, "")
	w := &ts.srv.writers
	t.Cleanup(func() {
		w.delay.Store(0)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	})
	idle := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.running == 0
	}
	require.Eventually(t, idle, testTimeout, time.Millisecond)

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
