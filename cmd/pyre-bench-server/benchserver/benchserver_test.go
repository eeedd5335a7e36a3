package benchserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPayloadShapeAndSize(t *testing.T) {
	for _, size := range []int{64, 128, 1000} {
		b := AppendPayload(nil, 1764000000123456789, 42, size)
		assert.Len(t, b, size)
		var v struct {
			TS  int64  `json:"ts"`
			Seq int    `json:"seq"`
			Pad string `json:"pad"`
		}
		require.NoError(t, json.Unmarshal(b, &v), string(b))
		assert.Equal(t, int64(1764000000123456789), v.TS)
		assert.Equal(t, 42, v.Seq)
		assert.Equal(t, strings.Repeat("x", len(v.Pad)), v.Pad)
		assert.True(t, strings.HasPrefix(string(b), `{"ts":1764000000123456789,"seq":42,"pad":"`))
	}
	assert.Len(t, AppendPayload(nil, 1, 2, 32), 32)
	// Too small for the fields: as short as possible, still valid.
	b := AppendPayload(nil, 1764000000123456789, 2, 32)
	assert.JSONEq(t, `{"ts":1764000000123456789,"seq":2,"pad":""}`, string(b))
}

func TestPaceKeepsTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var stamps []time.Duration
		var seqs []int
		res := Pace(context.Background(), 10, 2, 64, func(_ context.Context, p []byte) error {
			var v struct {
				TS  int64 `json:"ts"`
				Seq int   `json:"seq"`
			}
			require.NoError(t, json.Unmarshal(p, &v))
			stamps = append(stamps, time.Unix(0, v.TS).Sub(start))
			seqs = append(seqs, v.Seq)
			return nil
		})
		assert.Equal(t, 20, res.Published)
		assert.Zero(t, res.Skipped)
		assert.Zero(t, res.Errors)
		assert.Zero(t, res.MaxLagMs)
		for i, d := range stamps {
			assert.Equal(t, time.Duration(i)*100*time.Millisecond, d, "slot %d", i)
			assert.Equal(t, i, seqs[i])
		}
		assert.InDelta(t, 1.9, res.ElapsedS, 1e-9, "ends after the last slot")
	})
}

func TestPaceSkipsWhatDoesNotFitTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Each publish takes 250 ms: only 4 of 10 slots fit in 1 s.
		res := Pace(context.Background(), 10, 1, 64, func(context.Context, []byte) error {
			time.Sleep(250 * time.Millisecond)
			return nil
		})
		assert.Equal(t, 4, res.Published)
		assert.Equal(t, 6, res.Skipped)
		// Slot 3 was due at 300 ms and went out at 750 ms; slot 4 (due 400 ms,
		// reached at 1 s) fell outside the window and is not a lag.
		assert.InDelta(t, 450, res.MaxLagMs, 1e-6)
	})
}

func TestPaceCountsErrorsAndStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		res := Pace(ctx, 10, 10, 64, func(context.Context, []byte) error {
			n++
			if n == 5 {
				cancel()
			}
			if n%2 == 0 {
				return errors.New("boom")
			}
			return nil
		})
		assert.Equal(t, 5, n)
		assert.Equal(t, 3, res.Published)
		assert.Equal(t, 2, res.Errors)
		assert.Equal(t, "boom", res.FirstErr)
		assert.Equal(t, 95, res.Skipped)
	})
}

func TestPublishValidation(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	hs := httptest.NewServer(s)
	defer hs.Close()
	for q, want := range map[string]int{
		"": http.StatusBadRequest,
		"channel=room:a&rate=0&seconds=1&size=64":      http.StatusBadRequest,
		"channel=room:a&rate=1&seconds=601&size=64":    http.StatusBadRequest,
		"channel=room:a&rate=1&seconds=1&size=31":      http.StatusBadRequest,
		"channel=&rate=1&seconds=1&size=64":            http.StatusBadRequest,
		"channel=room:a&rate=100001&seconds=1&size=64": http.StatusBadRequest,
	} {
		resp, err := http.Post(hs.URL+"/publish?"+q, "text/plain", nil)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, q)
	}
	resp, err := http.Get(hs.URL + "/publish?channel=room:a&rate=1&seconds=1&size=64")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// TestEndToEnd joins room:bench with a real WebSocket client, publishes
// through /publish and checks the pushes, the echo reply and /debug/mem.
func TestEndToEnd(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	hs := httptest.NewServer(s)
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/socket/websocket?vsn=2.0.0", nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	write := func(s string) { require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(s))) }
	read := func() []any {
		_, b, err := ws.Read(ctx)
		require.NoError(t, err)
		var v []any
		require.NoError(t, json.Unmarshal(b, &v), string(b))
		require.Len(t, v, 5)
		return v
	}
	write(`["1","1","room:bench","phx_join",{}]`)
	assert.Equal(t, []any{"1", "1", "room:bench", "phx_reply", map[string]any{"status": "ok", "response": map[string]any{}}}, read())
	write(`["1","2","room:bench","echo",{"ts":7}]`)
	assert.Equal(t, []any{"1", "2", "room:bench", "phx_reply", map[string]any{"status": "ok", "response": map[string]any{"ts": 7.0}}}, read())

	var wg sync.WaitGroup
	var res PublishResult
	wg.Go(func() {
		resp, err := http.Post(hs.URL+"/publish?channel=room:bench&rate=20&seconds=1&size=100", "text/plain", nil)
		if !assert.NoError(t, err) {
			return
		}
		defer resp.Body.Close()
		assert.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
	})
	for i := range 20 {
		v := read()
		assert.Equal(t, []any{nil, nil, "room:bench", "msg"}, v[:4])
		p := v[4].(map[string]any)
		assert.Equal(t, float64(i), p["seq"])
		assert.Greater(t, p["ts"], 1e18)
		if i == 0 {
			// A second loop while one runs is refused.
			resp, err := http.Post(hs.URL+"/publish?channel=room:bench&rate=1&seconds=1&size=64", "text/plain", nil)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusConflict, resp.StatusCode)
		}
	}
	wg.Wait()
	assert.Equal(t, 20, res.Published)
	assert.Equal(t, "room:bench", res.Channel)

	resp, err := http.Get(hs.URL + "/debug/mem?gc=1")
	require.NoError(t, err)
	var mem map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&mem))
	resp.Body.Close()
	for _, k := range []string{"heap_alloc", "stack_inuse", "goroutines", "connections", "slow_closed", "rss_kb", "write_delay_total_ns"} {
		assert.Contains(t, mem, k)
	}
	assert.Equal(t, 1.0, mem["connections"])
	assert.Equal(t, 1.0, mem["subscribers"])
}

func TestRunRefusesNonLoopbackAndServes(t *testing.T) {
	err := Run(context.Background(), Config{Addr: "0.0.0.0:0"}, nil)
	assert.ErrorIs(t, err, ErrNotLoopback)

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Addr: "127.0.0.1:0"}, func(a string) { addrc <- a }) }()
	addr := <-addrc
	resp, err := http.Get("http://" + addr + "/debug/mem")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	assert.NoError(t, <-done)
}

// A client that sends part of its request headers and then nothing (a
// slowloris socket) is disconnected after Config.ReadHeaderTimeout.
func TestRunCutsSlowHeaders(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Addr: "127.0.0.1:0", ReadHeaderTimeout: 50 * time.Millisecond}, func(a string) { addrc <- a })
	}()
	defer func() {
		cancel()
		assert.NoError(t, <-done)
	}()
	c, err := net.Dial("tcp", <-addrc)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "POST /publish?channel=room:a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
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

// A web page cannot make the browser start a publish loop: cross-origin
// POSTs are refused before the handler runs. Same-origin and non-browser
// requests (no Origin, as the load tools send) are served.
func TestPublishRefusesCrossOrigin(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	hs := httptest.NewServer(s)
	defer hs.Close()
	post := func(h http.Header) int {
		req, err := http.NewRequest(http.MethodPost, hs.URL+"/publish?channel=room:a&rate=1&seconds=1&size=64", strings.NewReader("x"))
		require.NoError(t, err)
		req.Header = h
		req.Header.Set("Content-Type", "text/plain")
		resp, err := hs.Client().Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}
	for name, h := range map[string]http.Header{
		"other site":     {"Origin": {"https://evil.example"}},
		"other port":     {"Origin": {"http://127.0.0.1:1"}},
		"fetch metadata": {"Sec-Fetch-Site": {"cross-site"}},
		"same site":      {"Sec-Fetch-Site": {"same-site"}, "Origin": {"http://127.0.0.1:1"}},
	} {
		assert.Equal(t, http.StatusForbidden, post(h), name)
	}
	assert.Equal(t, http.StatusOK, post(http.Header{}), "no Origin")
	assert.Equal(t, http.StatusOK, post(http.Header{"Origin": {hs.URL}}), "same origin")
}

// With Config.OddEvent the odd seq go out under that event, so a client
// that joins with {"filter":{"events":["msg"]}} gets the even half; the
// room is Filterable, and /debug/mem counts what the filter dropped.
func TestOddEventAndClientFilter(t *testing.T) {
	s := New(Config{OddEvent: "odd"})
	defer s.Close()
	hs := httptest.NewServer(s)
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func(join string) (*websocket.Conn, func() []any) {
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/socket/websocket?vsn=2.0.0", nil)
		require.NoError(t, err)
		read := func() []any {
			_, b, err := ws.Read(ctx)
			require.NoError(t, err)
			var v []any
			require.NoError(t, json.Unmarshal(b, &v), string(b))
			require.Len(t, v, 5)
			return v
		}
		require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(join)))
		assert.Equal(t, map[string]any{"status": "ok", "response": map[string]any{}}, read()[4], join)
		return ws, read
	}
	all, readAll := dial(`["1","1","room:bench","phx_join",{}]`)
	defer all.CloseNow()
	half, readHalf := dial(`["1","1","room:bench","phx_join",{"filter":{"events":["msg"]}}]`)
	defer half.CloseNow()

	resp, err := http.Post(hs.URL+"/publish?channel=room:bench&rate=20&seconds=1&size=100", "text/plain", nil)
	require.NoError(t, err)
	var res PublishResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
	resp.Body.Close()
	require.Equal(t, 20, res.Published, "%+v", res)

	for i := range 20 {
		v := readAll()
		want := "msg"
		if i%2 == 1 {
			want = "odd"
		}
		assert.Equal(t, []any{nil, nil, "room:bench", want}, v[:4], "seq %d", i)
		assert.Equal(t, float64(i), v[4].(map[string]any)["seq"])
	}
	for i := range 10 {
		v := readHalf()
		assert.Equal(t, []any{nil, nil, "room:bench", "msg"}, v[:4])
		assert.Equal(t, float64(2*i), v[4].(map[string]any)["seq"])
	}
	// Every broadcast was fanned out before the unfiltered client got the
	// last one: a leaked odd one would come before this reply.
	require.NoError(t, half.Write(ctx, websocket.MessageText, []byte(`["1","2","room:bench","echo",{}]`)))
	assert.Equal(t, "phx_reply", readHalf()[3])

	resp, err = http.Get(hs.URL + "/debug/mem")
	require.NoError(t, err)
	var mem map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&mem))
	resp.Body.Close()
	assert.Equal(t, 10.0, mem["filtered"])
}

func TestSeqOf(t *testing.T) {
	assert.Equal(t, int64(42), seqOf(AppendPayload(nil, 1764000000123456789, 42, 128)))
	assert.Equal(t, int64(0), seqOf(AppendPayload(nil, 1, 0, 64)))
	assert.Equal(t, int64(-1), seqOf([]byte(`{"ts":1}`)))
	assert.Equal(t, int64(-1), seqOf([]byte(`{"seq":"x"}`)))
}
