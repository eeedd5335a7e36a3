package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is run() on a free loopback port.
type testServer struct {
	addr string
	done chan error // receives run's result once
}

// linesWriter hands each Write to a channel (run prints one line).
type linesWriter chan string

func (w linesWriter) Write(p []byte) (int, error) {
	select {
	case w <- string(p):
	default:
	}
	return len(p), nil
}

// startServer runs the server with args; the test's cleanup stops it (if it
// has not stopped) and waits for run to return.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(linesWriter, 4)
	ts := &testServer{done: make(chan error, 1)}
	go func() { ts.done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), out, io.Discard) }()
	select {
	case line := <-out:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on http://")
		require.True(t, ok, "first line: %q", line)
		ts.addr = addr
	case err := <-ts.done:
		cancel()
		require.FailNow(t, "server did not start", "%v", err)
	case <-time.After(10 * time.Second):
		cancel()
		require.FailNow(t, "server did not print its address")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ts
}

// post sends one control request without keep-alive (no idle client
// connection outlives the test) and returns the status.
func (ts *testServer) post(t *testing.T, path, contentType string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+ts.addr+path, strings.NewReader(`{"topic":"room:lobby","event":"ev","payload":{}}`))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

// A client that sends part of its request headers and then nothing (a
// slowloris socket) is disconnected once -read-header-timeout has passed,
// instead of holding the connection for as long as it likes.
func TestSlowHeadersAreCut(t *testing.T) {
	ts := startServer(t, "-read-header-timeout", "50ms")
	c, err := net.Dial("tcp", ts.addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: "+ts.addr+"\r\nX-Slow: ")
	require.NoError(t, err)

	// The server closes the socket (EOF) after 50 ms; the 10 s deadline
	// only bounds a failing test.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		require.FailNow(t, "the server kept a socket with unfinished headers open for 10 s")
	}
	require.NoError(t, err, "want EOF")
}

func TestReadHeaderTimeoutMustBePositive(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-read-header-timeout", "0s"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "-read-header-timeout must be positive")
}

// The control API exists only with -control: a server started without it
// cannot be shut down (or made to broadcast) by any HTTP request.
func TestControlOffWithoutFlag(t *testing.T) {
	ts := startServer(t)
	for _, path := range []string{"/control/shutdown", "/control/broadcast", "/control/push"} {
		assert.Equal(t, http.StatusNotFound, ts.post(t, path, "application/json", nil), path)
	}
	select {
	case err := <-ts.done:
		require.FailNow(t, "server stopped", "%v", err)
	default:
	}
}

// A request an HTML form on any page can send (text/plain, no preflight) is
// refused, as is anything else that is not JSON.
func TestControlRefusesNonJSON(t *testing.T) {
	ts := startServer(t, "-control")
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		for _, path := range []string{"/control/shutdown", "/control/broadcast", "/control/push"} {
			assert.Equal(t, http.StatusUnsupportedMediaType, ts.post(t, path, ct, nil), "%s with Content-Type %q", path, ct)
		}
	}
}

// A browser request from another origin is refused even with a JSON body,
// whether the browser says so with Origin or with Sec-Fetch-Site; so is a
// request addressed to a non-loopback host name (DNS rebinding).
func TestControlRefusesCrossOrigin(t *testing.T) {
	ts := startServer(t, "-control")
	_, port, err := net.SplitHostPort(ts.addr)
	require.NoError(t, err)
	for name, h := range map[string]http.Header{
		"other site":          {"Origin": {"https://evil.example"}},
		"other port":          {"Origin": {"http://127.0.0.1:1"}, "Sec-Fetch-Site": {"same-site"}},
		"other port, Origin":  {"Origin": {"http://127.0.0.1:1"}},
		"null origin":         {"Origin": {"null"}},
		"fetch metadata only": {"Sec-Fetch-Site": {"cross-site"}},
		"rebound host":        {"Host": {"evil.example:" + port}, "Origin": {"http://evil.example:" + port}},
		"rebound host only":   {"Host": {"evil.example:" + port}},
	} {
		for _, path := range []string{"/control/shutdown", "/control/broadcast", "/control/push"} {
			assert.Equal(t, http.StatusForbidden, ts.post(t, path, "application/json", h), "%s: %s", name, path)
		}
	}
}

// With -control, JSON from a non-browser client (no Origin) or from the
// server's own origin is served, and /control/shutdown stops the server.
func TestControlAcceptsJSON(t *testing.T) {
	ts := startServer(t, "-control")
	assert.Equal(t, http.StatusNoContent, ts.post(t, "/control/broadcast", "application/json", nil))
	assert.Equal(t, http.StatusNoContent, ts.post(t, "/control/push", "application/json; charset=utf-8", nil))
	assert.Equal(t, http.StatusNoContent, ts.post(t, "/control/broadcast", "application/json",
		http.Header{"Origin": {"http://" + ts.addr}, "Sec-Fetch-Site": {"same-origin"}}))
	_, port, err := net.SplitHostPort(ts.addr)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, ts.post(t, "/control/broadcast", "application/json",
		http.Header{"Host": {"localhost:" + port}}))

	assert.Equal(t, http.StatusNoContent, ts.post(t, "/control/shutdown", "application/json", nil))
	select {
	case err := <-ts.done:
		require.NoError(t, err)
		ts.done <- err // for the cleanup
	case <-time.After(15 * time.Second):
		require.FailNow(t, "no shutdown after /control/shutdown")
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:4001": true, "127.0.0.1": true, "[::1]:4001": true, "::1": true,
		"localhost:4001": true, "LOCALHOST": true, "127.9.9.9:80": true,
		"evil.example:4001": false, "10.0.0.1:4001": false, "": false, "localhost.evil.example": false,
	} {
		assert.Equal(t, want, loopbackHost(host), host)
	}
}
