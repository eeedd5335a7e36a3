package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeCentrifuge is a server of the centrifuge JSON protocol v2, as far as
// the anchor uses it: it answers connect (id 1) and subscribe (id 2), then
// pings each client with {} (counting the {} answers) and sends frames of
// newline-separated publications when the test calls publish.
type fakeCentrifuge struct {
	t      *testing.T
	mu     sync.Mutex
	conns  []*websocket.Conn
	pongs  chan struct{}
	refuse bool
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

func newFakeCentrifuge(t *testing.T, refuse bool) (*fakeCentrifuge, string) {
	f := &fakeCentrifuge{t: t, pongs: make(chan struct{}, 64), refuse: refuse}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	hs := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.cancel()
		hs.Close()
		f.wg.Wait()
	})
	return f, "ws" + strings.TrimPrefix(hs.URL, "http") + "/connection/websocket"
}

func (f *fakeCentrifuge) serve(w http.ResponseWriter, r *http.Request) {
	f.wg.Add(1)
	defer f.wg.Done()
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx := f.ctx
	read := func() string {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return ""
		}
		return string(b)
	}
	if m := read(); !strings.HasPrefix(m, `{"id":1,"connect":`) {
		return
	}
	// A ping ahead of the reply, as a server may send one at any time.
	if ws.Write(ctx, websocket.MessageText, []byte("{}\n"+`{"id":1,"connect":{"client":"c","version":"0.40.1","ping":25,"pong":true}}`)) != nil {
		return
	}
	if m := read(); m != "{}" {
		return
	}
	f.pongs <- struct{}{}
	if m := read(); m != `{"id":2,"subscribe":{"channel":"bench"}}` {
		f.t.Errorf("subscribe: %q", m)
		return
	}
	reply := `{"id":2,"subscribe":{}}`
	if f.refuse {
		reply = `{"id":2,"error":{"code":102,"message":"unknown channel"}}`
	}
	if ws.Write(ctx, websocket.MessageText, []byte(reply)) != nil {
		return
	}
	f.mu.Lock()
	f.conns = append(f.conns, ws)
	f.mu.Unlock()
	for {
		m := read()
		if m == "" {
			return
		}
		if m == "{}" {
			f.pongs <- struct{}{}
		}
	}
}

// publish sends every subscribed client one frame holding n publications
// and a ping.
func (f *fakeCentrifuge) publish(n int) {
	var b bytes.Buffer
	for i := range n {
		b.WriteString(`{"push":{"channel":"bench","pub":{"data":{"ts":` + strconv.FormatInt(time.Now().UnixNano(), 10) +
			`,"seq":` + strconv.Itoa(i) + `,"pad":"xx"}}}}` + "\n")
	}
	b.WriteString("{}")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ws := range f.conns {
		require.NoError(f.t, ws.Write(f.ctx, websocket.MessageText, b.Bytes()))
	}
}

func centConfig(url string, n int) workerConfig {
	return workerConfig{
		URL: url, Topic: "bench", Proto: protoCentrifuge,
		N: n, Src: []string{"127.0.0.2"}, DialConcurrency: 4,
		ConnTimeout: 5 * time.Second, ConnectTimeout: 20 * time.Second,
		Heartbeat: 100 * time.Millisecond, ReadBuf: 1024, MaxFail: 5,
	}
}

// TestWorkerSpeaksCentrifuge: the worker connects and subscribes with the
// centrifuge protocol, answers pings, and counts every publication of a
// frame that holds several, with each read path.
func TestWorkerSpeaksCentrifuge(t *testing.T) {
	for _, c := range []struct {
		name string
		io   string
		poll time.Duration
	}{{"goroutine", "goroutine", 0}, {"epoll", "epoll", 0}, {"epoll-poll", "epoll", time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			f, url := newFakeCentrifuge(t, false)
			cfg := centConfig(url, 3)
			cfg.IO, cfg.Poll = c.io, c.poll
			h, ready := startWorker(t, cfg)
			require.Equal(t, int64(3), ready.Ready, ready.FirstErr)
			for range 3 {
				<-f.pongs // the ping before the connect reply was answered
			}
			f.publish(5)
			st := h.waitStat(func(s workerStat) bool { return s.Delivered == 3*5 })
			for range 3 {
				<-f.pongs // and the ping after the publications
			}
			assert.Zero(t, st.Other)
			assert.Zero(t, st.Dropped)
			assert.Zero(t, st.HBMissed, "no Phoenix heartbeats with centrifuge")
			rep := h.do(command{Cmd: "report"})
			require.NotNil(t, rep.Lat)
			assert.Equal(t, uint64(15), rep.Lat.Total)
		})
	}
}

func TestWorkerCountsCentrifugeRefusals(t *testing.T) {
	_, url := newFakeCentrifuge(t, true)
	_, ready := startWorker(t, centConfig(url, 2))
	assert.Zero(t, ready.Ready)
	assert.Equal(t, int64(2), ready.Failed)
	assert.Equal(t, int64(2), ready.Errors["join refused"])
	assert.Contains(t, ready.FirstErr, "unknown channel")
}

func TestByNodeSplitsWorkersRoundRobin(t *testing.T) {
	cs := &clients{nodes: 2}
	got := cs.byNode([]workerStat{{Delivered: 1}, {Delivered: 10}, {Delivered: 100}, {Delivered: 1000}})
	require.Len(t, got, 2)
	assert.Equal(t, int64(101), got[0].Delivered, "processes 0 and 2 dialed node 0")
	assert.Equal(t, int64(1010), got[1].Delivered)
}
