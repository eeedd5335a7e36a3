package wstransport

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"unicode/utf8"
)

// connBufSize is the size of the bufio buffer coder/websocket reads frame
// headers through. Small is enough: payloads larger than the buffer bypass
// it, and a bigger buffer would only cost idle memory.
const connBufSize = 256

// controlBufSize is the size of the bufio buffer coder/websocket writes
// through. pyre frames and writes data messages itself (writeFrames), so
// coder/websocket writes only control frames (pong, close): at most 2 + 125
// bytes, which must reach the socket in one Write (see Write, and wmu).
const controlBufSize = 128

// hijackWriter wraps the ResponseWriter so that the hijacked connection is
// a hijackedConn, and replaces net/http's 4 KiB buffers with small ones.
type hijackWriter struct {
	http.ResponseWriter
	c *Conn
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("wstransport: ResponseWriter does not implement http.Hijacker")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	cc := &hijackedConn{Conn: nc, owner: h.c}
	cc.rcond = sync.NewCond(&cc.rmu)
	cc.fd = -1
	if sc, ok := nc.(syscall.Conn); ok && rawWrites {
		if raw, err := sc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) { cc.fd = int(fd) })
		}
	}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		cc.pending = append([]byte(nil), b...)
	}
	h.c.nc = cc
	h.c.br = bufio.NewReaderSize(cc, connBufSize)
	rw := bufio.NewReadWriter(h.c.br, bufio.NewWriterSize(cc, controlBufSize))
	return cc, rw, nil
}

func (h *hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// hijackedConn is the hijacked net.Conn. A batch of queued frames goes out in
// one socket write (writeFrames), so a batch costs one send. It answers a
// client's close frame as Bandit (Phoenix's default server) does, and lets
// the reader wait for input on a shallow stack (waitReadable).
type hijackedConn struct {
	net.Conn
	owner *Conn // told when the socket is closed (Conn.socketClosed)

	// Reads: one goroutine reads the socket at a time; bytes read by
	// waitReadable (or by net/http before the hijack) wait in pending for
	// whichever reader comes next.
	rmu     sync.Mutex
	rcond   *sync.Cond
	reading bool
	pending []byte
	peek    [64]byte

	serverClose atomic.Bool // the server started the close handshake
	scan        frameScanner

	// Writes: wmu orders every write to the socket, so frames never
	// interleave, and stays locked while the rest of a partial non-blocking
	// write is pending (see tryWriteFrames and finishWrite).
	wmu sync.Mutex
	// fd is the socket's descriptor for non-blocking writes (-1 when the
	// connection is not a plain socket, e.g. TLS). fdMu is held shared by
	// a write on fd and exclusively by Close, so the descriptor is never
	// released (and reused) under a write.
	fd       int
	fdMu     sync.RWMutex
	fdClosed bool
}

// framePool holds gather buffers for the blocking write path (writeFrames).
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (c *hijackedConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	for len(c.pending) == 0 && c.reading {
		c.rcond.Wait()
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.rmu.Unlock()
		c.scan.feed(p[:n])
		return n, nil
	}
	c.reading = true
	c.rmu.Unlock()
	n, err := c.Conn.Read(p)
	c.rmu.Lock()
	c.reading = false
	c.rcond.Broadcast()
	c.rmu.Unlock()
	c.scan.feed(p[:n])
	return n, err
}

// hasPending reports whether bytes read ahead wait for the next Read.
func (c *hijackedConn) hasPending() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return len(c.pending) > 0
}

// waitReadable blocks until the peer sent something (or the connection
// failed), keeping what it read for the next Read. It returns at once if
// bytes are pending or another goroutine is reading.
func (c *hijackedConn) waitReadable() {
	c.rmu.Lock()
	if len(c.pending) > 0 || c.reading {
		c.rmu.Unlock()
		return
	}
	c.reading = true
	c.rmu.Unlock()
	n, _ := c.Conn.Read(c.peek[:]) // an error shows again at the next Read
	c.rmu.Lock()
	c.pending = c.peek[:n]
	c.reading = false
	c.rcond.Broadcast()
	c.rmu.Unlock()
}

// gather returns the batch's frames as one byte slice: the frame itself
// for a batch of one, otherwise the frames copied into buf (grown as
// needed; the caller keeps the grown buffer).
func gather(batch []outMsg, buf []byte) []byte {
	if len(batch) == 1 {
		return batch[0].b
	}
	b := buf[:0]
	for i := range batch {
		b = append(b, batch[i].b...)
	}
	return b
}

// writeFrames writes complete frames in one socket write, blocking until
// the socket took them all.
func (c *hijackedConn) writeFrames(batch []outMsg) error {
	bp := framePool.Get().(*[]byte)
	b := gather(batch, *bp)
	c.wmu.Lock()
	_, err := c.Conn.Write(b)
	c.wmu.Unlock()
	if len(batch) > 1 && cap(b) <= 256<<10 {
		*bp = b[:0]
	}
	framePool.Put(bp)
	return err
}

// canWriteNoBlock reports whether tryWriteFrames may be used: the
// connection is a plain socket.
func (c *hijackedConn) canWriteNoBlock() bool { return c.fd >= 0 }

// tryWriteFrames writes the batch's frames (gathered in *buf, which it may
// grow) with non-blocking socket writes. It returns done when the socket
// took everything or failed. Otherwise it returns the rest (a copy) for
// finishWrite(rest, held), to be called on a goroutine that may block:
//   - held: the socket took part of the batch; wmu stays locked, so the
//     rest goes out before any other write;
//   - !held: another write (a control frame coder/websocket is sending,
//     perhaps to a full socket) holds wmu, and tryWriteFrames does not wait
//     for it: the whole batch goes out after it.
func (c *hijackedConn) tryWriteFrames(batch []outMsg, buf *[]byte) (done bool, rest []byte, held bool, err error) {
	b := gather(batch, *buf)
	if len(batch) > 1 {
		*buf = b[:0]
	}
	if !c.wmu.TryLock() {
		return false, append([]byte(nil), b...), false, nil
	}
	n, err := c.writeNoBlock(b)
	if err != nil || n == len(b) {
		c.wmu.Unlock()
		return true, nil, false, err
	}
	return false, append([]byte(nil), b[n:]...), true, nil
}

// finishWrite writes the rest of a tryWriteFrames, blocking, and unlocks
// wmu; held says whether tryWriteFrames left wmu locked.
func (c *hijackedConn) finishWrite(rest []byte, held bool) error {
	if !held {
		c.wmu.Lock()
	}
	_, err := c.Conn.Write(rest)
	c.wmu.Unlock()
	return err
}

// writeNoBlock writes b to the non-blocking socket until it is all written,
// the socket would block (a short count, no error) or the write fails.
//
// It calls write(2) on the descriptor directly, as a raw system call
// (rawWrite, Linux only), and tells neither the netpoller nor the
// scheduler. The call cannot block (the socket is non-blocking), fdMu keeps
// Close from releasing the descriptor meanwhile, and telling the runtime
// costs more than the write on a busy server: measured on a saturated core, the runtime monitor saw a processor
// "in a system call" at nearly every tick, handed it to another thread and
// never backed off (11 % of the core went to its sleeps and the thread
// switches), and RawConn's per-call poller bookkeeping cost another 3 %.
func (c *hijackedConn) writeNoBlock(b []byte) (int, error) {
	c.fdMu.RLock()
	defer c.fdMu.RUnlock()
	if c.fdClosed {
		return 0, net.ErrClosed
	}
	return rawWrite(c.fd, b)
}

// Close closes the socket once no non-blocking write is using its
// descriptor.
func (c *hijackedConn) Close() error {
	c.fdMu.Lock()
	c.fdClosed = true
	c.fdMu.Unlock()
	err := c.Conn.Close()
	c.owner.socketClosed()
	return err
}

// Write answers a client's close frame the way Bandit (Phoenix's default
// server) does rather than echoing it as coder/websocket does: the answer
// is the one the frame scanner decided from the client's frame (see
// closeAnswer), whatever coder/websocket wrote (its echo of a valid code,
// or 1002 for a payload it could not parse). Close frames the server starts
// itself pass unchanged.
func (c *hijackedConn) Write(p []byte) (int, error) {
	if len(p) >= 2 && p[0] == 0x88 && int(p[1]&0x7f)+2 == len(p) && !c.serverClose.Load() {
		if answer := c.scan.answer.Load(); answer != 0 {
			c.wmu.Lock()
			_, err := c.Conn.Write([]byte{0x88, 0x02, byte(answer >> 8), byte(answer)})
			c.wmu.Unlock()
			if err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.Write(p)
}

// closeAnswer returns the close code that answers a client's close frame
// payload (unmasked, at most 125 bytes), as Bandit answers it (RFC 6455
// 7.4):
//
//	client's close frame                         answer
//	no payload (no code)                         1002
//	1-byte payload                               1002
//	code 1000-1003, 1007-1011, 3000-4999         1000
//	any other code (0-999, 1004-1006,            1002
//	  1012-2999, 5000 and above)
//	reason not valid UTF-8                       1007 (RFC 6455 8.1)
//
// Two answers differ from Bandit's: Bandit answers 1000 to codes of 5000
// and above (RFC 6455 defines none) and 1002 to an invalid UTF-8 reason.
// Frames coder/websocket refuses before reading their payload (longer than
// 125 bytes, fragmented, RSV bits set) are answered 1002 by the scanner.
func closeAnswer(b []byte) int32 {
	if len(b) < 2 {
		return closeProtocolError
	}
	code := int(b[0])<<8 | int(b[1])
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011, code >= 3000 && code <= 4999:
	default:
		return closeProtocolError
	}
	if !utf8.Valid(b[2:]) {
		return closeInvalidPayload
	}
	return closeNormal
}

// frameScanner follows the frame headers of the inbound byte stream, only
// to notice the client's close frame (coder/websocket answers it before the
// application hears of it) and decide the answer (closeAnswer). It sees
// the bytes as they are read from the socket, before coder/websocket
// parses them, so the answer is decided before coder/websocket writes its
// own.
type frameScanner struct {
	hdr      [14]byte
	hn, need int
	skip     uint64
	// answer is the code to answer the client's first close frame with, 0
	// until that frame was read whole. Later close frames are ignored.
	answer     atomic.Int32
	closeSeen  bool
	closeFrame *closePayload // the first close frame's payload, while it is read
}

// closePayload collects the (unmasked) payload of the client's close frame.
type closePayload struct {
	mask [4]byte
	b    []byte
}

func (s *frameScanner) feed(p []byte) {
	if s.need == 0 {
		s.need = 2
	}
	for len(p) > 0 {
		if s.skip > 0 {
			n := uint64(len(p))
			if n > s.skip {
				n = s.skip
			}
			if cp := s.closeFrame; cp != nil {
				for _, b := range p[:n] {
					cp.b = append(cp.b, b^cp.mask[len(cp.b)&3])
				}
			}
			s.skip -= n
			p = p[n:]
			if s.skip == 0 {
				s.endPayload()
			}
			continue
		}
		s.hdr[s.hn] = p[0]
		s.hn++
		p = p[1:]
		if s.hn == 2 {
			switch s.hdr[1] & 0x7f {
			case 126:
				s.need += 2
			case 127:
				s.need += 8
			}
			if s.hdr[1]&0x80 != 0 {
				s.need += 4
			}
		}
		if s.hn < 2 || s.hn < s.need {
			continue
		}
		var n uint64
		switch l := s.hdr[1] & 0x7f; l {
		case 126:
			n = uint64(s.hdr[2])<<8 | uint64(s.hdr[3])
		case 127:
			for _, b := range s.hdr[2:10] {
				n = n<<8 | uint64(b)
			}
		default:
			n = uint64(l)
		}
		if s.hdr[0]&0x0f == 0x8 && !s.closeSeen {
			s.startClose(n)
		}
		s.skip, s.hn, s.need = n, 0, 2
		if n == 0 {
			s.endPayload()
		}
	}
}

// startClose begins the client's first close frame, of n payload bytes:
// frames coder/websocket refuses before reading the payload are answered
// 1002 at once, the others once their payload is read.
func (s *frameScanner) startClose(n uint64) {
	s.closeSeen = true
	fin, rsv := s.hdr[0]&0x80 != 0, s.hdr[0]&0x70 != 0
	if !fin || rsv || n > 125 {
		s.answer.Store(closeProtocolError)
		return
	}
	cp := &closePayload{b: make([]byte, 0, n)}
	if s.hdr[1]&0x80 != 0 {
		copy(cp.mask[:], s.hdr[s.need-4:s.need])
	}
	s.closeFrame = cp
}

// endPayload ends a frame's payload: the close frame's answer is decided.
func (s *frameScanner) endPayload() {
	if cp := s.closeFrame; cp != nil {
		s.closeFrame = nil
		s.answer.Store(closeAnswer(cp.b))
	}
}
