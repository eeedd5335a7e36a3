package wstransport

// These tests pin the behaviour of coder/websocket this package relies on
// (see "Why we reach under coder/websocket" in doc.go). Each one names the
// assumption it checks: if a coder/websocket upgrade fails one, read the
// package doc before changing the test.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pyre-go/pyre/internal/wsframe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testTimeout = 10 * time.Second

// testPeer records what its connection delivers and, for each message,
// what coder/websocket's read buffer (ours) still holds after its Read.
type testPeer struct {
	c        *Conn
	finished chan struct{}

	mu       sync.Mutex
	msgs     []string
	buffered []int
	got      chan struct{}
}

func (p *testPeer) Deliver(_ bool, data []byte) {
	p.mu.Lock()
	p.msgs = append(p.msgs, string(data))
	p.buffered = append(p.buffered, p.c.bufferedInput())
	p.mu.Unlock()
	p.got <- struct{}{}
}
func (p *testPeer) Disconnect(code int, reason string) { p.c.Close(code, reason) }
func (p *testPeer) SlowConsumer()                      { p.c.Close(3008, "slow consumer") }
func (p *testPeer) Finish()                            { close(p.finished) }
func (p *testPeer) Context() context.Context           { return context.Background() }
func (p *testPeer) Logger() *slog.Logger               { return slog.New(slog.DiscardHandler) }

// testServer serves the transport alone: every handshake is accepted.
type testServer struct {
	hs    *httptest.Server
	srv   *Server
	peers chan *testPeer
	// hijacked counts the handshakes whose Hijack went through hijackWriter.
	hijacked int
}

func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	var wg sync.WaitGroup
	cfg.Group = &wg
	cfg.MaxFrameSize = max(cfg.MaxFrameSize, 1<<20)
	cfg.MaxInflatedSize = max(cfg.MaxInflatedSize, 1<<20)
	cfg.MaxInflateRate = max(cfg.MaxInflateRate, 1<<30)
	cfg.MaxQueueBytes = max(cfg.MaxQueueBytes, 1<<20)
	cfg.IdleTimeout = max(cfg.IdleTimeout, time.Hour)
	var mu sync.Mutex
	var conns []*Conn
	cfg.Conns = func(yield func(*Conn) bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			if !yield(c) {
				return
			}
		}
	}
	srv := NewServer(&cfg)
	ts := &testServer{srv: srv, peers: make(chan *testPeer, 16)}
	ts.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		p := &testPeer{c: &Conn{}, finished: make(chan struct{}), got: make(chan struct{}, 16)}
		p.c.Init(srv, p)
		if err := p.c.Upgrade(w, r); err != nil {
			p.Finish()
			return
		}
		mu.Lock()
		conns = append(conns, p.c)
		ts.hijacked++
		mu.Unlock()
		ts.peers <- p
		p.c.Serve()
	}))
	t.Cleanup(func() {
		mu.Lock()
		cs := append([]*Conn(nil), conns...)
		mu.Unlock()
		for _, c := range cs {
			c.CloseNow()
		}
		srv.Close()
		wg.Wait()
		ts.hs.Close()
	})
	return ts
}

// rawClient is a WebSocket client on a bare TCP connection, so that the
// tests see the server's bytes exactly.
type rawClient struct {
	t          *testing.T
	nc         net.Conn
	br         *bufio.Reader
	extensions string
}

func (ts *testServer) dial(t *testing.T, extensions string) (*rawClient, *testPeer) {
	t.Helper()
	nc, err := net.Dial("tcp", ts.hs.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))
	req := "GET /websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if extensions != "" {
		req += "Sec-WebSocket-Extensions: " + extensions + "\r\n"
	}
	_, err = io.WriteString(nc, req+"\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	var p *testPeer
	select {
	case p = <-ts.peers:
	case <-time.After(testTimeout):
		t.Fatal("no connection")
	}
	return &rawClient{t: t, nc: nc, br: br, extensions: resp.Header.Get("Sec-WebSocket-Extensions")}, p
}

// frame returns one masked client frame; first is the first header byte.
func frame(first byte, payload []byte) []byte { return wsframe.Client(first, payload) }

func (c *rawClient) write(b ...[]byte) {
	_, err := c.nc.Write(bytes.Join(b, nil))
	require.NoError(c.t, err)
}

// rest reads everything the server sends until it closes the socket.
func (c *rawClient) rest() []byte {
	b, err := io.ReadAll(c.br)
	require.NoError(c.t, err)
	return b
}

func (p *testPeer) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.got:
	case <-time.After(testTimeout):
		t.Fatal("no message delivered")
	}
}

func (p *testPeer) waitFinished(t *testing.T) {
	t.Helper()
	select {
	case <-p.finished:
	case <-time.After(testTimeout):
		t.Fatal("connection not finished")
	}
}

// Assumption: websocket.Accept hijacks the connection through the
// ResponseWriter it is given (our hijackWriter), so that it reads through
// our bufio.Reader and writes through our small bufio.Writer and
// hijackedConn. Upgrade refuses the connection otherwise.
func TestUpstreamAcceptHijacksThroughOurWrapper(t *testing.T) {
	ts := newTestServer(t, Config{})
	_, p := ts.dial(t, "")
	require.NotNil(t, p.c.nc, "coder/websocket did not call hijackWriter.Hijack")
	assert.Equal(t, 1, ts.hijacked)
}

// Assumption: coder/websocket reads frames through the bufio.Reader that
// Hijack returned (after Reset): input it has not consumed yet is visible
// in our buffer (bufferedInput), which the read loop and the inflation
// bound inspect. Two messages sent in one TCP write: after the first is
// read, the second waits in our buffer.
func TestUpstreamReadsThroughOurBufferedReader(t *testing.T) {
	ts := newTestServer(t, Config{})
	c, p := ts.dial(t, "")
	c.write(frame(0x81, []byte("one")), frame(0x81, []byte("two")))
	p.wait(t)
	p.wait(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	assert.Equal(t, []string{"one", "two"}, p.msgs)
	assert.Equal(t, len(frame(0x81, []byte("two"))), p.buffered[0],
		"the second frame is buffered in our bufio.Reader when the first is delivered")
	assert.Zero(t, p.buffered[1])
}

// Assumption: coder/websocket answers a client's close frame by writing
// one close frame (header and payload) in one Write call to the hijacked
// connection: that is how hijackedConn.Write recognises it and replaces
// it with the answer the frame scanner decided (Bandit's: 1000 with no
// reason for a valid code). Were the answer split in two writes, or
// written around our connection, the client would get coder/websocket's
// echo of 3000 "bye" instead.
func TestUpstreamCloseAnswerIsOneWriteWeRewrite(t *testing.T) {
	ts := newTestServer(t, Config{})
	c, p := ts.dial(t, "")
	c.write(frame(0x88, append(binary.BigEndian.AppendUint16(nil, 3000), "bye"...)))
	assert.Equal(t, []byte{0x88, 0x02, 0x03, 0xE8}, c.rest(), "exactly one close frame, 1000 without a reason")
	p.waitFinished(t)
}

// Assumption: the close frame the server starts (Conn.Close) is written
// by coder/websocket in one Write as well and passes unchanged.
func TestUpstreamServerCloseFrameIsOneWrite(t *testing.T) {
	ts := newTestServer(t, Config{})
	c, p := ts.dial(t, "")
	p.c.Close(1012, "service restart")
	first, payload := readFrame(t, c.br)
	assert.Equal(t, byte(0x88), first)
	assert.Equal(t, append(binary.BigEndian.AppendUint16(nil, 1012), "service restart"...), payload)
	c.write(frame(0x88, binary.BigEndian.AppendUint16(nil, 1000)))
	p.waitFinished(t)
}

// Assumption: SetReadLimit bounds a compressed message by its inflated
// size (and stops inflating there, answering 1009), and a limit set
// between two messages applies to the next one. beforeInflate sets
// MaxInflatedSize before each compressed message on that basis.
func TestUpstreamReadLimitCountsInflatedBytes(t *testing.T) {
	ts := newTestServer(t, Config{Compression: true, MaxFrameSize: 1 << 20, MaxInflatedSize: 1 << 20})
	c, p := ts.dial(t, "permessage-deflate; client_no_context_takeover; server_no_context_takeover")
	require.Contains(t, c.extensions, "permessage-deflate")
	// 20 000 inflated bytes from a few dozen compressed: fine under 1 MiB.
	c.write(frame(0xC1, deflate(t, bytes.Repeat([]byte("a"), 20_000))))
	p.wait(t)
	// The limit for the next message, as beforeInflate sets it.
	p.c.ws.SetReadLimit(10_000)
	p.c.inf.limit = 10_000
	p.c.srv.cfg.MaxInflatedSize = 10_000
	msg := deflate(t, bytes.Repeat([]byte("a"), 20_000))
	require.Less(t, len(msg), 10_000, "small on the wire")
	c.write(frame(0xC1, msg))
	first, payload := readFrame(t, c.br)
	require.Equal(t, byte(0x88), first)
	assert.Equal(t, 1009, int(binary.BigEndian.Uint16(payload)), "1009: the inflated size counts")
	p.waitFinished(t)
}

func deflate(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	require.NoError(t, err)
	_, _ = w.Write(b)
	require.NoError(t, w.Flush())
	return bytes.TrimSuffix(buf.Bytes(), deflateTail)
}

func readFrame(t *testing.T, br *bufio.Reader) (byte, []byte) {
	t.Helper()
	first, p, err := wsframe.Read(br)
	require.NoError(t, err)
	return first, p
}
