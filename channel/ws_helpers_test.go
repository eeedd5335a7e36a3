package channel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pyre-go/pyre/pubsub"
	"github.com/stretchr/testify/require"
)

// testEndpoint is a Server behind an httptest server.
type testEndpoint struct {
	srv *Server
	hs  *httptest.Server
}

func newTestEndpoint(t *testing.T, opts *Options) *testEndpoint {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler) // tests that read logs set their own
	}
	if opts.Router == nil {
		opts.Router = NewRouter()
	}
	return serveTestEndpoint(t, NewServer(opts))
}

// serveTestEndpoint serves srv, which the test may have adjusted, behind
// an httptest server.
func serveTestEndpoint(t *testing.T, srv *Server) *testEndpoint {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/socket/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		hs.Close()
	})
	return &testEndpoint{srv: srv, hs: hs}
}

func (e *testEndpoint) url(query string) string {
	return "ws" + strings.TrimPrefix(e.hs.URL, "http") + "/socket/websocket?" + query
}

// wsClient is a raw WebSocket client that speaks frames as strings. A
// goroutine reads continuously (so close handshakes complete) and hands
// frames over a channel: a read with a timeout then never closes the
// connection, as a canceled coder/websocket Read would.
type wsClient struct {
	t      *testing.T
	c      *websocket.Conn
	resp   *http.Response
	frames chan string
	err    error // the read error, valid once frames is closed
}

func newWSClient(t *testing.T, c *websocket.Conn, resp *http.Response) *wsClient {
	w := &wsClient{t: t, c: c, resp: resp, frames: make(chan string, 1<<16)}
	go func() {
		defer close(w.frames)
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				w.err = err
				return
			}
			if typ == websocket.MessageBinary {
				w.frames <- "bin:" + fmt.Sprintf("%x", b)
			} else {
				w.frames <- string(b)
			}
		}
	}()
	return w
}

const testTimeout = 5 * time.Second

func (e *testEndpoint) dial(t *testing.T, query string, opts *websocket.DialOptions) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, e.url(query), opts)
	require.NoError(t, err)
	c.SetReadLimit(-1)
	w := newWSClient(t, c, resp)
	t.Cleanup(func() {
		_ = c.CloseNow()
		for range w.frames { // wait for the reader goroutine
		}
	})
	return w
}

// dialSilent dials a client that reads nothing until the test reads with
// c.Read itself: a slow consumer.
func (e *testEndpoint) dialSilent(t *testing.T, query string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.url(query), nil)
	require.NoError(t, err)
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// dialStatus attempts an upgrade and returns the HTTP status of a refusal.
func (e *testEndpoint) dialStatus(t *testing.T, query string, opts *websocket.DialOptions) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, e.url(query), opts)
	if err == nil {
		_ = c.CloseNow()
		return http.StatusSwitchingProtocols
	}
	require.NotNil(t, resp, "dial error without response: %v", err)
	return resp.StatusCode
}

func (c *wsClient) send(frame string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(c.t, c.c.Write(ctx, websocket.MessageText, []byte(frame)))
}

func (c *wsClient) sendBinary(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(c.t, c.c.Write(ctx, websocket.MessageBinary, b))
}

// read returns the next frame; binary frames are prefixed with "bin:".
func (c *wsClient) read() string {
	c.t.Helper()
	s, err := c.tryRead(testTimeout)
	require.NoError(c.t, err)
	return s
}

func (c *wsClient) tryRead(d time.Duration) (string, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case s, ok := <-c.frames:
		if !ok {
			return "", c.err
		}
		return s, nil
	case <-timer.C:
		return "", context.DeadlineExceeded
	}
}

// expect reads frames until one equals want, failing with the frames seen.
func (c *wsClient) expect(want string) {
	c.t.Helper()
	var seen []string
	for {
		s, err := c.tryRead(testTimeout)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v; saw %q", want, err, seen)
		}
		if s == want {
			return
		}
		seen = append(seen, s)
	}
}

// expectNext asserts the very next frame.
func (c *wsClient) expectNext(want string) {
	c.t.Helper()
	require.Equal(c.t, want, c.read())
}

// closeCode reads until the connection closes and returns the close code.
func (c *wsClient) closeCode() websocket.StatusCode {
	c.t.Helper()
	for {
		_, err := c.tryRead(testTimeout)
		if err != nil {
			code := websocket.CloseStatus(err)
			if code == -1 && errors.Is(err, context.DeadlineExceeded) {
				c.t.Fatalf("connection did not close: %v", err)
			}
			return code
		}
	}
}

// quiet asserts that no frame arrives within d (a bounded window: there is
// no event to wait for when asserting absence).
func (c *wsClient) quiet(d time.Duration) {
	c.t.Helper()
	s, err := c.tryRead(d)
	if err == nil {
		c.t.Fatalf("expected no frame, got %s", s)
	}
}

// join joins topic with join_ref == ref and asserts the ok reply.
func (c *wsClient) join(ref, topic, payload string) {
	c.t.Helper()
	c.send(fmt.Sprintf(`[%q,%q,%q,"phx_join",%s]`, ref, ref, topic, payload))
	c.expect(fmt.Sprintf(`[%q,%q,%q,"phx_reply",{"response":{},"status":"ok"}]`, ref, ref, topic))
}

func newBenchHTTP(srv *Server) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/socket/", srv)
	return httptest.NewServer(mux)
}

// pubsubFunc is a pubsub.Subscriber reporting event names.
type pubsubFuncSub struct{ f func(string) }

func (p *pubsubFuncSub) Deliver(m *pubsub.Message) { p.f(m.Event) }

func pubsubFunc(f func(string)) *pubsubFuncSub { return &pubsubFuncSub{f: f} }
