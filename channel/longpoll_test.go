package channel

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pyre-go/pyre/pubsub"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lpAnswer is one LongPoll HTTP answer, its JSON body decoded.
type lpAnswer struct {
	Code     int
	Header   http.Header
	Body     string
	Status   int
	Token    string
	Messages []string
}

func decodeLPAnswer(t testing.TB, code int, h http.Header, body string) *lpAnswer {
	t.Helper()
	a := &lpAnswer{Code: code, Header: h, Body: body}
	if strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		var v struct {
			Status   int      `json:"status"`
			Token    string   `json:"token"`
			Messages []string `json:"messages"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &v), "body %q", body)
		a.Status, a.Token, a.Messages = v.Status, v.Token, v.Messages
	}
	return a
}

// lpServe runs one request through h in-process (so that it can run inside
// a synctest bubble). hdr holds header name/value pairs.
func lpServe(t testing.TB, h http.Handler, ctx context.Context, method, target, body string, hdr ...string) *lpAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd).WithContext(ctx)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return decodeLPAnswer(t, w.Code, w.Result().Header, w.Body.String())
}

// lpClient speaks LongPoll to a handler the way phoenix.js 1.8 does: the
// session token appended as the last query param.
type lpClient struct {
	t     testing.TB
	h     http.Handler
	query string // connect params, e.g. "vsn=2.0.0"
	token string
}

func newLPClient(t testing.TB, h http.Handler, query string) *lpClient {
	return &lpClient{t: t, h: h, query: query}
}

func (c *lpClient) target() string {
	u := "http://example.com/socket/longpoll?" + c.query + "&"
	if c.token != "" {
		u += "token=" + url.QueryEscape(c.token)
	}
	return u
}

// open creates a session and keeps its token.
func (c *lpClient) open(hdr ...string) *lpAnswer {
	c.t.Helper()
	c.token = ""
	a := c.get(hdr...)
	require.Equal(c.t, http.StatusOK, a.Code, a.Body)
	require.Equal(c.t, lpGone, a.Status, a.Body)
	require.NotEmpty(c.t, a.Token)
	c.token = a.Token
	return a
}

func (c *lpClient) get(hdr ...string) *lpAnswer {
	c.t.Helper()
	return lpServe(c.t, c.h, context.Background(), http.MethodGet, c.target(), "", hdr...)
}

func (c *lpClient) getCtx(ctx context.Context) *lpAnswer {
	c.t.Helper()
	return lpServe(c.t, c.h, ctx, http.MethodGet, c.target(), "")
}

// post sends lines as one ndjson body.
func (c *lpClient) post(lines ...string) *lpAnswer {
	c.t.Helper()
	return lpServe(c.t, c.h, context.Background(), http.MethodPost, c.target(), strings.Join(lines, "\n"),
		"Content-Type", "application/x-ndjson")
}

// pollUntil polls until the answers hold a message equal to want and
// returns every message seen up to it.
func (c *lpClient) pollUntil(want string) []string {
	c.t.Helper()
	var seen []string
	for range 50 {
		a := c.get()
		require.Contains(c.t, []int{lpOK, lpNoContent}, a.Status, a.Body)
		for _, m := range a.Messages {
			seen = append(seen, m)
			if m == want {
				return seen
			}
		}
	}
	c.t.Fatalf("no message %s in %q", want, seen)
	return nil
}

func newLPServer(t testing.TB, opts *Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler) // tests that read logs set their own
	}
	if opts.Router == nil {
		opts.Router = roomRouter(nil)
	}
	if opts.LongPoll == nil {
		opts.LongPoll = &LongPollOptions{}
	}
	return NewServer(opts)
}

const lpJoinOK = `["1","1","room:a","phx_reply",{"response":{},"status":"ok"}]`

func TestLongPollSessionPollAndPost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")

		a := c.open()
		assert.Equal(t, `{"messages":[],"status":410,"token":"`+a.Token+`"}`, a.Body)
		assert.Equal(t, "application/json; charset=utf-8", a.Header.Get("Content-Type"))
		assert.Equal(t, "*", a.Header.Get("Access-Control-Allow-Origin"))
		assert.Equal(t, "no-store", a.Header.Get("Cache-Control"))

		p := c.post(`["1","1","room:a","phx_join",{}]`, `[null,"2","phoenix","heartbeat",{}]`)
		assert.Equal(t, `{"status":200}`, p.Body)
		assert.Equal(t, "application/json; charset=utf-8", p.Header.Get("Content-Type"))

		a = c.get()
		want := `{"messages":["[\"1\",\"1\",\"room:a\",\"phx_reply\",{\"response\":{},\"status\":\"ok\"}]",` +
			`"[null,\"2\",\"phoenix\",\"phx_reply\",{\"response\":{},\"status\":\"ok\"}]"],"status":200,"token":"` + c.token + `"}`
		assert.Equal(t, want, a.Body, "messages are JSON strings holding V2 frames")

		// Nothing queued: the poll is held for the whole window, then 204.
		start := time.Now()
		a = c.get()
		assert.Equal(t, `{"messages":[],"status":204,"token":"`+c.token+`"}`, a.Body)
		assert.Equal(t, 10*time.Second, time.Since(start), "default window")
	})
}

func TestLongPollHeldPollAnsweredWhenAMessageArrives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)

		got := make(chan *lpAnswer, 1)
		go func() { got <- c.get() }()
		synctest.Wait() // the poll is held
		start := time.Now()
		require.NoError(t, srv.Broadcast(context.Background(), "room:a", "news", map[string]int{"n": 1}))
		a := <-got
		assert.Zero(t, time.Since(start), "answered at once")
		assert.Equal(t, lpOK, a.Status)
		assert.Equal(t, []string{`[null,null,"room:a","news",{"n":1}]`}, a.Messages)
	})
}

func TestLongPollNewerPollSupersedesHeldPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)

		first := make(chan *lpAnswer, 1)
		go func() { first <- c.get() }()
		synctest.Wait()
		second := make(chan *lpAnswer, 1)
		start := time.Now()
		go func() { second <- c.get() }()
		a := <-first
		assert.Equal(t, lpNoContent, a.Status)
		assert.Zero(t, time.Since(start), "the superseded poll is answered at once")
		require.NoError(t, srv.Broadcast(context.Background(), "room:a", "news", nil))
		b := <-second
		assert.Equal(t, []string{`[null,null,"room:a","news",{}]`}, b.Messages)
	})
}

func TestLongPollAbortedPollKeepsMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.getCtx(ctx)
		}()
		synctest.Wait()
		cancel()
		<-done
		require.NoError(t, srv.Broadcast(context.Background(), "room:a", "news", nil))
		assert.Equal(t, []string{`[null,null,"room:a","news",{}]`}, c.get().Messages)
	})
}

func TestLongPollTokenLocations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{})
		defer srv.Close()
		c := newLPClient(t, srv, "token=app-token&vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)

		// The session token is the last "token" param, after the app's own.
		a := c.get()
		assert.Equal(t, lpOK, a.Status)
		assert.Equal(t, c.token, a.Token)

		// Header only (phoenix.js 1.9), and the header wins over the param.
		require.NoError(t, srv.Broadcast(context.Background(), "room:a", "x", nil))
		a = lpServe(t, srv, context.Background(), http.MethodGet, "http://example.com/socket/longpoll?vsn=2.0.0", "",
			"X-Phoenix-Longpoll-Token", c.token)
		assert.Equal(t, lpOK, a.Status, a.Body)
		assert.Equal(t, c.token, a.Token)
		require.NoError(t, srv.Broadcast(context.Background(), "room:a", "y", nil))
		a = lpServe(t, srv, context.Background(), http.MethodGet, "http://example.com/socket/longpoll?vsn=2.0.0&token=bogus", "",
			"X-Phoenix-Longpoll-Token", c.token)
		assert.Equal(t, lpOK, a.Status, a.Body)
		p := lpServe(t, srv, context.Background(), http.MethodPost, "http://example.com/socket/longpoll?vsn=2.0.0",
			`[null,"5","phoenix","heartbeat",{}]`, "X-Phoenix-Longpoll-Token", c.token)
		assert.Equal(t, lpOK, p.Status, p.Body)
	})
}

func TestLongPollConnectInfo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		infos := make(chan ConnectInfo, 4)
		srv := newLPServer(t, &Options{Connect: func(_ context.Context, info *ConnectInfo) error {
			infos <- *info
			if info.Params["refuse"] == "true" {
				return errors.New("no")
			}
			return nil
		}})
		defer srv.Close()
		c := newLPClient(t, srv, "token=abc&user%5Bid%5D=7&vsn=2.0.0")
		c.open("X-Phoenix-AuthToken", "s3cret+/=?")
		info := <-infos
		assert.Equal(t, map[string]any{"token": "abc", "user": map[string]any{"id": "7"}, "vsn": "2.0.0"}, info.Params)
		assert.Equal(t, "s3cret+/=?", info.AuthToken)
		assert.Equal(t, V2, info.Serializer)

		// A stale session token after vsn is not a connect param: the new
		// session sees the app's token.
		stale := *c
		stale.token = "1.000000000000.x.y"
		a := stale.get()
		require.Equal(t, lpGone, a.Status)
		assert.NotEqual(t, c.token, a.Token)
		assert.Equal(t, "abc", (<-infos).Params["token"])

		r := newLPClient(t, srv, "refuse=true&vsn=2.0.0").get()
		assert.Equal(t, http.StatusOK, r.Code)
		assert.Equal(t, `{"status":403}`, r.Body)
		<-infos
		assert.Equal(t, uint64(1), srv.Stats().Refused)
	})
}

func TestLongPollSerializerNegotiation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{})
		defer srv.Close()
		for _, q := range []string{"vsn=3.0.0", "vsn=2.1.0", "vsn=abc", "vsn%5B%5D=x"} {
			a := newLPClient(t, srv, q).get()
			assert.Equal(t, http.StatusOK, a.Code, q)
			assert.Equal(t, `{"status":403}`, a.Body, q)
		}
		// No vsn: V1 objects inside the message strings.
		c := newLPClient(t, srv, "x=1")
		c.open()
		c.post(`{"topic":"room:a","event":"phx_join","payload":{},"ref":"1"}`)
		c.pollUntil(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:a"}`)
	})
}

func TestLongPollCORSAndMethods(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{AllowedOrigins: []string{"https://good.example"}})
		defer srv.Close()
		a := lpServe(t, srv, context.Background(), http.MethodOptions, "http://example.com/socket/longpoll", "",
			"Access-Control-Request-Headers", "x-phoenix-authtoken", "Access-Control-Request-Headers", "content-type",
			"Origin", "https://good.example")
		assert.Equal(t, http.StatusOK, a.Code)
		assert.Empty(t, a.Body)
		assert.Equal(t, "x-phoenix-authtoken, content-type", a.Header.Get("Access-Control-Allow-Headers"))
		assert.Equal(t, "get, post, options", a.Header.Get("Access-Control-Allow-Methods"))
		assert.Equal(t, "3600", a.Header.Get("Access-Control-Max-Age"))
		assert.Equal(t, "*", a.Header.Get("Access-Control-Allow-Origin"))

		for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
			a = lpServe(t, srv, context.Background(), m, "http://example.com/socket/longpoll?vsn=2.0.0", "")
			assert.Equal(t, http.StatusBadRequest, a.Code, m)
			assert.Empty(t, a.Body, m)
		}

		for _, origin := range []string{"http://evil.example", "null"} {
			a = lpServe(t, srv, context.Background(), http.MethodGet, "http://example.com/socket/longpoll?vsn=2.0.0", "", "Origin", origin)
			assert.Equal(t, http.StatusOK, a.Code)
			assert.Equal(t, `{"status":403}`, a.Body, origin)
			assert.Equal(t, "*", a.Header.Get("Access-Control-Allow-Origin"))
		}
		a = lpServe(t, srv, context.Background(), http.MethodGet, "http://example.com/socket/longpoll?vsn=2.0.0", "", "Origin", "https://good.example")
		assert.Equal(t, lpGone, a.Status, "an allowed origin gets a session")
	})
}

func TestLongPollDisabledByDefault(t *testing.T) {
	srv := NewServer(&Options{Router: roomRouter(nil)})
	defer srv.Close()
	a := lpServe(t, srv, context.Background(), http.MethodGet, "http://example.com/socket/longpoll?vsn=2.0.0", "")
	assert.Equal(t, http.StatusNotFound, a.Code)
}

func TestLongPollUnknownAndForgedTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		node, sid, ok := srv.longPoll().Verify(c.token)
		require.True(t, ok)
		assert.Equal(t, srv.nodeID, node)
		assert.Len(t, sid, 22, "128 random bits")

		other := NewServer(&Options{Router: roomRouter(nil), LongPoll: &LongPollOptions{}})
		defer other.Close()
		foreign := other.longPoll().Sign(sid) // same session id, another key
		tampered := strings.Replace(c.token, sid, "B"+sid[1:], 1)
		if sid[0] == 'B' {
			tampered = strings.Replace(c.token, sid, "C"+sid[1:], 1)
		}
		unknown := srv.longPoll().Sign("AAAAAAAAAAAAAAAAAAAAAA")
		for _, tok := range []string{"bogus", "", tampered, foreign, unknown, "1." + srv.nodeID + "." + sid + ".", strings.Repeat("a.", 200)} {
			bad := &lpClient{t: t, h: srv, query: "vsn=2.0.0", token: tok}
			a := bad.get()
			assert.Equal(t, lpGone, a.Status, "poll with %q", tok)
			assert.NotEqual(t, c.token, a.Token)
			_, newSID, ok := srv.longPoll().Verify(a.Token)
			assert.True(t, ok)
			assert.NotEqual(t, sid, newSID)
			if tok != "" {
				assert.Equal(t, `{"status":410}`, bad.post(`[null,"1","phoenix","heartbeat",{}]`).Body, "post with %q", tok)
			}
		}
		assert.Equal(t, lpNoContent, c.get().Status, "the real session is untouched")
	})
}

func TestLongPollPostLimitsAndFormats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ps := pubsub.NewMemory(nil)
		srv := newLPServer(t, &Options{PubSub: ps})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)

		// 101 lines: only the first 100 are handled.
		lines := make([]string, 101)
		for i := range lines {
			lines[i] = fmt.Sprintf(`[null,"h%d","phoenix","heartbeat",{}]`, i+1)
		}
		assert.Equal(t, lpOK, c.post(lines...).Status)
		assert.Equal(t, lpOK, c.post(`[null,"marker","phoenix","heartbeat",{}]`).Status)
		seen := c.pollUntil(`[null,"marker","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
		require.Len(t, seen, 101)
		for i, m := range seen[:100] {
			assert.Equal(t, fmt.Sprintf(`[null,"h%d","phoenix","phx_reply",{"response":{},"status":"ok"}]`, i+1), m)
		}

		// CRLF line ends, and a binary push as a base64 line (kind 0).
		events := make(chan *pubsub.Message, 4)
		var sub pubsub.SubscriberFunc = func(m *pubsub.Message) { events <- m }
		require.NoError(t, ps.Subscribe(context.Background(), "room:a", &sub))
		bin := []byte{0, 1, 1, 6, 5, '1', '7', 'r', 'o', 'o', 'm', ':', 'a', 'b', 'c', 'a', 's', 't', 1, 2}
		body := `[null,"c1","phoenix","heartbeat",{}]` + "\r\n" + base64.StdEncoding.EncodeToString(bin)
		a := lpServe(t, srv, context.Background(), http.MethodPost, c.target(), body, "Content-Type", "application/x-ndjson")
		assert.Equal(t, lpOK, a.Status, a.Body)
		m := <-events
		assert.True(t, m.Binary)
		assert.Equal(t, "bcast", m.Event)
		assert.Equal(t, []byte{1, 2}, m.Payload)
		seen = c.pollUntil(`["1","7","room:a","phx_reply",{"response":{},"status":"ok"}]`)
		assert.Contains(t, seen, `[null,"c1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
		assert.NotContains(t, strings.Join(seen, ""), "bcast", "the binary broadcast is not sent over LongPoll")

		// Another content type: the body is one frame, newlines included.
		a = lpServe(t, srv, context.Background(), http.MethodPost, c.target(), "[null,\"j1\",\n\"phoenix\",\"heartbeat\",{}]",
			"Content-Type", "application/json")
		assert.Equal(t, lpOK, a.Status, a.Body)
		c.pollUntil(`[null,"j1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	})
}

func TestLongPollMalformedLineClosesSession(t *testing.T) {
	for _, line := range []string{`["1","2","room:a"]`, `{not json`, `!!!not base64`, base64.StdEncoding.EncodeToString([]byte{1, 0, 0, 0, 0})} {
		t.Run(line, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				term := make(chan error, 1)
				srv := newLPServer(t, &Options{Router: roomRouter(term)})
				defer srv.Close()
				c := newLPClient(t, srv, "vsn=2.0.0")
				c.open()
				c.post(`["1","1","room:a","phx_join",{}]`)
				c.pollUntil(lpJoinOK)
				a := c.post(`[null,"2","phoenix","heartbeat",{}]`, line, `[null,"3","phoenix","heartbeat",{}]`)
				assert.Equal(t, `{"status":400}`, a.Body)
				require.ErrorIs(t, <-term, ErrConnClosed)
				assert.Equal(t, uint64(1), srv.Stats().Malformed)
				a = c.get()
				assert.Equal(t, lpGone, a.Status)
				assert.NotEqual(t, c.token, a.Token, "a new session")
			})
		})
	}
}

func TestLongPollBodyAndLineLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		term := make(chan error, 2)
		srv := newLPServer(t, &Options{Router: roomRouter(term), MaxFrameSize: 100, LongPoll: &LongPollOptions{MaxBodyBytes: 300}})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)
		a := c.post(`["1","2","room:a","echo",{"x":"` + strings.Repeat("y", 100) + `"}]`)
		assert.Equal(t, `{"status":413}`, a.Body, "line over MaxFrameSize")
		require.ErrorIs(t, <-term, ErrConnClosed)

		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)
		lines := make([]string, 10)
		for i := range lines {
			lines[i] = `[null,"1","phoenix","heartbeat",{}]`
		}
		assert.Equal(t, `{"status":413}`, c.post(lines...).Body, "body over MaxBodyBytes")
		require.ErrorIs(t, <-term, ErrConnClosed)
		assert.Equal(t, lpGone, c.get().Status)
	})
}

func TestLongPollPostTimesOutWhenALineIsNotAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{MailboxSize: 1, LongPoll: &LongPollOptions{Window: time.Second, IdleTimeout: time.Hour}})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)
		// block holds the channel, echo fills its mailbox, and the next echo
		// cannot be accepted.
		start := time.Now()
		a := c.post(`["1","2","room:a","block",{}]`, `["1","3","room:a","echo",{}]`, `["1","4","room:a","echo",{}]`)
		assert.Equal(t, `{"status":408}`, a.Body)
		assert.Equal(t, time.Second, time.Since(start), "one window")
		// A later POST waits for the session's inbound side and times out too.
		assert.Equal(t, lpTimeout, c.post(`[null,"5","phoenix","heartbeat",{}]`).Status)
	})
}

func TestLongPollIdleSessionIsReaped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		term := make(chan error, 1)
		srv := newLPServer(t, &Options{Router: roomRouter(term)})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)
		// Polling keeps the session: 40 s of back-to-back polls.
		for range 4 {
			assert.Equal(t, lpNoContent, c.get().Status)
		}
		assert.Equal(t, 1, srv.Subscribers("room:a"))
		last := time.Now()
		require.ErrorIs(t, <-term, ErrConnClosed)
		assert.Equal(t, 15*time.Second, time.Since(last), "1.5 × window without a poll")
		synctest.Wait() // the session finishes
		assert.Zero(t, srv.Subscribers("room:a"))
		assert.Zero(t, srv.Stats().Connections)
		a := c.get()
		assert.Equal(t, lpGone, a.Status)
		assert.NotEqual(t, c.token, a.Token)
	})
}

func TestLongPollQueueOverflowIsSlowConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		term := make(chan error, 1)
		srv := newLPServer(t, &Options{Router: roomRouter(term), LongPoll: &LongPollOptions{MaxQueuedMessages: 3}})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)
		for i := range 3 {
			require.NoError(t, srv.Broadcast(context.Background(), "room:a", "n", map[string]int{"i": i}))
		}
		assert.Zero(t, srv.Stats().SlowClosed, "three fit")
		require.NoError(t, srv.Broadcast(context.Background(), "room:a", "n", map[string]int{"i": 3}))
		require.ErrorIs(t, <-term, ErrConnClosed)
		assert.Equal(t, uint64(1), srv.Stats().SlowClosed)
		a := c.get()
		assert.Equal(t, lpGone, a.Status, "the queue is gone with the session")
		assert.NotEqual(t, c.token, a.Token)

		// Bytes are bounded by Options.MaxQueueBytes.
		srv2 := newLPServer(t, &Options{Router: roomRouter(term), MaxQueueBytes: 100})
		defer srv2.Close()
		c2 := newLPClient(t, srv2, "vsn=2.0.0")
		c2.open()
		c2.post(`["1","1","room:a","phx_join",{}]`)
		c2.pollUntil(lpJoinOK)
		require.NoError(t, srv2.Broadcast(context.Background(), "room:a", "n", map[string]string{"x": strings.Repeat("x", 60)}))
		require.NoError(t, srv2.Broadcast(context.Background(), "room:a", "n", map[string]string{"x": strings.Repeat("x", 60)}))
		require.ErrorIs(t, <-term, ErrConnClosed)
		assert.Equal(t, uint64(1), srv2.Stats().SlowClosed)
	})
}

func TestLongPollBinaryFramesAreDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)
		bin := base64.StdEncoding.EncodeToString([]byte{0, 1, 1, 6, 3, '1', '2', 'r', 'o', 'o', 'm', ':', 'a', 'b', 'i', 'n', 1, 2})
		assert.Equal(t, lpOK, c.post(bin, `["1","3","room:a","echo",{"after":true}]`).Status)
		synctest.Wait() // the channel handled both
		require.NoError(t, srv.Broadcast(context.Background(), "room:a", "blob", Binary{9}))
		require.NoError(t, srv.Broadcast(context.Background(), "room:a", "text", nil))
		seen := c.pollUntil(`[null,null,"room:a","text",{}]`)
		assert.Equal(t, []string{`["1","3","room:a","phx_reply",{"response":{"after":true},"status":"ok"}]`, `[null,null,"room:a","text",{}]`}, seen,
			"the binary reply, push and broadcast are dropped; text frames go on")
	})
}

func TestLongPollMaxSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newLPServer(t, &Options{LongPoll: &LongPollOptions{MaxSessions: 2}})
		defer srv.Close()
		a := newLPClient(t, srv, "vsn=2.0.0")
		a.open()
		b := newLPClient(t, srv, "vsn=2.0.0")
		b.open()
		r := newLPClient(t, srv, "vsn=2.0.0").get()
		assert.Equal(t, http.StatusServiceUnavailable, r.Code)
		assert.Empty(t, r.Body, "phoenix.js takes an empty body like a network error and reconnects")
		assert.Equal(t, "1", r.Header.Get("Retry-After"))
		assert.Equal(t, uint64(1), srv.Stats().Refused)
		// a reconnects: its session is replaced when the old one is reaped.
		assert.Equal(t, lpNoContent, b.get().Status)
		time.Sleep(5*time.Second + time.Millisecond) // fake time: a has not polled for 15 s now
		synctest.Wait()
		assert.Equal(t, 1, srv.longPoll().Count())
		newLPClient(t, srv, "vsn=2.0.0").open()
	})
}

func TestLongPollDisconnectBroadcastClosesSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		term := make(chan error, 1)
		srv := newLPServer(t, &Options{Router: roomRouter(term), Connect: func(_ context.Context, info *ConnectInfo) error {
			info.ID = "users:7"
			return nil
		}})
		defer srv.Close()
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)
		held := make(chan *lpAnswer, 1)
		go func() { held <- c.get() }()
		synctest.Wait()
		require.NoError(t, srv.Broadcast(context.Background(), "users:7", "disconnect", nil))
		a := <-held
		assert.Equal(t, `{"messages":[],"status":410,"token":"`+c.token+`"}`, a.Body,
			"the held poll learns at once that its session is gone")
		require.ErrorIs(t, <-term, ErrConnClosed)
	})
}

func TestLongPollShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		term := make(chan error, 1)
		srv := newLPServer(t, &Options{Router: roomRouter(term)})
		c := newLPClient(t, srv, "vsn=2.0.0")
		c.open()
		c.post(`["1","1","room:a","phx_join",{}]`)
		c.pollUntil(lpJoinOK)
		held := make(chan *lpAnswer, 1)
		go func() { held <- c.get() }()
		synctest.Wait()
		require.NoError(t, srv.Shutdown(context.Background()))
		assert.Equal(t, lpGone, (<-held).Status)
		require.ErrorIs(t, <-term, ErrConnClosed)
		r := newLPClient(t, srv, "vsn=2.0.0").get()
		assert.Equal(t, http.StatusServiceUnavailable, r.Code)
		assert.Equal(t, lpGone, c.post(`[null,"1","phoenix","heartbeat",{}]`).Status)
	})
}

func TestLongPollOptionsDefaults(t *testing.T) {
	d := (*LongPollOptions)(nil).withDefaults()
	assert.Equal(t, 10*time.Second, d.Window)
	assert.Equal(t, 15*time.Second, d.IdleTimeout)
	assert.Equal(t, 2*time.Second, d.PubSubTimeout)
	assert.Equal(t, 10_000, d.MaxSessions)
	assert.Equal(t, 1_000, d.MaxQueuedMessages)
	assert.Equal(t, int64(8_000_000), d.MaxBodyBytes)
	assert.Equal(t, 3*time.Second, (&LongPollOptions{Window: 2 * time.Second}).withDefaults().IdleTimeout)
}

// TestLongPollOverHTTP runs a session over a real HTTP server next to a
// WebSocket client of the same topic.
func TestLongPollOverHTTP(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), LongPoll: &LongPollOptions{}})
	ws := e.dial(t, "vsn=2.0.0", nil)
	ws.join("1", "room:a", "{}")
	base := e.hs.URL + "/socket/longpoll?vsn=2.0.0&"
	do := func(method, u, body string) *lpAnswer {
		t.Helper()
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := e.hs.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return decodeLPAnswer(t, resp.StatusCode, resp.Header, string(b))
	}
	a := do(http.MethodGet, base, "")
	require.Equal(t, lpGone, a.Status)
	u := base + "token=" + url.QueryEscape(a.Token)
	bin := base64.StdEncoding.EncodeToString([]byte{0, 1, 1, 6, 5, '1', '3', 'r', 'o', 'o', 'm', ':', 'a', 'b', 'c', 'a', 's', 't', 1, 2})
	require.Equal(t, lpOK, do(http.MethodPost, u, `["1","1","room:a","phx_join",{}]`+"\n"+`["1","2","room:a","bcast",{"t":1}]`+"\n"+bin).Status)
	ws.expect(`[null,null,"room:a","bcast",{"t":1}]`)
	ws.expectNext("bin:" + fmt.Sprintf("%x", append(append([]byte{2, 6, 5}, "room:abcast"...), 1, 2)))
	var got []string
	for len(got) < 3 {
		a := do(http.MethodGet, u, "")
		require.Contains(t, []int{lpOK, lpNoContent}, a.Status)
		got = append(got, a.Messages...)
	}
	assert.Equal(t, []string{
		lpJoinOK,
		`[null,null,"room:a","bcast",{"t":1}]`,
		`["1","2","room:a","phx_reply",{"response":{},"status":"ok"}]`,
	}, got[:3])
}

// Two nodes: two Servers sharing one PubSub and one Secret, so a request
// landing on the node that does not own its session is forwarded.
func newLPNodes(t *testing.T, ps pubsub.PubSub, lp LongPollOptions, term chan error) (a, b *Server) {
	t.Helper()
	lp.Secret = []byte("0123456789abcdef0123456789abcdef")
	la, lb := lp, lp
	a = NewServer(&Options{Router: roomRouter(term), PubSub: ps, LongPoll: &la})
	b = NewServer(&Options{Router: roomRouter(term), PubSub: ps, LongPoll: &lb})
	require.NotEqual(t, a.nodeID, b.nodeID)
	return a, b
}

func TestLongPollRoutesToTheOwningNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ps := pubsub.NewMemory(nil)
		defer ps.Close()
		a, b := newLPNodes(t, ps, LongPollOptions{}, nil)
		defer a.Close()
		defer b.Close()
		onA := newLPClient(t, a, "vsn=2.0.0")
		onA.open()
		onB := &lpClient{t: t, h: b, query: "vsn=2.0.0", token: onA.token}

		assert.Equal(t, `{"status":200}`, onB.post(`["1","1","room:a","phx_join",{}]`).Body)
		assert.Equal(t, 1, a.Subscribers("room:a"), "the channel runs on the owner")
		assert.Zero(t, b.Subscribers("room:a"))
		assert.Zero(t, b.longPoll().Count())
		seen := onB.pollUntil(lpJoinOK)
		assert.Equal(t, lpJoinOK, seen[0])

		// A poll held through B is answered when a message reaches A.
		held := make(chan *lpAnswer, 1)
		go func() { held <- onB.get() }()
		synctest.Wait()
		require.NoError(t, a.Broadcast(context.Background(), "room:a", "news", map[string]int{"n": 1}))
		h := <-held
		assert.Equal(t, `{"messages":["[null,null,\"room:a\",\"news\",{\"n\":1}]"],"status":200,"token":"`+onA.token+`"}`, h.Body)

		// An idle forwarded poll ends with the window.
		start := time.Now()
		assert.Equal(t, lpNoContent, onB.get().Status)
		assert.Equal(t, 10*time.Second, time.Since(start))

		// Polls through B keep the session on A alive.
		for range 3 {
			assert.Equal(t, lpNoContent, onB.get().Status)
		}
		assert.Equal(t, 1, a.longPoll().Count())
	})
}

func TestLongPollForwardedPollCanceledKeepsMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ps := pubsub.NewMemory(nil)
		defer ps.Close()
		a, b := newLPNodes(t, ps, LongPollOptions{}, nil)
		defer a.Close()
		defer b.Close()
		onA := newLPClient(t, a, "vsn=2.0.0")
		onA.open()
		onA.post(`["1","1","room:a","phx_join",{}]`)
		onA.pollUntil(lpJoinOK)
		onB := &lpClient{t: t, h: b, query: "vsn=2.0.0", token: onA.token}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			onB.getCtx(ctx)
		}()
		synctest.Wait()
		cancel()
		<-done
		synctest.Wait() // the cancel reached A
		require.NoError(t, a.Broadcast(context.Background(), "room:a", "news", nil))
		assert.Equal(t, []string{`[null,null,"room:a","news",{}]`}, onA.get().Messages)
	})
}

func TestLongPollOwnerGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ps := pubsub.NewMemory(nil)
		defer ps.Close()
		term := make(chan error, 1)
		a, b := newLPNodes(t, ps, LongPollOptions{}, term)
		defer b.Close()

		// The owner is up but the session is gone: it says so at once.
		onB := &lpClient{t: t, h: b, query: "vsn=2.0.0", token: a.longPoll().Sign("AAAAAAAAAAAAAAAAAAAAAA")}
		start := time.Now()
		assert.Equal(t, `{"status":410}`, onB.post(`[null,"1","phoenix","heartbeat",{}]`).Body)
		r := onB.get()
		assert.Zero(t, time.Since(start))
		require.Equal(t, lpGone, r.Status)
		node, _, ok := b.longPoll().Verify(r.Token)
		require.True(t, ok)
		assert.Equal(t, b.nodeID, node, "a new session on the node that got the poll")

		// The owner node is closed: the asker waits PubSubTimeout, as for a
		// node that crashed.
		onA := newLPClient(t, a, "vsn=2.0.0")
		onA.open()
		onA.post(`["1","1","room:a","phx_join",{}]`)
		require.NoError(t, a.Close())
		require.ErrorIs(t, <-term, ErrConnClosed)
		onB = &lpClient{t: t, h: b, query: "vsn=2.0.0", token: onA.token}
		start = time.Now()
		assert.Equal(t, `{"status":410}`, onB.post(`[null,"1","phoenix","heartbeat",{}]`).Body)
		assert.Equal(t, 2*time.Second, time.Since(start))
		start = time.Now()
		r = onB.get()
		assert.Equal(t, 2*time.Second, time.Since(start))
		require.Equal(t, lpGone, r.Status)
		node, _, _ = b.longPoll().Verify(r.Token)
		assert.Equal(t, b.nodeID, node)

		// A node id nobody has.
		onGhost := &lpClient{t: t, h: b, query: "vsn=2.0.0", token: b.longPoll().SignAs("0badc0ffee00", "AAAAAAAAAAAAAAAAAAAAAA")}
		start = time.Now()
		assert.Equal(t, lpGone, onGhost.get().Status)
		assert.Equal(t, 2*time.Second, time.Since(start))
	})
}

func TestLongPollForwardedPostTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ps := pubsub.NewMemory(nil)
		defer ps.Close()
		lp := LongPollOptions{Window: time.Second, IdleTimeout: time.Hour}
		la, lb := lp, lp
		la.Secret = []byte("0123456789abcdef0123456789abcdef")
		lb.Secret = la.Secret
		a := NewServer(&Options{Router: roomRouter(nil), PubSub: ps, LongPoll: &la, MailboxSize: 1})
		b := NewServer(&Options{Router: roomRouter(nil), PubSub: ps, LongPoll: &lb})
		defer a.Close()
		defer b.Close()
		onA := newLPClient(t, a, "vsn=2.0.0")
		onA.open()
		onB := &lpClient{t: t, h: b, query: "vsn=2.0.0", token: onA.token}
		assert.Equal(t, lpOK, onB.post(`["1","1","room:a","phx_join",{}]`).Status)
		a2 := onB.post(`["1","2","room:a","block",{}]`, `["1","3","room:a","echo",{}]`, `["1","4","room:a","echo",{}]`)
		assert.Equal(t, `{"status":408}`, a2.Body)
		assert.Equal(t, `{"status":400}`, onB.post(`nonsense!`).Body, "a forwarded malformed line")
	})
}

// TestLongPollTwoNodesOverHTTP is the load-balancer case end to end: a
// client whose requests alternate between two real HTTP servers.
func TestLongPollTwoNodesOverHTTP(t *testing.T) {
	ps := pubsub.NewMemory(nil)
	defer ps.Close()
	a, b := newLPNodes(t, ps, LongPollOptions{}, nil)
	hs := []*httptest.Server{newBenchHTTP(a), newBenchHTTP(b)}
	defer func() {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
		hs[0].Close()
		hs[1].Close()
	}()
	var mu sync.Mutex
	n := 0
	do := func(method, query, body string) *lpAnswer {
		t.Helper()
		mu.Lock()
		h := hs[n%2] // round robin, no stickiness
		n++
		mu.Unlock()
		req, err := http.NewRequest(method, h.URL+"/socket/longpoll?vsn=2.0.0&"+query, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := h.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		buf, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return decodeLPAnswer(t, resp.StatusCode, resp.Header, string(buf))
	}
	tok := do(http.MethodGet, "", "").Token
	q := "token=" + url.QueryEscape(tok)
	require.Equal(t, lpOK, do(http.MethodPost, q, `["1","1","room:a","phx_join",{}]`).Status)
	var got []string
	for i := 0; i < 20 && len(got) < 11; i++ {
		if i < 10 {
			require.Equal(t, lpOK, do(http.MethodPost, q, fmt.Sprintf(`["1","p%d","room:a","echo",{"i":%d}]`, i, i)).Status)
		}
		a := do(http.MethodGet, q, "")
		require.Contains(t, []int{lpOK, lpNoContent}, a.Status, a.Body)
		assert.Equal(t, tok, a.Token)
		got = append(got, a.Messages...)
	}
	require.Len(t, got, 11)
	assert.Equal(t, lpJoinOK, got[0])
	for i, m := range got[1:] {
		assert.Equal(t, fmt.Sprintf(`["1","p%d","room:a","phx_reply",{"response":{"i":%d},"status":"ok"}]`, i, i), m)
	}
}

// BenchmarkLongPollRoundTrip measures one POST of a heartbeat and the poll
// that collects its reply, in-process (no network).
func BenchmarkLongPollRoundTrip(b *testing.B) {
	srv := newLPServer(b, &Options{})
	defer srv.Close()
	c := newLPClient(b, srv, "vsn=2.0.0")
	c.open()
	b.ReportAllocs()
	for b.Loop() {
		if c.post(`[null,"1","phoenix","heartbeat",{}]`).Status != lpOK {
			b.Fatal("post failed")
		}
		if a := c.get(); a.Status != lpOK || len(a.Messages) != 1 {
			b.Fatalf("poll: %s", a.Body)
		}
	}
}

// BenchmarkLongPollIdleSessions reports the heap held by idle sessions, each
// with one joined channel.
func BenchmarkLongPollIdleSessions(b *testing.B) {
	srv := newLPServer(b, &Options{LongPoll: &LongPollOptions{IdleTimeout: time.Hour, MaxSessionsPerClient: 1000}})
	defer func() { _ = srv.Close() }()
	const n = 1000
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n {
			c := newLPClient(b, srv, "vsn=2.0.0")
			c.open()
			c.post(`["1","1","room:a","phx_join",{}]`)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.StopTimer()
		require.NoError(b, srv.Close())
		srv = newLPServer(b, &Options{LongPoll: &LongPollOptions{IdleTimeout: time.Hour, MaxSessionsPerClient: 1000}})
		b.StartTimer()
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/session")
}
