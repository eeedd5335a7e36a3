package channel

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// originProbe asks an endpoint over real sockets whether a WebSocket
// handshake and a LongPoll GET with the given headers get through.
type originProbe struct {
	t  *testing.T
	e  *testEndpoint
	hc *http.Client
}

func newOriginProbe(t *testing.T, opts *Options) *originProbe {
	opts.LongPoll = &LongPollOptions{}
	e := newTestEndpoint(t, opts)
	hc := e.hs.Client()
	t.Cleanup(hc.CloseIdleConnections)
	return &originProbe{t: t, e: e, hc: hc}
}

// ws returns the HTTP status of a WebSocket handshake carrying Origin
// (none when empty): 101 when it upgraded.
func (p *originProbe) ws(origin string) int {
	p.t.Helper()
	opts := &websocket.DialOptions{HTTPClient: p.hc, HTTPHeader: http.Header{}}
	if origin != "" {
		opts.HTTPHeader.Set("Origin", origin)
	}
	return p.e.dialStatus(p.t, "vsn=2.0.0", opts)
}

// lp returns the logical status of a token-less LongPoll GET (410: a
// session was created; 403: refused). hdr holds header name/value pairs;
// "Host" sets the request's Host header.
func (p *originProbe) lp(hdr ...string) int {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.e.hs.URL+"/socket/longpoll?vsn=2.0.0&", nil)
	require.NoError(p.t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := p.hc.Do(req)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	require.Equal(p.t, http.StatusOK, resp.StatusCode, string(b))
	return decodeLPAnswer(p.t, resp.StatusCode, resp.Header, string(b)).Status
}

// own is the server's own origin, e.g. http://127.0.0.1:41234, and
// ownHost its host name.
func (p *originProbe) own() string { return p.e.hs.URL }

func (p *originProbe) ownHost() string {
	u, err := url.Parse(p.e.hs.URL)
	require.NoError(p.t, err)
	return u.Hostname()
}

// TestOriginListIgnoresTheHostHeader: with AllowedOrigins set, an Origin
// whose host equals the request's Host is refused unless listed, on both
// transports (under DNS rebinding the attacker picks Host).
func TestOriginListIgnoresTheHostHeader(t *testing.T) {
	p := newOriginProbe(t, &Options{AllowedOrigins: []string{"http://good.example"}})
	for _, origin := range []string{p.own(), "https://" + p.ownHost() + ":9", "http://" + p.ownHost()} {
		assert.Equal(t, http.StatusForbidden, p.ws(origin), origin)
		assert.Equal(t, lpForbidden, p.lp("Origin", origin), origin)
	}
	// DNS rebinding: the attacker's page, its name resolved to the server.
	assert.Equal(t, http.StatusForbidden, p.ws("http://attacker.example"))
	assert.Equal(t, lpForbidden, p.lp("Origin", "http://attacker.example:80", "Host", "attacker.example"))
	// The listed origin and non-browser WebSocket clients still get in.
	assert.Equal(t, http.StatusSwitchingProtocols, p.ws("http://good.example"))
	assert.Equal(t, lpGone, p.lp("Origin", "http://good.example"))
	assert.Equal(t, http.StatusSwitchingProtocols, p.ws(""))
}

// TestOriginAllowSameOrigin: AllowSameOrigin adds the request's own
// scheme, host and port (Phoenix's :conn) to a list.
func TestOriginAllowSameOrigin(t *testing.T) {
	p := newOriginProbe(t, &Options{AllowedOrigins: []string{"http://good.example"}, AllowSameOrigin: true})
	for origin, want := range map[string]int{
		p.own():                            http.StatusSwitchingProtocols,
		"http://good.example":              http.StatusSwitchingProtocols,
		"http://" + p.ownHost() + ":1":     http.StatusForbidden, // same host, another port
		"ws://" + p.own()[len("http://"):]: http.StatusForbidden, // another scheme
		"http://evil.example":              http.StatusForbidden,
	} {
		assert.Equal(t, want, p.ws(origin), origin)
		lpWant := lpGone
		if want == http.StatusForbidden {
			lpWant = lpForbidden
		}
		assert.Equal(t, lpWant, p.lp("Origin", origin), origin)
	}
	// A LongPoll GET without Origin is the request's own origin.
	assert.Equal(t, lpGone, p.lp())
	assert.Equal(t, lpGone, p.lp("Sec-Fetch-Site", "same-origin"))
	assert.Equal(t, lpForbidden, p.lp("Sec-Fetch-Site", "cross-site"))
}

// TestOriginDefaultIsTheRequestsOwnOrigin: without a list, only an origin
// with the request's scheme, host and port gets in; before, any port and
// scheme of the same host did.
func TestOriginDefaultIsTheRequestsOwnOrigin(t *testing.T) {
	p := newOriginProbe(t, &Options{})
	for origin, want := range map[string]int{
		p.own(): http.StatusSwitchingProtocols,
		"":      http.StatusSwitchingProtocols, // non-browser client
		// Plain HTTP may sit behind a TLS-terminating proxy.
		"https://" + p.own()[len("http://"):]: http.StatusSwitchingProtocols,
		"http://" + p.ownHost() + ":1":        http.StatusForbidden,
		"http://" + p.ownHost():               http.StatusForbidden, // port 80
		"http://evil.example":                 http.StatusForbidden,
		"null":                                http.StatusForbidden,
	} {
		assert.Equal(t, want, p.ws(origin), origin)
		if origin == "" {
			continue
		}
		lpWant := lpGone
		if want == http.StatusForbidden {
			lpWant = lpForbidden
		}
		assert.Equal(t, lpWant, p.lp("Origin", origin), origin)
	}
	assert.Equal(t, lpGone, p.lp(), "non-browser LongPoll client")
	assert.Equal(t, lpGone, p.lp("Sec-Fetch-Site", "same-origin"), "same-origin GET of phoenix.js")
	assert.Equal(t, lpForbidden, p.lp("Sec-Fetch-Site", "cross-site"), "cross-site <img>")
	assert.Equal(t, lpForbidden, p.lp("Sec-Fetch-Site", "same-site"))
}

// TestOriginDefaultOverTLS: over TLS the request's scheme is https, so an
// http Origin of the same host and port is refused.
func TestOriginDefaultOverTLS(t *testing.T) {
	srv := NewServer(&Options{Router: NewRouter(), LongPoll: &LongPollOptions{}})
	hs := httptest.NewTLSServer(srv)
	hc := hs.Client()
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		require.NoError(t, srv.Close())
		hs.Close()
	})
	hostport := strings.TrimPrefix(hs.URL, "https://")
	status := func(origin string) int {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, "wss://"+hostport+"/socket/websocket?vsn=2.0.0",
			&websocket.DialOptions{HTTPClient: hc, HTTPHeader: http.Header{"Origin": {origin}}})
		if err == nil {
			_ = c.CloseNow()
			return http.StatusSwitchingProtocols
		}
		require.NotNil(t, resp, "dial error without response: %v", err)
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusSwitchingProtocols, status("https://"+hostport))
	assert.Equal(t, http.StatusForbidden, status("http://"+hostport))
}

// TestOriginLongPollGETWithoutOrigin: with a list, a LongPoll GET without
// Origin is checked by the origin it implies (its scheme and Host), and
// refused when Sec-Fetch-Site says cross-site; WebSocket handshakes without
// Origin stay allowed.
func TestOriginLongPollGETWithoutOrigin(t *testing.T) {
	p := newOriginProbe(t, &Options{AllowedOrigins: []string{"http://good.example"}})
	assert.Equal(t, lpForbidden, p.lp(), "a Host that is not listed")
	assert.Equal(t, lpForbidden, p.lp("Sec-Fetch-Site", "same-origin", "Host", "attacker.example"), "DNS rebinding")
	assert.Equal(t, lpGone, p.lp("Host", "good.example"), "the listed host")
	assert.Equal(t, lpGone, p.lp("Sec-Fetch-Site", "same-origin", "Host", "good.example"))
	assert.Equal(t, lpForbidden, p.lp("Sec-Fetch-Site", "cross-site", "Host", "good.example"), "cross-site <img>")
	assert.Equal(t, http.StatusSwitchingProtocols, p.ws(""))

	// A listed host without scheme and port lets non-browser clients in.
	q := newOriginProbe(t, &Options{AllowedOrigins: []string{"http://good.example", "//" + p.ownHost()}})
	assert.Equal(t, lpGone, q.lp())
	assert.Equal(t, lpForbidden, q.lp("Sec-Fetch-Site", "cross-site"))

	// "*" lets everything through; CheckOrigin replaces the policy.
	all := newOriginProbe(t, &Options{AllowedOrigins: []string{"*"}})
	assert.Equal(t, lpGone, all.lp("Sec-Fetch-Site", "cross-site"))
	custom := newOriginProbe(t, &Options{
		AllowedOrigins: []string{"http://good.example"},
		CheckOrigin:    func(r *http.Request) bool { return r.Header.Get("X-Test") == "yes" },
	})
	assert.Equal(t, lpGone, custom.lp("X-Test", "yes"))
	assert.Equal(t, lpForbidden, custom.lp("Origin", "http://good.example"))
}
