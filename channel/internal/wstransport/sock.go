package wstransport

import (
	"net"
	"sync"
	"unicode/utf8"
)

// sock is the hijacked connection's socket: writes of queued frames (one
// socket write per batch, see writeFrames and tryWriteFrames), writes of
// control frames, and its closing, which tells the connection (a reader
// must end it: see Conn.socketClosed).
type sock struct {
	net.Conn
	owner *Conn

	// Writes: wmu orders every write to the socket, so frames never
	// interleave, and stays locked while the rest of a partial non-blocking
	// write is pending (see tryWriteFrames and finishWrite).
	wmu sync.Mutex
	// fd is the socket's descriptor for non-blocking writes and the poller
	// (-1 when the connection is not a plain socket, e.g. TLS, or not on
	// Linux). fdMu is held shared by a write on fd (and the poller's
	// epoll_ctl) and exclusively by Close, so the descriptor is never
	// released (and reused) under them.
	fd       int
	fdMu     sync.RWMutex
	fdClosed bool
}

// framePool holds gather buffers for the blocking write path (writeFrames).
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

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
func (c *sock) writeFrames(batch []outMsg) error {
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
func (c *sock) canWriteNoBlock() bool { return c.fd >= 0 }

// tryWriteFrames writes the batch's frames (gathered in *buf, which it may
// grow) with non-blocking socket writes. It returns done when the socket
// took everything or failed. Otherwise it returns the rest (a copy) for
// finishWrite(rest, held), to be called on a goroutine that may block:
//   - held: the socket took part of the batch; wmu stays locked, so the
//     rest goes out before any other write;
//   - !held: another write (a control frame being sent, perhaps to a full
//     socket) holds wmu, and tryWriteFrames does not wait
//     for it: the whole batch goes out after it.
func (c *sock) tryWriteFrames(batch []outMsg, buf *[]byte) (done bool, rest []byte, held bool, err error) {
	b := gather(batch, *buf)
	if len(batch) > 1 {
		*buf = b[:0]
	}
	locked, err := c.beginNoBlock()
	switch {
	case !locked:
		return false, append([]byte(nil), b...), false, nil
	case err != nil:
		return true, nil, false, err
	}
	n, err := rawWrite(c.fd, b)
	if err != nil || n == len(b) {
		c.endNoBlock(true)
		return true, nil, false, err
	}
	c.endNoBlock(false)
	return false, append([]byte(nil), b[n:]...), true, nil
}

// beginNoBlock prepares a non-blocking write on fd (tryWriteFrames, or a
// write-pool ring: ringWriter): it tries wmu, never waiting for it, and
// holds fdMu shared, so Close cannot release (and the kernel reuse) the
// descriptor until endNoBlock. locked false: another write holds wmu
// (nothing is held); err: the socket is closed (nothing is held).
//
// The write itself is a raw system call on the descriptor (rawWrite, Linux
// only, or an io_uring send) that tells neither the netpoller nor the
// scheduler. It cannot block (the socket is non-blocking), and telling the
// runtime costs more than the write on a busy server: measured on a
// saturated core, the runtime monitor saw a processor "in a system call"
// at nearly every tick, handed it to another thread and never backed off
// (11 % of the core went to its sleeps and the thread switches), and
// RawConn's per-call poller bookkeeping cost another 3 %.
func (c *sock) beginNoBlock() (locked bool, err error) {
	if !c.wmu.TryLock() {
		return false, nil
	}
	c.fdMu.RLock()
	if c.fdClosed {
		c.fdMu.RUnlock()
		c.wmu.Unlock()
		return true, net.ErrClosed
	}
	return true, nil
}

// endNoBlock ends what beginNoBlock began: it releases fdMu, and wmu
// unless the rest of a partial write is pending (unlock false: finishWrite
// with held true unlocks it).
func (c *sock) endNoBlock(unlock bool) {
	c.fdMu.RUnlock()
	if unlock {
		c.wmu.Unlock()
	}
}

// finishWrite writes the rest of a tryWriteFrames, blocking, and unlocks
// wmu; held says whether tryWriteFrames left wmu locked.
func (c *sock) finishWrite(rest []byte, held bool) error {
	if !held {
		c.wmu.Lock()
	}
	_, err := c.Conn.Write(rest)
	c.wmu.Unlock()
	return err
}

// Close closes the socket once no non-blocking write is using its
// descriptor.
func (c *sock) Close() error {
	c.fdMu.Lock()
	closed := c.fdClosed
	c.fdClosed = true
	c.fdMu.Unlock()
	if closed {
		return net.ErrClosed
	}
	err := c.Conn.Close()
	c.owner.socketClosed()
	return err
}

// writeControl writes one control frame (opcode op, at most 125 bytes of
// payload), blocking until the socket took it.
func (c *sock) writeControl(op byte, payload []byte) error {
	var b [2 + 125]byte
	b[0] = 0x80 | op
	b[1] = byte(len(payload))
	n := copy(b[2:], payload)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.Conn.Write(b[:2+n])
	return err
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
// Close frames that are invalid as frames (longer than 125 bytes,
// fragmented, RSV bits set) are answered 1002 before their payload is read
// (see readFrame).
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
