package channel

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pyre-go/pyre/internal/wsframe"
	"github.com/stretchr/testify/require"
)

// rawClient is a WebSocket client written on a bare TCP connection, for
// frames a conforming client library refuses to send (invalid close codes,
// invalid UTF-8, hand-made compressed payloads).
type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
	// Extensions is the Sec-WebSocket-Extensions header of the server's
	// answer.
	extensions string
}

// dialRaw upgrades a bare TCP connection; extensions, if not "", is
// offered as Sec-WebSocket-Extensions.
// rawTimeout bounds a raw client's whole conversation: a guard against a
// hang, not a timing assertion, so it is generous for -race on a loaded
// machine (a megabyte-sized message is decoded under the race detector).
const rawTimeout = 30 * time.Second

func (e *testEndpoint) dialRaw(t *testing.T, query, extensions string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", e.hs.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(rawTimeout)))
	req := "GET /socket/websocket?" + query + " HTTP/1.1\r\nHost: " + e.hs.Listener.Addr().String() +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if extensions != "" {
		req += "Sec-WebSocket-Extensions: " + extensions + "\r\n"
	}
	_, err = io.WriteString(nc, req+"\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	return &rawClient{t: t, nc: nc, br: br, extensions: resp.Header.Get("Sec-WebSocket-Extensions")}
}

// writeFrame sends one masked frame; first is the first header byte (FIN,
// RSV bits, opcode).
func (c *rawClient) writeFrame(first byte, payload []byte) {
	c.t.Helper()
	_, err := c.nc.Write(wsframe.Client(first, payload))
	require.NoError(c.t, err)
}

// sendText sends a final text frame.
func (c *rawClient) sendText(s string) { c.writeFrame(0x81, []byte(s)) }

// readFrame reads one server frame: its first header byte and payload.
func (c *rawClient) readFrame() (byte, []byte, error) { return wsframe.Read(c.br) }

// readText reads the next data frame and returns its (uncompressed) text.
func (c *rawClient) readText() string {
	c.t.Helper()
	for {
		first, p, err := c.readFrame()
		require.NoError(c.t, err)
		require.NotEqual(c.t, byte(0x88), first, "connection closed: %x", p)
		require.Zero(c.t, first&0x40, "a compressed server frame")
		if first&0x0f == 0x1 {
			return string(p)
		}
	}
}

// closeCode reads frames until the server's close frame and returns its
// code (1005 for a close frame without one).
func (c *rawClient) closeCode() int {
	c.t.Helper()
	for {
		first, p, err := c.readFrame()
		require.NoError(c.t, err, "no close frame")
		if first&0x0f != 0x8 {
			continue
		}
		if len(p) < 2 {
			return 1005
		}
		return int(binary.BigEndian.Uint16(p))
	}
}

// closeBody returns a close frame payload: code and reason.
func closeBody(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}
