package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pyre-go/pyre/cmd/pyre-bench-server/benchserver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// workerHarness runs a worker in-process against a real bench server,
// talking the same line protocol as the coordinator.
type workerHarness struct {
	t    *testing.T
	in   *io.PipeWriter
	out  *bufio.Scanner
	done chan error
}

func startWorker(t *testing.T, cfg workerConfig) (*workerHarness, workerStat) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := &workerHarness{t: t, in: inW, out: bufio.NewScanner(outR), done: make(chan error, 1)}
	h.out.Buffer(nil, 16<<20)
	go func() {
		err := runWorker(cfg, inR, outW)
		outW.Close()
		h.done <- err
	}()
	t.Cleanup(func() {
		inW.Close()
		for h.out.Scan() {
		}
		assert.NoError(t, <-h.done)
	})
	return h, h.read()
}

func (h *workerHarness) read() workerStat {
	h.t.Helper()
	require.True(h.t, h.out.Scan(), "worker answered")
	var st workerStat
	require.NoError(h.t, json.Unmarshal(h.out.Bytes(), &st))
	return st
}

func (h *workerHarness) do(cmd command) workerStat {
	h.t.Helper()
	b, _ := json.Marshal(cmd)
	_, err := h.in.Write(append(b, '\n'))
	require.NoError(h.t, err)
	return h.read()
}

func newBench(t *testing.T, c benchserver.Config) (*benchserver.Server, string) {
	t.Helper()
	s := benchserver.New(c)
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs.URL
}

func baseConfig(base string, n int) workerConfig {
	return workerConfig{
		URL: "ws" + strings.TrimPrefix(base, "http") + "/socket/websocket?vsn=2.0.0", Topic: "room:bench",
		N: n, Src: []string{"127.0.0.2", "127.0.0.3"}, DialConcurrency: 4,
		ConnTimeout: 5 * time.Second, ConnectTimeout: 20 * time.Second,
		Heartbeat: 100 * time.Millisecond, ReadBuf: 1024, MaxFail: 5,
	}
}

func publish(t *testing.T, base string, rate, seconds, size int) benchserver.PublishResult {
	t.Helper()
	resp, err := http.Post(base+"/publish?channel=room:bench&rate="+itoa(rate)+"&seconds="+itoa(seconds)+"&size="+itoa(size), "text/plain", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	var res benchserver.PublishResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
	return res
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// waitStat polls the worker until cond holds (bounded).
func (h *workerHarness) waitStat(cond func(workerStat) bool) workerStat {
	h.t.Helper()
	var st workerStat
	for range 200 {
		st = h.do(command{Cmd: "stat"})
		if cond(st) {
			return st
		}
		time.Sleep(25 * time.Millisecond)
	}
	h.t.Fatalf("condition not reached: %+v", st)
	return st
}

var ioModes = []string{"goroutine", "epoll"}

func TestWorkerFanoutRPCAndHeartbeats(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode, func(t *testing.T) { testWorkerFanoutRPCAndHeartbeats(t, mode) })
	}
}

func testWorkerFanoutRPCAndHeartbeats(t *testing.T, mode string) {
	srv, base := newBench(t, benchserver.Config{})
	cfg := baseConfig(base, 6)
	cfg.IO = mode
	h, ready := startWorker(t, cfg)
	require.Equal(t, int64(6), ready.Ready, ready.FirstErr)
	assert.Zero(t, ready.Failed)
	assert.Equal(t, 6, srv.Pyre().Subscribers("room:bench"))

	res := publish(t, base, 50, 1, 128)
	require.Equal(t, 50, res.Published)
	st := h.waitStat(func(s workerStat) bool { return s.Delivered == 6*50 })
	assert.Greater(t, st.LastNs, int64(0))

	rpc := h.do(command{Cmd: "rpc", Seconds: 1})
	assert.Equal(t, "rpc", rpc.Ev)
	time.Sleep(time.Second)
	st = h.waitStat(func(s workerStat) bool { return s.RPCInFlight == 0 })
	assert.Positive(t, st.RPCDone)
	assert.Zero(t, st.RPCErrors)
	assert.Positive(t, st.HBSent, "heartbeats went out every 100 ms")
	assert.Zero(t, st.HBMissed, "and pyre answered them")
	assert.Zero(t, st.Dropped)

	rep := h.do(command{Cmd: "report"})
	require.NotNil(t, rep.Lat)
	require.NotNil(t, rep.RTT)
	assert.Equal(t, uint64(300), rep.Lat.Total)
	assert.Equal(t, uint64(st.RPCDone), rep.RTT.Total)
	assert.Greater(t, rep.Lat.Quantile(0.5), 0.0)

	bye := h.do(command{Cmd: "quit"})
	assert.Equal(t, "bye", bye.Ev)
}

// The last cfg.Filtered connections join with {"filter":{"events":["msg"]}}
// against a server that sends odd seq as "odd": they get the even half, and
// the total is what the coordinator's expectedDeliveries predicts.
func TestWorkerFilteredSubscribers(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode, func(t *testing.T) { testWorkerFilteredSubscribers(t, mode) })
	}
}

func testWorkerFilteredSubscribers(t *testing.T, mode string) {
	srv, base := newBench(t, benchserver.Config{OddEvent: oddEvent})
	cfg := baseConfig(base, 6)
	cfg.IO = mode
	cfg.Filtered = 2
	h, ready := startWorker(t, cfg)
	require.Equal(t, int64(6), ready.Ready, ready.FirstErr)
	assert.Equal(t, int64(2), ready.ReadyFiltered)

	res := publish(t, base, 25, 1, 128)
	require.Positive(t, res.Published)
	require.Zero(t, res.Errors)
	want := expectedDeliveries(res.Published, 6, 2)
	require.Less(t, want, 6*int64(res.Published))
	h.waitStat(func(s workerStat) bool { return s.Delivered >= want })
	// The server counted every drop at fan-out, before the last broadcast
	// reached the unfiltered clients, so nothing more is on its way.
	assert.Equal(t, uint64(2*(res.Published/2)), srv.Pyre().Stats().Filtered)
	st := h.do(command{Cmd: "report"})
	assert.Equal(t, want, st.Delivered)
	assert.Zero(t, st.FilterLeaks)
	assert.Zero(t, st.Dropped)
	assert.Equal(t, uint64(want), st.Lat.Total)
}

func TestWorkerStalledClientIsClosedWithSlowConsumer(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode, func(t *testing.T) { testWorkerStalledClient(t, mode) })
	}
}

func testWorkerStalledClient(t *testing.T, mode string) {
	srv, base := newBench(t, benchserver.Config{MaxQueueBytes: 256 << 10})
	cfg := baseConfig(base, 3)
	cfg.IO = mode
	cfg.Stalled, cfg.StallRcvBuf = 1, 4096
	h, ready := startWorker(t, cfg)
	require.Equal(t, int64(3), ready.Ready, ready.FirstErr)
	assert.Equal(t, int64(1), ready.StalledLive)

	// 6.5 MB per client: more than the server socket's send buffer (loopback
	// autotunes it up to tcp_wmem's 4 MB) plus pyre's 256 KiB queue, which
	// leaves the fast clients room to keep up under -race.
	// The publisher is paced: on a loaded machine it may skip a few slots,
	// so require enough to overflow (> 4 MB + 256 KiB), not exactly 400.
	res := publish(t, base, 200, 2, 16384)
	require.GreaterOrEqual(t, res.Published, 300, "%+v", res)
	h.waitStat(func(s workerStat) bool { return s.Delivered == 2*int64(res.Published) })
	assert.Equal(t, uint64(1), srv.Pyre().Stats().SlowClosed)

	h.do(command{Cmd: "resume"})
	st := h.waitStat(func(s workerStat) bool { return s.StalledLive == 0 })
	assert.Zero(t, st.Dropped, "fast clients kept their connections")
	t.Logf("stalled client: %v after %d messages", st.StalledEnds, st.Drained)
	require.Len(t, st.StalledEnds, 1, "%v", st.StalledEnds)
	for k := range st.StalledEnds {
		// The close frame is queued behind what the socket already held; if
		// the server gave up writing it, the client sees the connection end.
		assert.Contains(t, []string{"close 3008", "eof", "reset"}, k)
	}
	assert.Less(t, st.Drained, int64(res.Published), "the stalled client got only part of the stream")
}

func TestWorkerCountsRefusedConnections(t *testing.T) {
	_, base := newBench(t, benchserver.Config{})
	cfg := baseConfig(base, 3)
	cfg.URL = strings.Replace(cfg.URL, "vsn=2.0.0", "vsn=9.9.9", 1) // pyre refuses unknown vsn with 403
	cfg.MaxFail = 2
	_, ready := startWorker(t, cfg)
	assert.Zero(t, ready.Ready)
	assert.GreaterOrEqual(t, ready.Failed, int64(2))
	assert.Equal(t, int64(3), ready.Failed+ready.NotTried)
	assert.Positive(t, ready.Errors["http 403"])
}
