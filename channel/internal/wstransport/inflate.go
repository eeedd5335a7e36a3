package wstransport

import (
	"compress/flate"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Inflation bounds (Config.MaxInflatedSize and MaxInflateRate).
//
// A compressed message is inflated into a buffer bounded by
// MaxInflatedSize: past it inflating stops and the connection is closed
// with 1009, so a small compressed message cannot inflate to megabytes. An
// uncompressed message is bounded by MaxFrameSize. The inflated bytes are
// charged to a token bucket refilled at MaxInflateRate; while it is in
// debt, the connection's next read waits.

// inflateState is a compressed connection's token bucket of inflated
// bytes. Only the reader uses it.
type inflateState struct {
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

// beforeInflate runs before each read of a compressed connection: it
// pauses while the connection's inflation is in debt (the token bucket
// refills at MaxInflateRate).
func (c *Conn) beforeInflate() {
	inf, o := c.inf, &c.srv.cfg
	inf.refill(c.srv.clock(), o.MaxInflateRate, o.MaxInflatedSize)
	if inf.credit < 0 {
		d := time.Duration(float64(-inf.credit) / float64(o.MaxInflateRate) * 1e9)
		c.peer.Logger().LogAttrs(c.peer.Context(), slog.LevelDebug, "inflate rate exceeded, pausing reads",
			slog.Duration("pause", d), slog.Int64("rate", o.MaxInflateRate))
		c.srv.pause(c.peer.Context(), d)
		inf.refill(c.srv.clock(), o.MaxInflateRate, o.MaxInflatedSize)
	}
}

// inflater is a pooled decompressor and its input.
type inflater struct {
	r   io.ReadCloser
	src tailReader
}

var inflaters sync.Pool

// tailReader yields a compressed message and then the empty stored block
// its sender removed (RFC 7692 7.2.2).
type tailReader struct {
	p    []byte
	tail int
}

func (t *tailReader) Read(b []byte) (int, error) {
	if len(t.p) > 0 {
		n := copy(b, t.p)
		t.p = t.p[n:]
		return n, nil
	}
	if t.tail < len(deflateTail) {
		n := copy(b, deflateTail[t.tail:])
		t.tail += n
		return n, nil
	}
	return 0, io.EOF
}

// ReadByte makes tailReader an io.ByteReader, so that flate reads it
// without a bufio.Reader of its own.
func (t *tailReader) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := t.Read(b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// done reports whether the whole input was read.
func (t *tailReader) done() bool { return len(t.p) == 0 && t.tail == len(deflateTail) }

// inflate appends the inflated message p to out, at most limit bytes: past
// it the error is a 1009 closeError, and a payload that does not inflate
// is a 1007 one.
func inflate(p, out []byte, limit int64) ([]byte, error) {
	in, _ := inflaters.Get().(*inflater)
	if in == nil {
		in = &inflater{src: tailReader{p: p}}
		in.r = flate.NewReader(&in.src)
	} else {
		in.src = tailReader{p: p}
		_ = in.r.(flate.Resetter).Reset(&in.src, nil)
	}
	defer func() {
		in.src = tailReader{}
		inflaters.Put(in)
	}()
	for {
		if len(out) == cap(out) {
			out = slices.Grow(out, max(cap(out), 512))
		}
		end := min(int64(cap(out)), limit+1)
		n, err := in.r.Read(out[len(out):end])
		out = out[:len(out)+n]
		if int64(len(out)) > limit {
			return out, &closeError{closeTooBig, fmt.Sprintf("read limited at %d bytes", limit)}
		}
		switch {
		case err == nil:
		case err == io.EOF, err == io.ErrUnexpectedEOF && in.src.done():
			return out, nil
		default:
			return out, &closeError{closeInvalidPayload, "invalid compressed payload"}
		}
	}
}
