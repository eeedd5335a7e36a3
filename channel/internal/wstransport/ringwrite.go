package wstransport

import (
	"net"
	"syscall"

	"github.com/pyre-go/pyre/internal/uring"
)

// ringWriter is a write-pool worker's io_uring: it sends the queued frames
// of up to writePoolTake connections with one system call, where the
// plain path makes one write(2) per connection (Conn.flush). In a virtual
// machine a system call is dear, and a broadcast to thousands of
// connections is thousands of writes: measured on loopback, a 128-byte
// send cost 7.5 µs of the core through write(2) and 5.2 µs in batches of
// 32 (internal/uring's benchmarks).
//
// Each send is the same non-blocking write as Conn.flush's, with the same
// locks: wmu tried (a control frame being written sends the batch to a
// goroutine instead), fdMu held shared until the send has completed, so
// the descriptor cannot be closed and reused under it. What a socket does
// not take goes to a goroutine of the connection's own, as in flush. The
// ring and the buffers belong to one worker at a time; every send has
// completed when flush returns.
type ringWriter struct {
	ring  *uring.Ring
	arena []byte     // the batches of more than one frame, gathered
	slots []ringSlot // the connections of the current flush
}

// ringSlot is one connection's part of a flush.
type ringSlot struct {
	c          *Conn
	batch      []outMsg
	n          int    // bytes of the batch (the queue's accounting)
	b          []byte // what is sent: the frame itself, or a range of arena
	start, end int    // b's range in arena; start -1 when b is the frame
}

// flush writes the queues of the connections in entries (and clears
// entries). It returns false when the ring failed: the connections whose
// sends were not reported were closed, and the ring must be closed and not
// used again (its sends may still be in the kernel's hands).
func (w *ringWriter) flush(entries []readyConn) bool {
	w.arena = w.arena[:0]
	w.slots = w.slots[:0]
	for i := range entries {
		c, gen := entries[i].c, entries[i].gen
		entries[i] = readyConn{}
		batch, n, ok := c.takeBatch(gen)
		if !ok {
			continue
		}
		s := ringSlot{c: c, batch: batch, n: n, start: -1}
		if len(batch) == 1 {
			s.b = batch[0].b
		} else {
			s.start = len(w.arena)
			for j := range batch {
				w.arena = append(w.arena, batch[j].b...)
			}
			s.end = len(w.arena)
		}
		w.slots = append(w.slots, s)
	}
	sent := 0
	for i := range w.slots {
		s := &w.slots[i]
		if s.start >= 0 {
			s.b = w.arena[s.start:s.end] // the arena has stopped growing
		}
		locked, err := s.c.nc.beginNoBlock()
		switch {
		case !locked:
			// A control frame holds the socket (and may wait on it): the
			// batch goes out after it, on a goroutine, as in flush.
			rest := append([]byte(nil), s.b...)
			clear(s.batch)
			s.c.handOff(s.batch, s.n, rest, false)
			s.done()
		case err != nil:
			clear(s.batch)
			s.c.flushed(s.batch, s.n, err)
			s.done()
		default:
			w.ring.Send(s.c.nc.fd, s.b, uint64(i))
			sent++
		}
	}
	if sent > 0 {
		if err := w.ring.Submit(w.completed); err != nil {
			for i := range w.slots {
				if s := &w.slots[i]; s.c != nil {
					// Its send may yet happen: the connection cannot be
					// written in order any more.
					s.c.nc.endNoBlock(true)
					clear(s.batch)
					s.c.flushed(s.batch, s.n, err)
					s.done()
				}
			}
			w.arena = nil // the kernel may still read it
			return false
		}
	}
	if cap(w.arena) > 256<<10 {
		w.arena = nil // one huge batch does not pin memory
	}
	clear(w.slots)
	return true
}

// completed takes the result of the send of slot tag: all of it sent (the
// connection goes on as after flush), part or none of it (a goroutine
// writes the rest, wmu still held), or an error.
func (w *ringWriter) completed(tag uint64, res int32) {
	s := &w.slots[tag]
	c := s.c
	// The batch's frames are not needed any more (b holds what is sent);
	// its slice goes back to the queue (release), so it is cleared first.
	clear(s.batch)
	switch {
	case int(res) == len(s.b):
		c.nc.endNoBlock(true)
		c.flushed(s.batch, s.n, nil)
	case res >= 0 || res == -int32(syscall.EAGAIN):
		c.nc.endNoBlock(false)
		rest := append([]byte(nil), s.b[max(res, 0):]...)
		c.handOff(s.batch, s.n, rest, true)
	default:
		c.nc.endNoBlock(true)
		var err error = syscall.Errno(-res)
		if res == -int32(syscall.EBADF) {
			err = net.ErrClosed
		}
		c.flushed(s.batch, s.n, err)
	}
	s.done()
}

// done drops the slot's references once its connection has moved on. The
// batch itself is cleared before it is handed on (release may give its
// slice to the next queue at once).
func (s *ringSlot) done() { *s = ringSlot{} }
