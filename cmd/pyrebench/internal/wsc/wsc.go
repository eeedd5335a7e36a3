// Package wsc is the client side of RFC 6455 WebSocket framing, as small as
// a load generator needs: an HTTP/1.1 upgrade on a net.Conn the caller
// dialed, masked writes of whole messages in one syscall, and reads that
// hand out messages straight from the read buffer when they fit in it.
// Pings are answered and close frames echoed inside ReadMessage, so one
// goroutine per connection is enough. No extensions (permessage-deflate) and
// no subprotocols are negotiated.
package wsc

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	randv2 "math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Opcode is a WebSocket frame opcode.
type Opcode byte

// Opcodes of RFC 6455 section 5.2.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

func (op Opcode) isControl() bool { return op&0x8 != 0 }

func (op Opcode) valid() bool {
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return true
	}
	return false
}

// Close status codes used by this package.
const (
	CloseNoStatus = 1005 // a close frame without a status code
)

var (
	// ErrProtocol is returned for frames a server must not send: masked
	// frames, reserved bits or opcodes, fragmented or oversized control
	// frames, a continuation without a start.
	ErrProtocol = errors.New("wsc: protocol error")
	// ErrTooLarge is returned for a message larger than the limit given to
	// Handshake.
	ErrTooLarge = errors.New("wsc: message too large")
	// ErrBadHandshake is returned for a 101 answer that is not a valid
	// WebSocket upgrade.
	ErrBadHandshake = errors.New("wsc: bad handshake")
)

// CloseError is returned by ReadMessage when the server sent a close frame.
type CloseError struct {
	Code   int // CloseNoStatus when the frame carried none
	Reason string
}

// Error implements error.
func (e *CloseError) Error() string {
	return fmt.Sprintf("wsc: closed by server: %d %q", e.Code, e.Reason)
}

// HandshakeError is returned when the server answered the upgrade with a
// status other than 101.
type HandshakeError struct {
	Status int
}

// Error implements error.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("wsc: upgrade refused: HTTP %d", e.Status)
}

// Conn is a client WebSocket connection. ReadMessage must be called from
// one goroutine at a time; WriteMessage may be called from any.
type Conn struct {
	// Deflate reports that the server agreed to permessage-deflate.
	Deflate bool

	nc  net.Conn
	br  *bufio.Reader
	max int

	skip int    // bytes of the last message still in br, dropped at the next read
	msg  []byte // reassembly buffer for messages that do not fit in br
	ctrl [125]byte

	wmu    sync.Mutex
	w      io.Writer // nc, or what TakeOver installed
	closed bool
	wbuf   []byte
}

const guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + guid))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Handshake upgrades nc: it sends a GET for requestURI (path and query)
// with the given Host and reads the 101 answer. readBuf is the size of the
// connection's read buffer (at least 256; messages up to that size are
// returned without copying) and maxMessage bounds a reassembled message.
// Deadlines are the caller's: set them on nc.
func Handshake(nc net.Conn, host, requestURI string, readBuf, maxMessage int) (*Conn, error) {
	return HandshakeWith(nc, host, requestURI, readBuf, maxMessage, false)
}

// deflateOffer is the permessage-deflate offer of HandshakeWith: no context
// takeover either way, as browsers negotiate it with pyre.
const deflateOffer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

// HandshakeWith is Handshake; with offerDeflate the client also offers
// permessage-deflate and accepts the server's agreement (Conn.Deflate).
// The client does not inflate: a compressed frame (RSV1) is ErrProtocol,
// so this only measures what negotiating compression costs the server for
// messages too small to be compressed.
func HandshakeWith(nc net.Conn, host, requestURI string, readBuf, maxMessage int, offerDeflate bool) (*Conn, error) {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + requestURI + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n"
	if offerDeflate {
		req += "Sec-WebSocket-Extensions: " + deflateOffer + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, err
	}
	readBuf = max(readBuf, 256)
	br := bufio.NewReaderSize(nc, readBuf)
	status, hdr, err := readResponse(br)
	if err != nil {
		return nil, err
	}
	if status != 101 {
		return nil, &HandshakeError{Status: status}
	}
	if !strings.EqualFold(hdr["upgrade"], "websocket") || !headerHasToken(hdr["connection"], "upgrade") {
		return nil, fmt.Errorf("%w: missing Upgrade/Connection headers", ErrBadHandshake)
	}
	if hdr["sec-websocket-accept"] != AcceptKey(key) {
		return nil, fmt.Errorf("%w: wrong Sec-WebSocket-Accept", ErrBadHandshake)
	}
	deflate := false
	if ext := hdr["sec-websocket-extensions"]; ext != "" {
		name, _, _ := strings.Cut(ext, ";")
		if !offerDeflate || strings.Contains(ext, ",") || strings.TrimSpace(name) != "permessage-deflate" {
			return nil, fmt.Errorf("%w: unrequested extension %q", ErrBadHandshake, ext)
		}
		deflate = true
	}
	return &Conn{nc: nc, br: br, max: maxMessage, w: nc, Deflate: deflate}, nil
}

// readResponse reads an HTTP/1.1 response head (bounded by the reader's
// buffer per line and 64 lines) and returns the status and the headers
// with lower-case names.
func readResponse(br *bufio.Reader) (int, map[string]string, error) {
	line, err := readLine(br)
	if err != nil {
		return 0, nil, err
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
		return 0, nil, fmt.Errorf("%w: status line %q", ErrBadHandshake, line)
	}
	hdr := map[string]string{}
	for range 64 {
		line, err := readLine(br)
		if err != nil {
			return 0, nil, err
		}
		if line == "" {
			return status, hdr, nil
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return 0, nil, fmt.Errorf("%w: header line %q", ErrBadHandshake, line)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if prev, ok := hdr[name]; ok {
			value = prev + ", " + value
		}
		hdr[name] = value
	}
	return 0, nil, fmt.Errorf("%w: too many header lines", ErrBadHandshake)
}

func readLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("%w: header line too long", ErrBadHandshake)
		}
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func headerHasToken(v, token string) bool {
	for _, t := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// WriteMessage sends p as one masked frame with a fresh mask key, in one
// write. It is safe for concurrent use; after Close it returns
// net.ErrClosed.
func (c *Conn) WriteMessage(op Opcode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.wbuf = AppendFrame(c.wbuf[:0], op, p, randv2.Uint32())
	_, err := c.w.Write(c.wbuf)
	if cap(c.wbuf) > 4096 {
		c.wbuf = nil // do not keep a large buffer per connection
	}
	return err
}

// WriteClose sends a close frame with code and reason.
func (c *Conn) WriteClose(code int, reason string) error {
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	p = append(p, reason...)
	return c.WriteMessage(OpClose, p)
}

// AppendFrame appends one final (FIN) client frame of op carrying p,
// masked with key, to dst.
func AppendFrame(dst []byte, op Opcode, p []byte, key uint32) []byte {
	dst = append(dst, 0x80|byte(op))
	n := len(p)
	switch {
	case n <= 125:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], key)
	dst = append(dst, k[:]...)
	start := len(dst)
	dst = append(dst, p...)
	Mask(k, dst[start:])
	return dst
}

// Mask XORs p in place with the 4-byte key, starting at key offset 0.
// Masking twice restores p.
func Mask(key [4]byte, p []byte) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k64)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}

// Header is a parsed frame header.
type Header struct {
	Fin       bool
	Op        Opcode
	Len       int // payload length
	HeaderLen int // bytes before the payload
}

// ParseHeader parses the server frame header at the start of b. It returns
// ok == false when b holds only part of it. Frames a server must not send
// are ErrProtocol; a payload longer than maxLen is ErrTooLarge.
func ParseHeader(b []byte, maxLen int) (h Header, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	h = Header{Fin: b[0]&0x80 != 0, Op: Opcode(b[0] & 0x0F), HeaderLen: 2}
	if b[0]&0x70 != 0 || !h.Op.valid() {
		return h, false, fmt.Errorf("%w: reserved bits or opcode in 0x%02x", ErrProtocol, b[0])
	}
	if b[1]&0x80 != 0 {
		return h, false, fmt.Errorf("%w: masked server frame", ErrProtocol)
	}
	n := uint64(b[1] & 0x7F)
	switch n {
	case 126:
		if len(b) < 4 {
			return h, false, nil
		}
		n, h.HeaderLen = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return h, false, nil
		}
		n, h.HeaderLen = binary.BigEndian.Uint64(b[2:]), 10
		if n>>63 != 0 {
			return h, false, fmt.Errorf("%w: 64-bit length with the top bit set", ErrProtocol)
		}
	}
	if h.Op.isControl() && (!h.Fin || n > 125) {
		return h, false, fmt.Errorf("%w: fragmented or oversized control frame", ErrProtocol)
	}
	if n > uint64(maxLen) {
		return h, false, fmt.Errorf("%w: frame of %d bytes", ErrTooLarge, n)
	}
	h.Len = int(n)
	return h, true, nil
}

// IsControl reports whether op is a control opcode (close, ping, pong).
func (op Opcode) IsControl() bool { return op.isControl() }

func (c *Conn) readHeader() (Header, error) {
	need := 2
	for {
		b, err := c.br.Peek(need)
		if err != nil {
			return Header{}, err
		}
		h, ok, err := ParseHeader(b, c.max)
		if err != nil {
			return h, err
		}
		if ok {
			_, _ = c.br.Discard(h.HeaderLen)
			return h, nil
		}
		need = 10
		if b[1]&0x7F == 126 {
			need = 4
		}
	}
}

// Close closes the connection (the writer installed by TakeOver, if it is
// an io.Closer, else the net.Conn) once no write is in progress; later
// writes fail. It is safe to call more than once.
func (c *Conn) Close() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if cl, ok := c.w.(io.Closer); ok {
		return cl.Close()
	}
	return c.nc.Close()
}

// TakeOver hands reading over to the caller, who then parses frames with
// ParseHeader and answers control frames with Control: it returns a copy of
// the bytes already read but not yet returned by ReadMessage and drops the
// read buffer. ReadMessage must not be called afterwards. Writes go to w
// from now on (nil: the net.Conn still).
func (c *Conn) TakeOver(w io.Writer) []byte {
	if w != nil {
		c.wmu.Lock()
		c.w = w
		c.wmu.Unlock()
	}
	if c.skip > 0 {
		_, _ = c.br.Discard(c.skip)
		c.skip = 0
	}
	b, _ := c.br.Peek(c.br.Buffered())
	b = bytes.Clone(b)
	c.br, c.msg = nil, nil
	return b
}

// Control acts on a control frame: a ping is answered with a pong, a pong
// is ignored, and a close frame is echoed and returned as *CloseError.
func (c *Conn) Control(op Opcode, p []byte) error {
	switch op {
	case OpPing:
		return c.WriteMessage(OpPong, p)
	case OpClose:
		ce := &CloseError{Code: CloseNoStatus}
		if len(p) >= 2 {
			ce.Code = int(binary.BigEndian.Uint16(p))
			ce.Reason = string(p[2:])
		}
		_ = c.WriteMessage(OpClose, p[:min(len(p), 2)])
		return ce
	}
	return nil
}

// ReadMessage returns the next text or binary message. The returned slice
// is valid until the next call. A ping is answered with a pong, a pong is
// skipped, and a close frame is echoed and returned as *CloseError.
func (c *Conn) ReadMessage() (Opcode, []byte, error) {
	if c.skip > 0 {
		_, _ = c.br.Discard(c.skip)
		c.skip = 0
	}
	var op Opcode
	fragmented := false
	c.msg = c.msg[:0]
	for {
		h, err := c.readHeader()
		if err != nil {
			return 0, nil, err
		}
		if h.Op.isControl() {
			p := c.ctrl[:h.Len]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return 0, nil, err
			}
			if err := c.Control(h.Op, p); err != nil {
				return 0, nil, err
			}
			continue
		}
		if h.Op == OpContinuation {
			if !fragmented {
				return 0, nil, fmt.Errorf("%w: continuation without a first frame", ErrProtocol)
			}
		} else {
			if fragmented {
				return 0, nil, fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
			}
			op = h.Op
		}
		if h.Len > c.max-len(c.msg) {
			return 0, nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.max)
		}
		n := h.Len
		if h.Fin && !fragmented && n <= c.br.Size() {
			p, err := c.br.Peek(n)
			if err != nil {
				return 0, nil, err
			}
			c.skip = n
			return op, p, nil
		}
		start := len(c.msg)
		c.msg = slices.Grow(c.msg, n)[:start+n]
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
			return 0, nil, err
		}
		if h.Fin {
			m := c.msg
			if cap(c.msg) > 64<<10 {
				c.msg = nil // do not keep a large buffer per connection
			}
			return op, m, nil
		}
		fragmented = true
	}
}
