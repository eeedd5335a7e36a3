package wstransport

import (
	"log/slog"
	"time"
)

// Inflation bounds (Config.MaxInflatedSize and MaxInflateRate).
//
// coder/websocket inflates a compressed message inside Read, through the
// read limit (SetReadLimit), which counts inflated bytes for a compressed
// message and wire bytes for an uncompressed one. The limit is read when a
// message starts, so before each read the transport looks at the next
// frame's header in the read buffer: a compressed message gets
// MaxInflatedSize, an uncompressed one MaxFrameSize. A compressed message
// past its limit stops inflating there and coder/websocket closes the
// connection with 1009.

// inflateState is a compressed connection's inflation state: the read
// limit in force and a token bucket of inflated bytes. Only the reading
// goroutine uses it.
type inflateState struct {
	limit  int64 // the read limit set on the connection
	credit int64 // bytes the connection may inflate; negative in debt
	at     int64 // clock reading of the last refill, nanoseconds
}

// refill adds what rate bytes per second earned since the last refill, up
// to burst.
func (inf *inflateState) refill(now, rate, burst int64) {
	if el := now - inf.at; el > 0 {
		earned := float64(el) * float64(rate) / 1e9
		if earned >= float64(burst-inf.credit) {
			inf.credit = burst
		} else {
			inf.credit += int64(earned)
		}
	}
	inf.at = now
}

// beforeInflate prepares the next read of a compressed connection: it
// pauses while the connection's inflation is in debt (the token bucket
// refills at MaxInflateRate), then sets the read limit for the next
// message. It reports whether that message is (or may be) compressed, so
// that its inflated size is charged.
func (c *Conn) beforeInflate() bool {
	inf, o := c.inf, &c.srv.cfg
	inf.refill(c.srv.clock(), o.MaxInflateRate, o.MaxInflatedSize)
	if inf.credit < 0 {
		d := time.Duration(float64(-inf.credit) / float64(o.MaxInflateRate) * 1e9)
		c.peer.Logger().LogAttrs(c.peer.Context(), slog.LevelDebug, "inflate rate exceeded, pausing reads",
			slog.Duration("pause", d), slog.Int64("rate", o.MaxInflateRate))
		c.srv.pause(c.peer.Context(), d)
		inf.refill(c.srv.clock(), o.MaxInflateRate, o.MaxInflatedSize)
	}
	compressed, known := c.nextCompressed()
	compressed = compressed || !known
	limit := o.MaxFrameSize
	if compressed {
		limit = o.MaxInflatedSize
	}
	if limit != inf.limit {
		c.ws.SetReadLimit(limit)
		inf.limit = limit
	}
	return compressed
}

// nextCompressed looks at the frames buffered for the next read (without
// reading the socket): it skips control frames and reports the RSV1 bit
// (compressed) of the first data frame, if it is buffered (known).
func (c *Conn) nextCompressed() (compressed, known bool) {
	c.brMu.Lock()
	defer c.brMu.Unlock()
	if c.br.Buffered() == 0 {
		if !c.nc.hasPending() {
			return false, false
		}
		_, _ = c.br.Peek(1) // takes the pending bytes without blocking
	}
	b, _ := c.br.Peek(c.br.Buffered())
	for off := 0; off < len(b); {
		h := b[off]
		if op := h & 0x0f; op < 0x8 {
			// A data frame (or a protocol error coder/websocket refuses).
			return h&0x40 != 0, true
		}
		if off+2 > len(b) {
			return false, false
		}
		n := int(b[off+1] & 0x7f)
		if n > 125 {
			return false, true // an invalid control frame: the read fails
		}
		hl := 2
		if b[off+1]&0x80 != 0 {
			hl += 4 // masking key
		}
		off += hl + n
	}
	return false, false
}
