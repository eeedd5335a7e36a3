package wstransport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Reading (RFC 6455 5).
//
// A connection owns a read buffer only while input is read: the reader
// takes one from a pool when input arrives, reads and handles every whole
// message it holds, and gives it back once it is consumed, at a message
// boundary. A message that fits the buffer in one frame is handled in
// place; larger or fragmented ones are assembled in a pooled message
// buffer, reading the socket directly for payloads larger than the read
// buffer. Compressed messages are inflated into a pooled buffer, bounded
// by MaxInflatedSize. The reader blocks (on the runtime's poller) only for
// the rest of a frame or message that has begun to arrive.

// readBufSize is the size of a reader's pooled buffer: enough for the
// messages of a Phoenix client in place.
const readBufSize = 4096

// closeTimeout bounds the close handshake: the write of a close frame and
// the wait for the client's answer to the server's close frame.
const closeTimeout = 5 * time.Second

// maxPooledMsg is the largest message buffer kept in the pool.
const maxPooledMsg = 64 << 10

var (
	readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}
	msgBufs  = sync.Pool{New: func() any { b := make([]byte, 0, readBufSize); return &b }}
)

// putMsgBuf returns a message buffer to the pool unless it grew large.
func putMsgBuf(p *[]byte, b []byte) {
	if cap(b) <= maxPooledMsg {
		*p = b[:0]
		msgBufs.Put(p)
	}
}

// closeError is a frame the server closes the connection over, with the
// close code and reason it answers (1002 protocol error, 1009 too big,
// 1007 a compressed payload that does not inflate).
type closeError struct {
	code   int
	reason string
}

func (e *closeError) Error() string { return fmt.Sprintf("close %d: %s", e.code, e.reason) }

func protocolError(reason string) error { return &closeError{closeProtocolError, reason} }

// closeReceived ends reading when the client's close frame came: code is
// the client's (1005 for none).
type closeReceived struct{ code int }

func (e *closeReceived) Error() string { return fmt.Sprintf("close frame received (%d)", e.code) }

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin    bool
	masked bool
	rsv    byte // the RSV bits, in place (0x70)
	op     byte
	n      int64
	key    [4]byte
}

// takeBuf gives the reader its buffer, holding the input read before it
// (pending).
func (c *Conn) takeBuf() {
	if c.rbuf != nil {
		return
	}
	if len(c.pending) > readBufSize {
		b := slices.Clone(c.pending)
		c.rbuf, c.rpos, c.rend = &b, 0, len(b)
	} else {
		c.rbuf = readBufs.Get().(*[]byte)
		c.rpos, c.rend = 0, copy(*c.rbuf, c.pending)
	}
	c.pending = nil
}

// dropBuf gives the buffer back: when all input is consumed, or always
// (force) when reading ended.
func (c *Conn) dropBuf(force bool) {
	if c.rbuf == nil || (c.rpos < c.rend && !force) {
		return
	}
	if len(*c.rbuf) == readBufSize {
		readBufs.Put(c.rbuf)
	}
	c.rbuf, c.rpos, c.rend = nil, 0, 0
}

// fill reads the socket into the buffer, at least one byte, moving what is
// buffered to its start first.
func (c *Conn) fill() error {
	b := *c.rbuf
	if c.rpos > 0 {
		c.rend = copy(b, b[c.rpos:c.rend])
		c.rpos = 0
	}
	n, err := c.nc.Conn.Read(b[c.rend:])
	c.rend += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// need reads until n bytes (at most the buffer's size) are buffered.
func (c *Conn) need(n int) error {
	for c.rend-c.rpos < n {
		if err := c.fill(); err != nil {
			return err
		}
	}
	return nil
}

// burst reads and handles what arrived: with read, at least one read of the
// socket; then every message whose start is buffered. It reports whether
// the connection goes on; it returns at a message boundary with the
// buffer given back.
func (c *Conn) burst(read bool) bool {
	if !read && len(c.pending) == 0 && c.rbuf == nil {
		return true
	}
	c.takeBuf()
	for read || c.rpos < c.rend {
		read = false
		if err := c.readMessage(); err != nil {
			c.readEnded(err)
			return false
		}
	}
	c.dropBuf(false)
	return true
}

// readHeader reads the next frame header.
func (c *Conn) readHeader() (h frameHeader, err error) {
	if err = c.need(2); err != nil {
		return h, err
	}
	b := (*c.rbuf)[c.rpos:c.rend]
	hl := 2
	switch b[1] & 0x7f {
	case 126:
		hl += 2
	case 127:
		hl += 8
	}
	if b[1]&0x80 != 0 {
		hl += 4
	}
	if err = c.need(hl); err != nil {
		return h, err
	}
	b = (*c.rbuf)[c.rpos:c.rend]
	h.fin, h.rsv, h.op, h.masked = b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0f, b[1]&0x80 != 0
	switch l := b[1] & 0x7f; l {
	case 126:
		h.n = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			return h, protocolError("invalid frame length")
		}
		h.n = int64(v)
	default:
		h.n = int64(l)
	}
	if h.masked {
		copy(h.key[:], b[hl-4:hl])
	}
	c.rpos += hl
	c.lastRead.Store(time.Now().UnixNano())
	return h, nil
}

// checkHeader applies RFC 6455's rules to a client frame; inMessage: a
// fragmented message is being read.
func (c *Conn) checkHeader(h *frameHeader, inMessage bool) error {
	switch {
	case !h.masked:
		return protocolError("unmasked client frame")
	case h.rsv&0x30 != 0:
		return protocolError("reserved bits set")
	case h.op >= 0x8:
		if h.op > 0xA {
			return protocolError("unknown opcode")
		}
		if !h.fin || h.n > 125 || h.rsv != 0 {
			return protocolError("invalid control frame")
		}
	case h.op > 0x2:
		return protocolError("unknown opcode")
	case inMessage && h.op != 0:
		return protocolError("new message before the last one ended")
	case !inMessage && h.op == 0:
		return protocolError("continuation frame without a message")
	case h.rsv != 0 && (!c.deflate || h.op == 0):
		return protocolError("unexpected RSV1 bit")
	}
	return nil
}

// inPlace returns the next n (at most the buffer's size) payload bytes,
// unmasked, in the read buffer.
func (c *Conn) inPlace(h *frameHeader) ([]byte, error) {
	n := int(h.n)
	if err := c.need(n); err != nil {
		return nil, err
	}
	p := (*c.rbuf)[c.rpos : c.rpos+n]
	c.rpos += n
	maskBytes(p, h.key)
	return p, nil
}

// readPayload reads len(dst) payload bytes into dst, unmasked: what is
// buffered, then straight from the socket.
func (c *Conn) readPayload(dst []byte, key [4]byte) error {
	n := copy(dst, (*c.rbuf)[c.rpos:c.rend])
	c.rpos += n
	if n < len(dst) {
		if _, err := io.ReadFull(c.nc.Conn, dst[n:]); err != nil {
			return err
		}
	}
	maskBytes(dst, key)
	return nil
}

// readMessage reads the next frame and handles it: a control frame, or a
// data frame with the rest of its message, delivered to the peer.
func (c *Conn) readMessage() error {
	if c.inf != nil {
		c.beforeInflate()
	}
	h, err := c.readHeader()
	if err != nil {
		return err
	}
	if err := c.checkHeader(&h, false); err != nil {
		return err
	}
	if h.op >= 0x8 {
		return c.control(&h)
	}
	bin, compressed := h.op == 0x2, h.rsv != 0
	cfg := &c.srv.cfg
	limit := cfg.MaxFrameSize
	if compressed {
		// The inflated size is what counts (inflate); the wire bytes of
		// a compressed message are bounded as generously.
		limit = max(cfg.MaxFrameSize, cfg.MaxInflatedSize)
	}
	if h.fin && h.n <= readBufSize {
		if h.n > limit {
			return c.tooBig(cfg.MaxFrameSize)
		}
		p, err := c.inPlace(&h)
		if err != nil {
			return err
		}
		return c.deliver(bin, compressed, p)
	}
	mp := msgBufs.Get().(*[]byte)
	msg := (*mp)[:0]
	defer func() { putMsgBuf(mp, msg) }()
	for {
		if int64(len(msg))+h.n > limit {
			return c.tooBig(limit)
		}
		start := len(msg)
		msg = slices.Grow(msg, int(h.n))[:start+int(h.n)]
		if err := c.readPayload(msg[start:], h.key); err != nil {
			return err
		}
		if h.fin {
			break
		}
		for {
			if h, err = c.readHeader(); err != nil {
				return err
			}
			if err := c.checkHeader(&h, true); err != nil {
				return err
			}
			if h.op < 0x8 {
				break
			}
			if err := c.control(&h); err != nil {
				return err
			}
		}
	}
	return c.deliver(bin, compressed, msg)
}

// tooBig is the error of a message past its read limit.
func (c *Conn) tooBig(limit int64) error {
	return &closeError{closeTooBig, fmt.Sprintf("read limited at %d bytes", limit)}
}

// deliver hands a whole message to the peer, inflated first if it is
// compressed.
func (c *Conn) deliver(bin, compressed bool, p []byte) error {
	if !compressed {
		c.peer.Deliver(bin, p)
		return nil
	}
	op := msgBufs.Get().(*[]byte)
	out, err := inflate(p, (*op)[:0], c.srv.cfg.MaxInflatedSize)
	defer putMsgBuf(op, out)
	if err != nil {
		return err
	}
	c.inf.credit -= int64(len(out))
	c.peer.Deliver(bin, out)
	return nil
}

// control handles a control frame: a ping is answered, a pong ignored, a
// close frame ends reading (answered, see clientClose).
func (c *Conn) control(h *frameHeader) error {
	p, err := c.inPlace(h)
	if err != nil {
		return err
	}
	switch h.op {
	case 0x9:
		return c.nc.writeControl(0xA, p)
	case 0x8:
		return c.clientClose(p)
	}
	return nil
}

// clientClose answers the client's close frame, as Bandit does (see
// closeAnswer), unless the server sent its own close frame first (then
// this one is the answer), and ends reading.
func (c *Conn) clientClose(p []byte) error {
	code := 1005
	if len(p) >= 2 {
		code = int(binary.BigEndian.Uint16(p))
	}
	answer := closeAnswer(p)
	c.closeMu.Do(func() {
		c.stopQueue()
		_ = c.nc.Conn.SetWriteDeadline(time.Now().Add(closeTimeout))
		_ = c.nc.writeControl(0x8, []byte{byte(answer >> 8), byte(answer)})
	})
	// The server's own close frame may still be on its way (behind a
	// batch of frames, say): the socket is closed once it went out, or
	// its write failed (bounded by closeTimeout).
	c.closeWrite.Lock()
	c.closeWrite.Unlock() //nolint:staticcheck // a wait, not a critical section
	return &closeReceived{code}
}

// readEnded logs why reading ended and, for a frame the server refuses,
// sends the close frame that says why.
func (c *Conn) readEnded(err error) {
	log, ctx := c.peer.Logger(), c.peer.Context()
	var ce *closeError
	var cr *closeReceived
	switch {
	case errors.As(err, &ce):
		if ce.code == closeTooBig {
			log.LogAttrs(ctx, slog.LevelWarn, "message too large, connection closed", slog.String("reason", ce.reason))
		} else {
			log.LogAttrs(ctx, slog.LevelDebug, "invalid frame, connection closed", slog.Int("code", ce.code), slog.String("reason", ce.reason))
		}
		c.closeMu.Do(func() {
			c.stopQueue()
			_ = c.nc.Conn.SetWriteDeadline(time.Now().Add(closeTimeout))
			_ = c.nc.writeControl(0x8, closePayload(ce.code, ce.reason))
		})
		c.closeWrite.Lock()   // the server's own close frame, if it was first (see clientClose)
		c.closeWrite.Unlock() //nolint:staticcheck // a wait, not a critical section
	case errors.As(err, &cr):
		log.LogAttrs(ctx, slog.LevelDebug, "connection closed by client", slog.Int("code", cr.code))
	default:
		log.LogAttrs(ctx, slog.LevelDebug, "connection ended", slog.Any("error", err))
	}
}

// closePayload is a close frame's payload: the code and the reason, cut
// to fit a control frame.
func closePayload(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

// maskBytes applies a client frame's masking key (RFC 6455 5.3) to p, the
// whole payload of one frame.
func maskBytes(p []byte, key [4]byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}
