package wsc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func naiveMask(key [4]byte, p []byte) {
	for i := range p {
		p[i] ^= key[i%4]
	}
}

func TestMaskMatchesByteWiseReference(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for n := 0; n < 70; n++ {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		want := bytes.Clone(p)
		naiveMask(key, want)
		got := bytes.Clone(p)
		Mask(key, got)
		require.Equal(t, want, got, "n=%d", n)
		Mask(key, got)
		require.Equal(t, p, got, "masking twice restores, n=%d", n)
	}
}

// parseClientFrame decodes one client frame as a server would.
func parseClientFrame(t *testing.T, b []byte) (fin bool, op Opcode, payload []byte, rest []byte) {
	t.Helper()
	require.GreaterOrEqual(t, len(b), 2)
	fin, op = b[0]&0x80 != 0, Opcode(b[0]&0x0F)
	require.Zero(t, b[0]&0x70, "reserved bits")
	require.NotZero(t, b[1]&0x80, "client frames are masked")
	n := uint64(b[1] & 0x7F)
	b = b[2:]
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	case 127:
		n = binary.BigEndian.Uint64(b)
		b = b[8:]
	}
	var key [4]byte
	copy(key[:], b)
	b = b[4:]
	payload = bytes.Clone(b[:n])
	naiveMask(key, payload)
	return fin, op, payload, b[n:]
}

func TestAppendFrameLengthEncodings(t *testing.T) {
	for _, tc := range []struct {
		n      int
		header int // bytes before the payload, mask key included
	}{{0, 6}, {1, 6}, {125, 6}, {126, 8}, {65535, 8}, {65536, 14}, {70000, 14}} {
		p := bytes.Repeat([]byte{'a'}, tc.n)
		f := AppendFrame(nil, OpText, p, 0xA1B2C3D4)
		require.Len(t, f, tc.header+tc.n, "n=%d", tc.n)
		fin, op, got, rest := parseClientFrame(t, f)
		assert.True(t, fin)
		assert.Equal(t, OpText, op)
		assert.Equal(t, p, got, "n=%d", tc.n)
		assert.Empty(t, rest)
	}
}

func TestAcceptKeyRFCExample(t *testing.T) {
	// RFC 6455 section 1.3.
	assert.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="))
}

// fakeServer answers the upgrade on the server end of a pipe and then lets
// the test write raw server frames and read the client's frames.
type fakeServer struct {
	nc net.Conn
	br *bufio.Reader
}

func newPair(t *testing.T, readBuf, maxMsg int) (*Conn, *fakeServer) {
	t.Helper()
	cli, srv := net.Pipe()
	t.Cleanup(func() { cli.Close(); srv.Close() })
	fs := &fakeServer{nc: srv, br: bufio.NewReader(srv)}
	done := make(chan error, 1)
	go func() {
		req, err := http.ReadRequest(fs.br)
		if err != nil {
			done <- err
			return
		}
		key := req.Header.Get("Sec-WebSocket-Key")
		_, err = io.WriteString(srv, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+AcceptKey(key)+"\r\n\r\n")
		done <- err
	}()
	c, err := Handshake(cli, "example", "/socket/websocket?vsn=2.0.0", readBuf, maxMsg)
	require.NoError(t, err)
	require.NoError(t, <-done)
	return c, fs
}

// frame builds an unmasked server frame.
func frame(fin bool, op Opcode, p []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(p); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

func (fs *fakeServer) send(t *testing.T, frames ...[]byte) {
	t.Helper()
	go func() { _, _ = fs.nc.Write(bytes.Join(frames, nil)) }()
}

// readClientFrame reads one frame the client wrote.
func (fs *fakeServer) readClientFrame(t *testing.T) (Opcode, []byte) {
	t.Helper()
	var hdr [2]byte
	_, err := io.ReadFull(fs.br, hdr[:])
	require.NoError(t, err)
	n := int(hdr[1] & 0x7F)
	require.Less(t, n, 126, "test frames are short")
	rest := make([]byte, 4+n)
	_, err = io.ReadFull(fs.br, rest)
	require.NoError(t, err)
	_, op, p, _ := parseClientFrame(t, append(hdr[:], rest...))
	return op, p
}

func TestReadMessagesSmallLargeAndFragmented(t *testing.T) {
	c, fs := newPair(t, 256, 1<<20)
	big := bytes.Repeat([]byte("0123456789"), 100) // larger than the read buffer
	fs.send(t,
		frame(true, OpText, []byte(`[null,null,"room:a","msg",{}]`)),
		frame(true, OpBinary, big),
		frame(false, OpText, []byte("hel")),
		frame(true, OpPong, nil), // control frames may sit between fragments
		frame(false, OpContinuation, []byte("lo ")),
		frame(true, OpContinuation, []byte("world")),
		frame(true, OpText, nil),
	)
	op, p, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, OpText, op)
	assert.Equal(t, `[null,null,"room:a","msg",{}]`, string(p))

	op, p, err = c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, OpBinary, op)
	assert.Equal(t, big, p)

	op, p, err = c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, OpText, op)
	assert.Equal(t, "hello world", string(p))

	op, p, err = c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, OpText, op)
	assert.Empty(t, p)
}

func TestPingIsAnsweredWithPong(t *testing.T) {
	c, fs := newPair(t, 256, 1<<20)
	fs.send(t, frame(true, OpPing, []byte("abc")), frame(true, OpText, []byte("after")))
	got := make(chan []byte, 1)
	go func() {
		_, p, err := c.ReadMessage()
		if err == nil {
			got <- bytes.Clone(p)
		}
		close(got)
	}()
	op, p := fs.readClientFrame(t)
	assert.Equal(t, OpPong, op)
	assert.Equal(t, "abc", string(p))
	assert.Equal(t, "after", string(<-got))
}

func TestCloseFrameIsEchoedAndReturned(t *testing.T) {
	c, fs := newPair(t, 256, 1<<20)
	fs.send(t, frame(true, OpClose, append([]byte{0x0B, 0xC0}, "slow consumer"...))) // 3008
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage()
		errc <- err
	}()
	op, p := fs.readClientFrame(t)
	assert.Equal(t, OpClose, op)
	assert.Equal(t, []byte{0x0B, 0xC0}, p)
	var ce *CloseError
	require.ErrorAs(t, <-errc, &ce)
	assert.Equal(t, 3008, ce.Code)
	assert.Equal(t, "slow consumer", ce.Reason)

	c2, fs2 := newPair(t, 256, 1<<20)
	fs2.send(t, frame(true, OpClose, nil))
	go func() { _, _, err := c2.ReadMessage(); errc <- err }()
	op, p = fs2.readClientFrame(t)
	assert.Equal(t, OpClose, op)
	assert.Empty(t, p)
	require.ErrorAs(t, <-errc, &ce)
	assert.Equal(t, CloseNoStatus, ce.Code)
}

func TestProtocolViolations(t *testing.T) {
	for name, raw := range map[string][]byte{
		"masked server frame": {0x81, 0x81, 1, 2, 3, 4, 'x'},
		"reserved bit":        {0xC1, 0x00},
		"reserved opcode":     {0x83, 0x00},
		"fragmented ping":     {0x09, 0x00},
		"long control frame":  append([]byte{0x89, 126, 0, 126}, make([]byte, 126)...),
		"lone continuation":   {0x80, 0x00},
		"interleaved message": {0x01, 0x01, 'a', 0x81, 0x01, 'b'},
		"huge length":         {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			c, fs := newPair(t, 256, 1<<20)
			fs.send(t, raw)
			_, _, err := c.ReadMessage()
			assert.ErrorIs(t, err, ErrProtocol)
		})
	}
}

func TestMessageLimit(t *testing.T) {
	c, fs := newPair(t, 256, 100)
	fs.send(t, frame(false, OpText, make([]byte, 60)), frame(true, OpContinuation, make([]byte, 60)))
	_, _, err := c.ReadMessage()
	assert.ErrorIs(t, err, ErrTooLarge)
}

func TestHandshakeRefusedAndBadAccept(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/forbidden" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		h, ok := w.(http.Hijacker)
		if !ok {
			return
		}
		nc, brw, err := h.Hijack()
		if err != nil {
			return
		}
		defer nc.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n")
		_ = brw.Flush()
	}))
	defer hs.Close()
	addr := strings.TrimPrefix(hs.URL, "http://")

	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	_, err = Handshake(nc, addr, "/forbidden", 1024, 1<<20)
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusForbidden, he.Status)

	nc2, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc2.Close()
	_, err = Handshake(nc2, addr, "/ws", 1024, 1<<20)
	assert.ErrorIs(t, err, ErrBadHandshake)
}

// TestAgainstCoderWebsocket runs the client against the WebSocket library
// pyre uses: the server checks the client's masking and framing for real.
func TestAgainstCoderWebsocket(t *testing.T) {
	srvErr := make(chan error, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			srvErr <- err
			return
		}
		ws.SetReadLimit(1 << 20)
		ctx := r.Context()
		for {
			typ, b, err := ws.Read(ctx)
			if err != nil {
				srvErr <- err
				return
			}
			if string(b) == "bye" {
				srvErr <- ws.Close(3008, "slow consumer")
				return
			}
			if err := ws.Write(ctx, typ, append([]byte("echo:"), b...)); err != nil {
				srvErr <- err
				return
			}
		}
	}))
	defer hs.Close()
	addr := strings.TrimPrefix(hs.URL, "http://")
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
	c, err := Handshake(nc, addr, "/ws", 512, 1<<20)
	require.NoError(t, err)

	for _, msg := range [][]byte{[]byte("hi"), bytes.Repeat([]byte("x"), 300), bytes.Repeat([]byte("y"), 70000)} {
		require.NoError(t, c.WriteMessage(OpText, msg))
		op, p, err := c.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, OpText, op)
		assert.Equal(t, append([]byte("echo:"), msg...), p)
	}
	require.NoError(t, c.WriteMessage(OpText, []byte("bye")))
	_, _, err = c.ReadMessage()
	var ce *CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 3008, ce.Code)
	assert.NoError(t, <-srvErr)

	_, _, err = c.ReadMessage()
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed), "after the close handshake the server hangs up: %v", err)
}

func TestParseHeaderNeedsTheWholeHeader(t *testing.T) {
	for _, n := range []int{5, 300, 70000} {
		f := frame(true, OpText, make([]byte, n))
		hl := len(f) - n
		for i := 0; i < hl; i++ {
			_, ok, err := ParseHeader(f[:i], 1<<20)
			require.NoError(t, err)
			assert.False(t, ok, "n=%d, %d header bytes", n, i)
		}
		h, ok, err := ParseHeader(f[:hl], 1<<20)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, Header{Fin: true, Op: OpText, Len: n, HeaderLen: hl}, h)
	}
	_, _, err := ParseHeader(frame(true, OpBinary, make([]byte, 300)), 299)
	assert.ErrorIs(t, err, ErrTooLarge)
}

func TestTakeOverHandsOverUnreadBytes(t *testing.T) {
	c, fs := newPair(t, 256, 1<<20)
	fs.send(t, frame(true, OpText, []byte("one")), frame(true, OpText, []byte("two")))
	_, p, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "one", string(p))
	// net.Pipe hands the second frame over in the same read; wait until the
	// reader has buffered it.
	for c.br.Buffered() < 5 {
		_, _ = c.br.Peek(c.br.Buffered() + 1)
	}
	var sink closeRecorder
	assert.Equal(t, frame(true, OpText, []byte("two")), c.TakeOver(&sink))
	assert.Nil(t, c.br, "the read buffer is dropped")
	require.NoError(t, c.WriteMessage(OpText, []byte("to the new writer")))
	_, op, got, _ := parseClientFrame(t, sink.buf.Bytes())
	assert.Equal(t, OpText, op)
	assert.Equal(t, "to the new writer", string(got))

	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	assert.Equal(t, 1, sink.closed, "closed once, through the new writer")
	assert.ErrorIs(t, c.WriteMessage(OpText, []byte("late")), net.ErrClosed)
}

type closeRecorder struct {
	buf    bytes.Buffer
	closed int
}

func (r *closeRecorder) Write(p []byte) (int, error) { return r.buf.Write(p) }
func (r *closeRecorder) Close() error                { r.closed++; return nil }

func TestControl(t *testing.T) {
	c, fs := newPair(t, 256, 1<<20)
	assert.NoError(t, c.Control(OpPong, []byte("x")))
	errc := make(chan error, 1)
	go func() { errc <- c.Control(OpClose, append([]byte{0x03, 0xE8}, "bye"...)) }()
	op, p := fs.readClientFrame(t)
	assert.Equal(t, OpClose, op)
	assert.Equal(t, []byte{0x03, 0xE8}, p)
	var ce *CloseError
	require.ErrorAs(t, <-errc, &ce)
	assert.Equal(t, &CloseError{Code: 1000, Reason: "bye"}, ce)
}

// handshakeAnswer runs HandshakeWith against a fake server answering with
// the extension header ext ("" for none) and returns the request's offer.
func handshakeAnswer(t *testing.T, offer bool, ext string) (*Conn, string, error) {
	t.Helper()
	cli, srv := net.Pipe()
	t.Cleanup(func() { cli.Close(); srv.Close() })
	offered := make(chan string, 1)
	go func() {
		req, err := http.ReadRequest(bufio.NewReader(srv))
		if err != nil {
			offered <- "error: " + err.Error()
			return
		}
		offered <- req.Header.Get("Sec-WebSocket-Extensions")
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
		if ext != "" {
			resp += "Sec-WebSocket-Extensions: " + ext + "\r\n"
		}
		_, _ = io.WriteString(srv, resp+"\r\n")
	}()
	c, err := HandshakeWith(cli, "example", "/ws", 1024, 1<<20, offer)
	return c, <-offered, err
}

func TestHandshakeDeflateOffer(t *testing.T) {
	c, offered, err := handshakeAnswer(t, true, "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
	require.NoError(t, err)
	assert.True(t, c.Deflate)
	assert.Equal(t, deflateOffer, offered)

	c, _, err = handshakeAnswer(t, true, "")
	require.NoError(t, err)
	assert.False(t, c.Deflate, "the server may decline")

	_, offered, err = handshakeAnswer(t, false, "permessage-deflate")
	assert.Empty(t, offered)
	assert.ErrorIs(t, err, ErrBadHandshake, "an extension nobody offered")

	_, _, err = handshakeAnswer(t, true, "x-webkit-deflate-frame")
	assert.ErrorIs(t, err, ErrBadHandshake)
}

// A compressed frame (RSV1) is a protocol error: the client cannot inflate.
func TestCompressedFrameIsProtocolError(t *testing.T) {
	_, _, err := ParseHeader([]byte{0xC1, 0x01, 'x'}, 1<<20)
	assert.ErrorIs(t, err, ErrProtocol)
}
