package wstransport

// Tests of the transport over real sockets: a raw client writes frames
// byte for byte and reads the server's exactly.

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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyre-go/pyre/internal/wsframe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testTimeout = 10 * time.Second

// testPeer records what its connection delivers.
type testPeer struct {
	c        *Conn
	finished chan struct{}

	mu   sync.Mutex
	msgs []string
	got  chan struct{}
}

func (p *testPeer) Deliver(_ bool, data []byte) {
	p.mu.Lock()
	p.msgs = append(p.msgs, string(data))
	p.mu.Unlock()
	p.got <- struct{}{}
}

// messages returns what was delivered so far.
func (p *testPeer) messages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.msgs...)
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

// bothReadPaths runs test with the poller (where there is one) and with
// a goroutine per connection (the portable path).
func bothReadPaths(t *testing.T, test func(t *testing.T, portable bool)) {
	t.Run("poller", func(t *testing.T) { test(t, false) })
	t.Run("portable", func(t *testing.T) { test(t, true) })
}

// Two messages in one TCP write are both delivered, in order, from one
// read of the socket.
func TestReadsEveryMessageOfAWrite(t *testing.T) {
	bothReadPaths(t, func(t *testing.T, portable bool) {
		ts := newTestServer(t, Config{portable: portable})
		c, p := ts.dial(t, "")
		c.write(frame(0x81, []byte("one")), frame(0x81, []byte("two")))
		p.wait(t)
		p.wait(t)
		assert.Equal(t, []string{"one", "two"}, p.messages())
	})
}

// Messages larger than the read buffer, and fragmented ones with control
// frames between their fragments, are assembled; a ping is answered with
// its payload.
func TestLargeAndFragmentedMessages(t *testing.T) {
	bothReadPaths(t, func(t *testing.T, portable bool) {
		ts := newTestServer(t, Config{portable: portable})
		c, p := ts.dial(t, "")
		big := strings.Repeat("x", 3*readBufSize+17)
		c.write(frame(0x81, []byte(big)))
		p.wait(t)
		c.write(frame(0x01, []byte("frag")), frame(0x89, []byte("ping!")), frame(0x00, []byte("men")), frame(0x80, []byte("ted")))
		first, payload := readFrame(t, c.br)
		assert.Equal(t, byte(0x8A), first)
		assert.Equal(t, "ping!", string(payload))
		p.wait(t)
		assert.Equal(t, []string{big, "fragmented"}, p.messages())
	})
}

// A client's close frame is answered with one close frame (1000 without a
// reason for a valid code, as Bandit answers), then the socket is closed.
func TestClientCloseAnsweredWithOneFrame(t *testing.T) {
	bothReadPaths(t, func(t *testing.T, portable bool) {
		ts := newTestServer(t, Config{portable: portable})
		c, p := ts.dial(t, "")
		c.write(frame(0x88, append(binary.BigEndian.AppendUint16(nil, 3000), "bye"...)))
		assert.Equal(t, []byte{0x88, 0x02, 0x03, 0xE8}, c.rest(), "exactly one close frame, 1000 without a reason")
		p.waitFinished(t)
	})
}

// The server's close frame carries its code and reason; the client's
// answer ends the connection.
func TestServerCloseFrame(t *testing.T) {
	bothReadPaths(t, func(t *testing.T, portable bool) {
		ts := newTestServer(t, Config{portable: portable})
		c, p := ts.dial(t, "")
		p.c.Close(1012, "service restart")
		first, payload := readFrame(t, c.br)
		assert.Equal(t, byte(0x88), first)
		assert.Equal(t, append(binary.BigEndian.AppendUint16(nil, 1012), "service restart"...), payload)
		c.write(frame(0x88, binary.BigEndian.AppendUint16(nil, 1000)))
		p.waitFinished(t)
	})
}

// Frames RFC 6455 forbids close the connection with 1002, before anything
// reaches the peer.
func TestInvalidFramesClose1002(t *testing.T) {
	bothReadPaths(t, func(t *testing.T, portable bool) {
		for name, f := range map[string][]byte{
			"unmasked":                 {0x81, 0x01, 'a'},
			"continuation first":       frame(0x80, []byte("a")),
			"RSV2":                     frame(0xA1, []byte("a")),
			"RSV1 without compression": frame(0xC1, []byte("a")),
			"unknown opcode":           frame(0x83, []byte("a")),
			"fragmented ping":          frame(0x09, []byte("a")),
			"long close":               frame(0x88, make([]byte, 126)),
			"message in a message":     append(frame(0x01, []byte("a")), frame(0x81, []byte("b"))...),
		} {
			t.Run(name, func(t *testing.T) {
				ts := newTestServer(t, Config{portable: portable})
				c, p := ts.dial(t, "")
				c.write(f)
				first, payload := readFrame(t, c.br)
				require.Equal(t, byte(0x88), first)
				assert.Equal(t, 1002, int(binary.BigEndian.Uint16(payload)))
				p.waitFinished(t)
				assert.Empty(t, p.messages())
			})
		}
	})
}

// MaxFrameSize bounds an uncompressed message (1009), fragments included.
func TestMaxFrameSizeCloses1009(t *testing.T) {
	bothReadPaths(t, func(t *testing.T, portable bool) {
		ts := newTestServer(t, Config{portable: portable, MaxFrameSize: 1})
		ts.srv.cfg.MaxFrameSize = 5000
		c, p := ts.dial(t, "")
		c.write(frame(0x01, make([]byte, 3000)), frame(0x80, make([]byte, 3000)))
		first, payload := readFrame(t, c.br)
		require.Equal(t, byte(0x88), first)
		assert.Equal(t, 1009, int(binary.BigEndian.Uint16(payload)))
		p.waitFinished(t)
	})
}

// A compressed message is bounded by its inflated size (1009), not its
// size on the wire.
func TestCompressedMessageBoundByInflatedSize(t *testing.T) {
	bothReadPaths(t, func(t *testing.T, portable bool) {
		ts := newTestServer(t, Config{portable: portable, Compression: true})
		ts.srv.cfg.MaxInflatedSize = 10_000
		c, p := ts.dial(t, "permessage-deflate; client_no_context_takeover; server_no_context_takeover")
		require.Equal(t, "permessage-deflate; client_no_context_takeover; server_no_context_takeover", c.extensions)
		c.write(frame(0xC1, deflate(t, bytes.Repeat([]byte("a"), 9_000))))
		p.wait(t)
		assert.Equal(t, strings.Repeat("a", 9_000), p.messages()[0])
		msg := deflate(t, bytes.Repeat([]byte("a"), 20_000))
		require.Less(t, len(msg), 10_000, "small on the wire")
		c.write(frame(0xC1, msg))
		first, payload := readFrame(t, c.br)
		require.Equal(t, byte(0x88), first)
		assert.Equal(t, 1009, int(binary.BigEndian.Uint16(payload)), "1009: the inflated size counts")
		p.waitFinished(t)
	})
}

// Input sent right behind the upgrade request (read ahead by net/http) is
// the first message read.
func TestInputBehindTheRequestIsRead(t *testing.T) {
	bothReadPaths(t, func(t *testing.T, portable bool) {
		ts := newTestServer(t, Config{portable: portable})
		nc, err := net.Dial("tcp", ts.hs.Listener.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { _ = nc.Close() })
		require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))
		req := "GET /websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		_, err = nc.Write(append([]byte(req), frame(0x81, []byte("early"))...))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		assert.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", resp.Header.Get("Sec-WebSocket-Accept"))
		p := <-ts.peers
		p.wait(t)
		assert.Equal(t, []string{"early"}, p.messages())
	})
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
