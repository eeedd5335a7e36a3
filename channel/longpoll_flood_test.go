package channel

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/synctest"

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
	victim := lpFromClient(t, "127.0.0.2")
	resp, err := victim.Get(e.hs.URL + "/socket/other") // a 404
	if err != nil {
		t.Skipf("cannot send from 127.0.0.2 on this system: %v", err)
	}
	resp.Body.Close()
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
	assert.Equal(t, 10, e.srv.longPoll().count())
	for i := range 10 {
		_, status := lpOpen(t, victim, e.hs.URL)
		assert.Equal(t, lpGone, status, "victim session %d", i)
	}
	code, _ := lpOpen(t, victim, e.hs.URL)
	assert.Equal(t, http.StatusServiceUnavailable, code, "the victim has its own share")
	assert.Equal(t, uint64(191), e.srv.Stats().Refused)
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
	assert.Equal(t, 5, e.srv.longPoll().count())
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
		require.Equal(t, 0, srv.longPoll().count())
		newLPClient(t, srv, "vsn=2.0.0").open()
	})
}

func TestLongPollClientKeyDefaults(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:4000":              "192.0.2.7",
		"[::ffff:192.0.2.7]:4000":     "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:4000": "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9]:5000": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:4000":      "2001:db8:1:3::/64",
		"[fe80::1%eth0]:4000":         "fe80::/64",
		"@":                           "@", // a unix socket
		"not an address":              "not an address",
	} {
		assert.Equal(t, want, clientAddrKey(addr), addr)
	}
	d := (&LongPollOptions{}).withDefaults()
	assert.Equal(t, 100, d.MaxSessionsPerClient)
	d = (&LongPollOptions{MaxSessions: 10}).withDefaults()
	assert.Equal(t, 10, d.MaxSessionsPerClient, "never more than MaxSessions")
}
