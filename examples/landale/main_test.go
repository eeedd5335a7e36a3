package main

import (
	"bufio"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyre-go/pyre/pubsub/pubsuburl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:7175", c.addr)
	assert.True(t, c.demo)
	assert.Equal(t, 2.0, c.demoRate)
	assert.Equal(t, "memory", c.pubsub)
	assert.Equal(t, sim.DefaultSlowDelay, c.slow)
	assert.Empty(t, c.simulate)

	c, err = parseFlags([]string{"-addr", ":0", "-demo=false", "-demo-rate", "5", "-simulate", "obs=down,nurvus=slow", "-slow", "50ms"})
	require.NoError(t, err)
	assert.False(t, c.demo)
	assert.Equal(t, 5.0, c.demoRate)
	assert.Equal(t, map[string]sim.Mode{"obs": sim.Down, "nurvus": sim.Slow}, c.simulate)
	assert.Equal(t, 50*time.Millisecond, c.slow)

	for _, bad := range [][]string{{"-simulate", "obs=sideways"}, {"-demo-rate", "0"}, {"extra"}, {"-nope"}} {
		_, err := parseFlags(bad)
		assert.Error(t, err, bad)
	}
}

func TestNewPubSub(t *testing.T) {
	for _, spec := range []string{"", "memory"} {
		ps, err := newPubSub(spec, nil)
		require.NoError(t, err)
		require.NotNil(t, ps)
		require.NoError(t, ps.Close())
	}
	_, err := newPubSub("carrier-pigeon://coop", nil)
	assert.ErrorIs(t, err, pubsuburl.ErrUnknownScheme)
}

func TestWebFSIsEmbedded(t *testing.T) {
	_, err := fs.ReadDir(webFS(), ".")
	assert.NoError(t, err, "the pages directory is embedded")
}

func TestRunServesAndShutsDownOnSignal(t *testing.T) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"-addr", "127.0.0.1:0", "-demo-rate", "50", "-simulate", "twitch=failing"}, pw)
		_ = pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	require.True(t, lines.Scan())
	first := lines.Text()
	require.True(t, strings.HasPrefix(first, "landale (pyre) listening on http://127.0.0.1:"), first)
	base := strings.TrimPrefix(first, "landale (pyre) listening on ")
	var printed []string
	for i := 0; i < 3 && lines.Scan(); i++ {
		printed = append(printed, strings.TrimSpace(lines.Text()))
	}
	assert.Equal(t, []string{"overlay:   " + base + "/overlay.html", "dashboard: " + base + "/dashboard.html",
		"socket:    ws://" + strings.TrimPrefix(base, "http://") + "/socket/websocket"}, printed)
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	resp, err := http.Get(base + "/api/status")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(body), `"twitch":{"breaker":`)
	assert.Contains(t, string(body), `"mode":"failing"`)

	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGINT))
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after SIGINT")
	}
}

func TestHTTPServerTimeouts(t *testing.T) {
	hs := newHTTPServer(http.NotFoundHandler())
	assert.Equal(t, 10*time.Second, hs.ReadHeaderTimeout, "slow headers are cut")
	assert.Equal(t, 120*time.Second, hs.IdleTimeout, "idle keep-alive connections are closed")
	assert.Equal(t, 64<<10, hs.MaxHeaderBytes)
	// A ReadTimeout or WriteTimeout would stay on hijacked WebSockets and
	// close them whatever their traffic.
	assert.Zero(t, hs.ReadTimeout)
	assert.Zero(t, hs.WriteTimeout)
}
