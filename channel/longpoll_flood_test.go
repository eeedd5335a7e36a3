package channel

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lpFromClient is an HTTP client whose connections leave from local
// address ip, so that the server sees another remote address.
func lpFromClient(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// lpOtherClient is an HTTP client from 127.0.0.2, another address than
// the default client's; the test is skipped where it cannot send from
// there.
func lpOtherClient(t *testing.T, base string) *http.Client {
	t.Helper()
	hc := lpFromClient(t, "127.0.0.2")
	resp, err := hc.Get(base + "/socket/other") // a 404
	if err != nil {
		t.Skipf("cannot send from 127.0.0.2 on this system: %v", err)
	}
	resp.Body.Close()
	return hc
}

// lpOpen sends a token-less LongPoll GET and returns the HTTP status and
// the logical one (410 when a session was created).
func lpOpen(t *testing.T, hc *http.Client, base string, hdr ...string) (code, status int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/socket/longpoll?vsn=2.0.0&", nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, decodeLPAnswer(t, resp.StatusCode, resp.Header, string(b)).Status
}

// TestLongPollFloodFromOneAddressLocksOnlyItOut: one address opening
// sessions far beyond its share is refused, and another address still
// gets sessions while the flood's sessions live. Before the share existed
// the flood took all MaxSessions and every other client got 503.
func TestLongPollFloodFromOneAddressLocksOnlyItOut(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), LongPoll: &LongPollOptions{MaxSessions: 40, MaxSessionsPerClient: 10}})
	flooder := lpFromClient(t, "127.0.0.1")
	victim := lpOtherClient(t, e.hs.URL)
	refused := 0
	for range 200 {
		code, status := lpOpen(t, flooder, e.hs.URL)
		if code == http.StatusServiceUnavailable {
			refused++
			continue
		}
		require.Equal(t, lpGone, status)
	}
	assert.Equal(t, 190, refused, "the flooder gets its share of 10 sessions")
	assert.Equal(t, 10, e.srv.longPoll().Count())
	for i := range 10 {
		_, status := lpOpen(t, victim, e.hs.URL)
		assert.Equal(t, lpGone, status, "victim session %d", i)
	}
	code, _ := lpOpen(t, victim, e.hs.URL)
	assert.Equal(t, http.StatusServiceUnavailable, code, "the victim has its own share")
	assert.Equal(t, uint64(191), e.srv.Stats().Refused)
}

// TestLongPollDefaultShare: with the defaults one address holds at most
// 100 sessions.
func TestLongPollDefaultShare(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), LongPoll: &LongPollOptions{}})
	flooder := lpFromClient(t, "127.0.0.1")
	victim := lpOtherClient(t, e.hs.URL)
	opened := 0
	for range 150 {
		if code, _ := lpOpen(t, flooder, e.hs.URL); code == http.StatusOK {
			opened++
		}
	}
	assert.Equal(t, 100, opened)
	_, status := lpOpen(t, victim, e.hs.URL)
	assert.Equal(t, lpGone, status)
}

// TestLongPollClientKeyShares: behind a proxy the app keys clients itself;
// the total MaxSessions cap still holds across keys.
func TestLongPollClientKeyShares(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), LongPoll: &LongPollOptions{
		MaxSessions:          5,
		MaxSessionsPerClient: 2,
		ClientKey:            func(r *http.Request) string { return r.Header.Get("X-Client") },
	}})
	hc := e.hs.Client()
	t.Cleanup(hc.CloseIdleConnections)
	open := func(client string) int {
		code, status := lpOpen(t, hc, e.hs.URL, "X-Client", client)
		if code != http.StatusOK {
			return code
		}
		return status
	}
	for range 50 {
		open("flooder")
	}
	assert.Equal(t, lpGone, open("a"))
	assert.Equal(t, lpGone, open("a"))
	assert.Equal(t, http.StatusServiceUnavailable, open("a"), "a's share is 2")
	// An empty key falls back to the remote address (127.0.0.1 here).
	assert.Equal(t, lpGone, open(""))
	assert.Equal(t, http.StatusServiceUnavailable, open("b"), "MaxSessions 5 reached")
	assert.Equal(t, 5, e.srv.longPoll().Count())
}

// TestLongPollClientShareIsGivenBack: a closed session frees its client's
// share.
func TestLongPollClientShareIsGivenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{LongPoll: &LongPollOptions{MaxSessionsPerClient: 1},
			Connect: func(_ context.Context, info *ConnectInfo) error {
				info.ID = "users:1"
				return nil
			}})
		defer srv.Close()
		newLPClient(t, srv, "vsn=2.0.0").open()
		r := newLPClient(t, srv, "vsn=2.0.0").get()
		require.Equal(t, http.StatusServiceUnavailable, r.Code)
		require.NoError(t, srv.Broadcast(context.Background(), "users:1", "disconnect", map[string]any{}))
		synctest.Wait()
		require.Equal(t, 0, srv.longPoll().Count())
		newLPClient(t, srv, "vsn=2.0.0").open()
	})
}

func TestLongPollSessionsPerClientDefault(t *testing.T) {
	d := (&LongPollOptions{}).withDefaults()
	assert.Equal(t, 100, d.MaxSessionsPerClient)
	d = (&LongPollOptions{MaxSessions: 10}).withDefaults()
	assert.Equal(t, 10, d.MaxSessionsPerClient, "never more than MaxSessions")
}

// lpSessionGoroutines counts the goroutines running a method of one of
// the open sessions of srv (told apart from other tests' sessions by the
// receiver pointer in the stack trace).
func lpSessionGoroutines(srv *Server) int {
	var receivers []string
	for _, ss := range srv.longPoll().OpenSessions() {
		receivers = append(receivers, fmt.Sprintf("(%p", ss))
	}
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if strings.Contains(line, "longpoll.(*Session).") && !strings.HasPrefix(line, "created by") &&
				slices.ContainsFunc(receivers, func(r string) bool { return strings.Contains(line, r) }) {
				count++
				break
			}
		}
	}
	return count
}

// TestLongPollUnusedSessionsHoldNoGoroutine: a session opened by one GET
// and never used costs no goroutine, so a flood of them costs memory only
// (before, each held one for IdleTimeout).
func TestLongPollUnusedSessionsHoldNoGoroutine(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), LongPoll: &LongPollOptions{}})
	hc := e.hs.Client()
	t.Cleanup(hc.CloseIdleConnections)
	for range 20 {
		_, status := lpOpen(t, hc, e.hs.URL)
		require.Equal(t, lpGone, status)
	}
	assert.Equal(t, 20, e.srv.longPoll().Count())
	assert.Equal(t, 0, lpSessionGoroutines(e.srv))
}

// TestLongPollFeedEndsBetweenPosts: the goroutine that hands POSTed lines
// to the connection ends once the POST is done; later POSTs start it
// again, and an unused session is still reaped after IdleTimeout.
func TestLongPollFeedEndsBetweenPosts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		idle := newLPClient(t, srv, "vsn=2.0.0")
		idle.open()
		synctest.Wait()
		assert.Equal(t, 0, lpSessionGoroutines(srv))
		require.Equal(t, lpOK, c.post(`["1","1","room:a","phx_join",{}]`).Status)
		synctest.Wait()
		assert.Equal(t, 0, lpSessionGoroutines(srv), "feed ended")
		require.Equal(t, lpOK, c.post(`["1","2","room:a","bcast",{"n":1}]`).Status)
		c.pollUntil(`["1","2","room:a","phx_reply",{"response":{},"status":"ok"}]`)
		time.Sleep(10 * time.Second) // fake time: idle has not polled for 10 s, c polls
		c.get()
		time.Sleep(5*time.Second + time.Millisecond)
		synctest.Wait()
		assert.Equal(t, 1, srv.longPoll().Count(), "the idle session was reaped")
		assert.Equal(t, lpGone, idle.get().Status, "and its token is gone")
	})
}

// BenchmarkLongPollUnusedSessions reports what a session costs that was
// opened by one token-less GET and never used: heap and goroutines.
func BenchmarkLongPollUnusedSessions(b *testing.B) {
	const n = 1000
	var before, after runtime.MemStats
	var g0, g1 int
	for b.Loop() {
		b.StopTimer()
		srv := newLPServer(b, &Options{LongPoll: &LongPollOptions{MaxSessionsPerClient: n}})
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 = runtime.NumGoroutine()
		b.StartTimer()
		for range n {
			newLPClient(b, srv, "vsn=2.0.0").open()
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		g1 = runtime.NumGoroutine()
		require.NoError(b, srv.Close())
		b.StartTimer()
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/session")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/n, "stack-bytes/session")
	b.ReportMetric(float64(g1-g0)/n, "goroutines/session")
}
