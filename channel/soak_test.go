package channel_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/internal/wsframe"
	"github.com/stretchr/testify/require"
)

// soakRoom accepts every join; it is what the churn joins.
type soakRoom struct{ channel.Base }

func (*soakRoom) Join(context.Context, *channel.Socket, channel.Payload) (any, error) {
	return nil, nil
}

func (*soakRoom) HandleIn(context.Context, *channel.Socket, *channel.Message) (channel.Reply, error) {
	return channel.NoReply, channel.ErrUnhandled
}

// soakCount is how many connections each transport churns through. The
// race detector makes each connection ~10× dearer, so a -race run churns a
// tenth; `make soak` (part of `make test`) runs the full count without it.
func soakCount(t *testing.T) int {
	if s := os.Getenv("PYRE_SOAK_N"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "PYRE_SOAK_N")
		return n
	}
	if raceEnabled {
		return 2_000
	}
	return 20_000
}

// TestSoakConnectJoinCloseChurn connects, joins and closes many
// connections through both transports (a fixed number of workers, each
// connection in turn) and checks that the server ends where it started:
// no open connection, the goroutine count back at its baseline, and the
// live heap within a small margin. It is the bounded form of "leave it
// running overnight": a leak of one goroutine or a few hundred bytes per
// connection shows here as thousands of goroutines or megabytes.
func TestSoakConnectJoinCloseChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	n := soakCount(t)
	router := channel.NewRouter()
	router.Handle("room:*", func() channel.Channel { return &soakRoom{} })
	srv := channel.NewServer(&channel.Options{
		Router: router,
		Logger: slog.New(slog.DiscardHandler), // 40 000 "Channel joined" lines are not the point
		LongPoll: &channel.LongPollOptions{
			// Abandoned sessions (phoenix.js's disconnect sends nothing)
			// end after this long without a poll.
			IdleTimeout: 2 * time.Second,
			// Every session comes from 127.0.0.1, and a fast churn holds
			// thousands of abandoned sessions until IdleTimeout: lift both
			// caps to the whole churn, so that the test does not depend on
			// the machine's speed.
			MaxSessions:          n,
			MaxSessionsPerClient: n,
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/socket/", srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer func() { require.NoError(t, srv.Close()) }()

	// Warm up both paths once, so one-time allocations (pools, the write
	// pool's workers, the LongPoll node topic) are in the baseline.
	addr := hs.Listener.Addr().String()
	require.NoError(t, soakWebSocket(addr, "room:warm", true))
	lp := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer lp.CloseIdleConnections()
	require.NoError(t, soakLongPoll(lp, hs.URL, "room:warm"))
	waitServerIdle(t, srv)
	baseG, baseHeap := settledGoroutines(), liveHeap()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	var failures atomic.Int64
	var firstErr atomic.Value
	churn := func(workers, total int, one func(i int) error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					i := int(next.Add(1)) - 1
					if i >= total {
						return
					}
					if err := one(i); err != nil {
						failures.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}
			}()
		}
		wg.Wait()
	}
	start := time.Now()
	churn(16, n, func(i int) error {
		// Every other client ends with a close handshake; the rest drop
		// the TCP connection, as a tab that is closed does.
		return soakWebSocket(addr, "room:"+strconv.Itoa(i%50), i%2 == 0)
	})
	wsTime := time.Since(start)
	churn(16, n, func(i int) error { return soakLongPoll(lp, hs.URL, "room:"+strconv.Itoa(i%50)) })
	require.NoError(t, ctx.Err(), "soak did not finish in time (WebSocket part took %v)", wsTime)
	if f := failures.Load(); f > 0 {
		t.Fatalf("%d of %d connections failed; first: %v", f, 2*n, firstErr.Load())
	}
	t.Logf("churned %d WebSocket connections in %v and %d LongPoll sessions in %v", n, wsTime, n, time.Since(start)-wsTime)

	lp.CloseIdleConnections()
	waitServerIdle(t, srv)
	st := srv.Stats()
	require.GreaterOrEqual(t, st.Accepted, uint64(2*n), "every connection was accepted")

	// Goroutines: back to the baseline (a few of the HTTP client's may
	// still be winding down; a leak per connection would be thousands).
	require.Eventually(t, func() bool { return settledGoroutines() <= baseG+4 }, 10*time.Second, 20*time.Millisecond,
		"goroutines: %d before the churn, %d after", baseG, runtime.NumGoroutine())
	// Live heap: a leak of 100 bytes per connection would be 4 MB here.
	heap := liveHeap()
	require.Less(t, int64(heap)-int64(baseHeap), int64(2<<20),
		"live heap grew from %d to %d bytes over %d connections", baseHeap, heap, 2*n)
}

// waitServerIdle waits until the server holds no connection or session.
func waitServerIdle(t *testing.T, srv *channel.Server) {
	t.Helper()
	require.Eventually(t, func() bool { return srv.Stats().Connections == 0 }, 20*time.Second, 10*time.Millisecond,
		"connections still open: %d", srv.Stats().Connections)
}

func settledGoroutines() int {
	runtime.GC()
	return runtime.NumGoroutine()
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// soakWebSocket opens a raw WebSocket, joins topic, waits for the join
// reply and ends the connection: with a close handshake, or by dropping it.
func soakWebSocket(addr, topic string, handshake bool) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
		base64.StdEncoding.EncodeToString(key[:]) + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("upgrade: HTTP %d", resp.StatusCode)
	}
	join := `["1","1",` + strconv.Quote(topic) + `,"phx_join",{}]`
	if _, err := nc.Write(wsframe.Client(0x81, []byte(join))); err != nil {
		return err
	}
	op, payload, err := wsframe.Read(br)
	if err != nil {
		return fmt.Errorf("join reply: %w", err)
	}
	if op != 0x81 || !bytes.Contains(payload, []byte(`"status":"ok"`)) {
		return fmt.Errorf("join reply: opcode %d %s", op, payload)
	}
	if !handshake {
		return nil
	}
	if _, err := nc.Write(wsframe.Client(0x88, []byte{0x03, 0xe8})); err != nil {
		return err
	}
	for {
		op, payload, err := wsframe.Read(br)
		if err != nil {
			return fmt.Errorf("close answer: %w", err)
		}
		if op == 0x88 {
			if len(payload) < 2 || int(payload[0])<<8|int(payload[1]) != 1000 {
				return fmt.Errorf("close answer %x, want code 1000", payload)
			}
			return nil
		}
	}
}

// soakLongPoll opens a LongPoll session as phoenix.js does (GET for a
// token, POST the join, poll the reply) and abandons it, as phoenix.js's
// disconnect does: the server reaps it after its IdleTimeout.
func soakLongPoll(c *http.Client, base, topic string) error {
	u := base + "/socket/longpoll?vsn=2.0.0"
	var open struct {
		Status int
		Token  string
	}
	if err := lpJSON(c, http.MethodGet, u, "", &open); err != nil {
		return err
	}
	if open.Status != 410 || open.Token == "" {
		return fmt.Errorf("open: %+v", open)
	}
	u += "&token=" + open.Token
	var post struct{ Status int }
	if err := lpJSON(c, http.MethodPost, u, `["1","1",`+strconv.Quote(topic)+`,"phx_join",{}]`, &post); err != nil {
		return err
	}
	if post.Status != 200 {
		return fmt.Errorf("post: status %d", post.Status)
	}
	var poll struct {
		Status   int
		Messages []string
	}
	if err := lpJSON(c, http.MethodGet, u, "", &poll); err != nil {
		return err
	}
	if poll.Status != 200 || len(poll.Messages) != 1 || !strings.Contains(poll.Messages[0], `"status":"ok"`) {
		return fmt.Errorf("poll: %+v", poll)
	}
	return nil
}

func lpJSON(c *http.Client, method, u, body string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d %s", method, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}
