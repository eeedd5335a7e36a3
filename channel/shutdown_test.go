package channel

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A handshake in progress when Close starts is waited for and refused
// (503): Close marks the server closed before it waits, and the handshake
// holds the server (hold) from before its checks, so it either is refused
// up front or is in the WaitGroup Close waits for.
func TestCloseWaitsForHandshakeInConnectAndRefusesIt(t *testing.T) {
	inConnect, release := make(chan struct{}), make(chan struct{})
	srv := NewServer(&Options{Router: roomRouter(nil), Connect: func(context.Context, *ConnectInfo) error {
		close(inConnect)
		<-release
		return nil
	}})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket/websocket?vsn=2.0.0"

	status := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, url, nil)
		if err == nil {
			_ = c.CloseNow()
			status <- http.StatusSwitchingProtocols
			return
		}
		if resp == nil {
			status <- 0
			return
		}
		status <- resp.StatusCode
	}()
	<-inConnect
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	for !srv.isClosed() {
		// Close marks the server closed first; wait for that, then let
		// Connect return.
		runtimeGosched()
	}
	close(release)
	require.NoError(t, <-closed)
	assert.Equal(t, http.StatusServiceUnavailable, <-status, "a handshake that was in Connect when Close started is refused")
	assert.Zero(t, srv.Stats().Connections)
}

// Many handshakes racing Close: Close returns (no connection upgraded
// meanwhile is left reading until its client leaves), every client that
// was upgraded sees the server close its connection, none is counted open
// afterwards, and a handshake after Close is refused. goleak (TestMain)
// checks that no goroutine outlives the test.
func TestCloseDuringHandshakeStorm(t *testing.T) {
	srv := NewServer(&Options{Router: roomRouter(nil)})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket/websocket?vsn=2.0.0"

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	const clients = 32
	var wg sync.WaitGroup
	upgraded := make(chan struct{}, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, resp, err := websocket.Dial(ctx, url, nil)
				if err != nil {
					if resp != nil {
						assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
					} else {
						assert.NoError(t, ctx.Err(), "dial gave up: %v", err)
					}
					return
				}
				select {
				case upgraded <- struct{}{}:
				default:
				}
				// The server closes every connection: the read ends with
				// the server's close (or a dropped socket), never with our
				// deadline.
				_, _, err = c.Read(ctx)
				assert.Error(t, err)
				assert.NoError(t, ctx.Err(), "connection left open by Close: %v", err)
				_ = c.CloseNow()
				if errors.Is(err, context.DeadlineExceeded) {
					return
				}
			}
		}()
	}
	<-upgraded // the storm is under way
	require.NoError(t, srv.Close())
	assert.Zero(t, srv.Stats().Connections, "no connection is open once Close returned")
	wg.Wait()

	_, resp, err := websocket.Dial(ctx, url, nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func runtimeGosched() { runtime.Gosched() }
