package main

import (
	"errors"
	"fmt"

	"github.com/pyre-go/pyre/cmd/pyrebench/internal/wsc"
)

// The epoll read path (Linux): a connection's goroutine dials, upgrades and
// joins, then hands the socket to one of a few pollers and ends. A poller
// waits on a level-triggered epoll set and makes one read() per readiness
// into the connection's buffer, where consume finds the frames. Compared
// with a goroutine blocked in net.Conn.Read per connection this saves the
// extra read that returns EAGAIN, the netpoll wake-up and the goroutine
// switch on every delivery, and the goroutine stack of an idle connection,
// so the client stays well below the server's cost per delivery.

var errFragment = errors.New("continuation frame without a first frame")

// maxKeptBuf is the largest read buffer a connection keeps after a big
// frame made it grow: connections that receive large messages keep a buffer
// that fits them instead of reallocating it for every message.
const maxKeptBuf = 64 << 10

// consume handles the complete frames in c.rbuf[:c.rlen] and keeps the
// incomplete rest at the front of the buffer. Only the owning poller calls
// it (or the connection's goroutine before the hand-over).
func (w *worker) consume(c *wconn) error {
	b := c.rbuf[:c.rlen]
	off := 0
	for {
		h, ok, err := wsc.ParseHeader(b[off:], maxMessage)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		total := h.HeaderLen + h.Len
		if len(b)-off < total {
			if total > len(c.rbuf) { // a frame larger than the buffer: grow it for this frame
				nb := make([]byte, total)
				c.rlen = copy(nb, b[off:])
				c.rbuf = nb
				return nil
			}
			break
		}
		payload := b[off+h.HeaderLen : off+total]
		off += total
		if err := w.frame(c, h, payload); err != nil {
			return err
		}
	}
	c.rlen = copy(c.rbuf, b[off:])
	if c.rlen == 0 && len(c.rbuf) > maxKeptBuf {
		c.rbuf = make([]byte, w.cfg.ReadBuf) // give a very large buffer back
	}
	return nil
}

func (w *worker) frame(c *wconn, h wsc.Header, payload []byte) error {
	if h.Op.IsControl() {
		return c.ws.Control(h.Op, payload)
	}
	if h.Op == wsc.OpContinuation {
		if c.frag == nil {
			return fmt.Errorf("%w: %w", wsc.ErrProtocol, errFragment)
		}
		if len(c.frag)+len(payload) > maxMessage {
			return wsc.ErrTooLarge
		}
		c.frag = append(c.frag, payload...)
		if !h.Fin {
			return nil
		}
		msg := c.frag
		c.frag = nil
		return w.handleMessage(c, msg)
	}
	if c.frag != nil {
		return fmt.Errorf("%w: new message inside a fragmented one", wsc.ErrProtocol)
	}
	if !h.Fin {
		c.frag = append(make([]byte, 0, 2*len(payload)), payload...)
		return nil
	}
	return w.handleMessage(c, payload)
}
