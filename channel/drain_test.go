package channel

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTimer is one timer the drain asked for: d is its duration, and the
// test fires it by sending on c.
type fakeTimer struct {
	d time.Duration
	c chan time.Time
}

// useFakeTimers replaces srv's timers with ones the test fires by hand:
// every timer the drain starts is handed over on the returned channel.
func useFakeTimers(srv *Server) <-chan fakeTimer {
	reqs := make(chan fakeTimer, 16)
	srv.timer = func(d time.Duration) (<-chan time.Time, func() bool) {
		ft := fakeTimer{d: d, c: make(chan time.Time, 1)}
		reqs <- ft
		return ft.c, func() bool { return true }
	}
	return reqs
}

// nextTimer returns the next timer the drain starts, failing the test if
// none comes (a guard against a hang, not a timing assertion).
func nextTimer(t *testing.T, timers <-chan fakeTimer) fakeTimer {
	t.Helper()
	select {
	case ft := <-timers:
		return ft
	case <-time.After(rawTimeout):
		require.FailNow(t, "the drain started no timer")
		return fakeTimer{}
	}
}

// closeEvent is a client that saw the server's close frame, and its code.
type closeEvent struct {
	client int
	code   int
}

// dialDrainClients opens n raw WebSocket clients and starts a reader per
// client that reports the server's close frame (code 0 if the socket ended
// without one) on the returned channel and then drops the socket.
func dialDrainClients(t *testing.T, e *testEndpoint, n int) (<-chan closeEvent, *sync.WaitGroup) {
	t.Helper()
	clients := make([]*rawClient, n)
	for i := range clients {
		clients[i] = e.dialRaw(t, "vsn=2.0.0", "")
	}
	require.EqualValues(t, n, e.srv.Stats().Connections)
	events := make(chan closeEvent, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			defer c.nc.Close()
			for {
				first, p, err := c.readFrame()
				if err != nil {
					events <- closeEvent{client: i}
					return
				}
				if first&0x0f == 0x8 {
					code := 1005
					if len(p) >= 2 {
						code = int(binary.BigEndian.Uint16(p))
					}
					events <- closeEvent{client: i, code: code}
					return
				}
			}
		})
	}
	return events, &wg
}

// takeCloses receives n close events and returns the clients, checking
// that each closed with 1012.
func takeCloses(t *testing.T, events <-chan closeEvent, n int) map[int]bool {
	t.Helper()
	got := make(map[int]bool, n)
	timeout := time.NewTimer(rawTimeout)
	defer timeout.Stop()
	for len(got) < n {
		select {
		case ev := <-events:
			require.Equal(t, CloseServiceRestart, ev.code, "client %d", ev.client)
			require.False(t, got[ev.client], "client %d closed twice", ev.client)
			got[ev.client] = true
		case <-timeout.C:
			require.FailNow(t, "closes missing", "got %d of %d", len(got), n)
		}
	}
	return got
}

func drainEndpoint(t *testing.T, d *DrainOptions) *testEndpoint {
	t.Helper()
	return serveTestEndpoint(t, NewServer(&Options{
		Router: roomRouter(nil),
		Logger: slog.New(slog.DiscardHandler),
		Drain:  d,
	}))
}

// Shutdown with 2 000 clients and batches of 500 closes them in 4 batches:
// the first at once, each next one only when the interval's timer fires
// (the drain waits on it, and no client beyond the batch is closed
// meanwhile), every client once with 1012, while new connections are
// refused with 503; Shutdown returns once the last batch is closed.
func TestShutdownDrainsInBatches(t *testing.T) {
	const clients, batch = 2000, 500
	e := drainEndpoint(t, &DrainOptions{BatchSize: batch, BatchInterval: 2 * time.Second, Timeout: time.Minute})
	timers := useFakeTimers(e.srv)
	events, readers := dialDrainClients(t, e, clients)

	ctx, cancel := context.WithTimeout(context.Background(), 2*rawTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()

	deadline := nextTimer(t, timers)
	assert.Equal(t, time.Minute, deadline.d, "the first timer is the drain's Timeout")
	seen := make(map[int]bool, clients)
	for round := 1; round <= clients/batch; round++ {
		got := takeCloses(t, events, batch)
		for c := range got {
			require.False(t, seen[c], "client %d in two batches", c)
			seen[c] = true
		}
		open := int64(clients - round*batch)
		require.Eventually(t, func() bool { return e.srv.Stats().Connections == open },
			rawTimeout, time.Millisecond, "batch %d: the batch's connections end", round)
		if round == clients/batch {
			break
		}
		tick := nextTimer(t, timers) // the drain waits for the interval
		assert.Equal(t, 2*time.Second, tick.d)
		select {
		case ev := <-events:
			require.Failf(t, "a client closed before the interval passed", "client %d", ev.client)
		case err := <-done:
			require.Failf(t, "Shutdown returned before the drain ended", "%v", err)
		default:
		}
		assert.EqualValues(t, open, e.srv.Stats().Connections, "batch %d: the rest stay open", round)
		if round == 1 {
			assert.Equal(t, http.StatusServiceUnavailable, e.dialStatus(t, "vsn=2.0.0", nil),
				"a new connection during the drain is refused")
		}
		tick.c <- time.Now()
	}
	require.NoError(t, <-done)
	assert.Len(t, seen, clients)
	assert.Zero(t, e.srv.Stats().Connections)
	assert.Empty(t, timers, "no timer after the last batch")
	readers.Wait()
}

// When Shutdown's context ends during the drain, the connections not
// reached yet are closed at once with 1012 and Shutdown returns the
// context's error, with real timers: an interval of an hour does not keep
// it waiting.
func TestShutdownDrainEndsWithContext(t *testing.T) {
	const clients = 40
	e := drainEndpoint(t, &DrainOptions{BatchSize: 10, BatchInterval: time.Hour, Timeout: 2 * time.Hour})
	events, readers := dialDrainClients(t, e, clients)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()
	takeCloses(t, events, 10) // the first batch goes at once
	cancel()
	takeCloses(t, events, clients-10)
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(rawTimeout):
		require.FailNow(t, "Shutdown did not return after its context ended")
	}
	readers.Wait()
	require.Eventually(t, func() bool { return e.srv.Stats().Connections == 0 }, rawTimeout, time.Millisecond)
}

// When the drain's Timeout passes before the last batch, the rest are
// closed at once and Shutdown returns normally.
func TestShutdownDrainTimeoutClosesTheRest(t *testing.T) {
	const clients = 40
	e := drainEndpoint(t, &DrainOptions{BatchSize: 10, BatchInterval: time.Second, Timeout: 5 * time.Second})
	timers := useFakeTimers(e.srv)
	events, readers := dialDrainClients(t, e, clients)

	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	deadline := nextTimer(t, timers)
	require.Equal(t, 5*time.Second, deadline.d)
	takeCloses(t, events, 10)
	nextTimer(t, timers) // waiting for the interval
	deadline.c <- time.Now()
	takeCloses(t, events, clients-10)
	require.NoError(t, <-done)
	assert.Zero(t, e.srv.Stats().Connections)
	readers.Wait()
}

// Close does not drain: every connection is closed at once, no timer is
// started, and a Shutdown draining meanwhile stops waiting for its next
// batch.
func TestCloseDoesNotDrain(t *testing.T) {
	const clients, batch = 2000, 500
	e := drainEndpoint(t, &DrainOptions{BatchSize: batch, BatchInterval: time.Hour, Timeout: 2 * time.Hour})
	timers := useFakeTimers(e.srv)
	_, readers := dialDrainClients(t, e, clients)

	require.NoError(t, e.srv.Close())
	assert.Zero(t, e.srv.Stats().Connections)
	assert.Empty(t, timers, "Close starts no drain timer")
	readers.Wait()
}

func TestCloseStopsADrainingShutdown(t *testing.T) {
	const clients = 40
	e := drainEndpoint(t, &DrainOptions{BatchSize: 10, BatchInterval: time.Hour, Timeout: 2 * time.Hour})
	timers := useFakeTimers(e.srv)
	events, readers := dialDrainClients(t, e, clients)

	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	nextTimer(t, timers) // deadline
	takeCloses(t, events, 10)
	nextTimer(t, timers) // the drain waits for the interval
	require.NoError(t, e.srv.Close())
	require.NoError(t, <-done)
	assert.Zero(t, e.srv.Stats().Connections)
	readers.Wait()
}

// Without Options.Drain, Shutdown uses Phoenix's defaults: up to 10 000
// connections go in one batch, without any timer.
func TestShutdownDefaultDrainIsOneBatch(t *testing.T) {
	e := drainEndpoint(t, nil)
	timers := useFakeTimers(e.srv)
	events, readers := dialDrainClients(t, e, 20)
	require.NoError(t, e.srv.Shutdown(context.Background()))
	takeCloses(t, events, 20)
	assert.Empty(t, timers)
	readers.Wait()
	d := e.srv.opts.Drain
	assert.Equal(t, DrainOptions{BatchSize: 10_000, BatchInterval: 2 * time.Second, Timeout: 30 * time.Second}, *d)
}

// LongPoll sessions drain like WebSocket connections: while Shutdown waits
// between batches, a session not closed yet is still served (its POST is
// answered 200, not 410), one closed is gone, and a new session is refused
// with 503. Time is synctest's.
func TestShutdownDrainsLongPollSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{Drain: &DrainOptions{BatchSize: 1, BatchInterval: 2 * time.Second}})
		a, b := newLPClient(t, srv, "vsn=2.0.0"), newLPClient(t, srv, "vsn=2.0.0")
		a.open()
		b.open()
		done := make(chan error, 1)
		go func() { done <- srv.Shutdown(context.Background()) }()
		synctest.Wait() // the first batch is closed; the drain waits for the interval

		heartbeat := `[null,"1","phoenix","heartbeat",{}]`
		statuses := []int{a.post(heartbeat).Status, b.post(heartbeat).Status}
		assert.ElementsMatch(t, []int{lpOK, lpGone}, statuses, "one session closed, the other still served")
		assert.Equal(t, http.StatusServiceUnavailable, newLPClient(t, srv, "vsn=2.0.0").get().Code,
			"a new session during the drain is refused")
		select {
		case err := <-done:
			require.Failf(t, "Shutdown returned before the interval", "%v", err)
		default:
		}

		require.NoError(t, <-done) // the interval passes (synctest time)
		assert.Equal(t, lpGone, a.post(heartbeat).Status)
		assert.Equal(t, lpGone, b.post(heartbeat).Status)
	})
}
