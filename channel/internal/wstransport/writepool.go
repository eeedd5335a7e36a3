package wstransport

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pyre-go/pyre/internal/uring"
)

// writePool writes the queued frames of WebSocket connections on a few
// shared goroutines instead of a goroutine per connection.
//
// A connection with frames to write is put on the ready list once (its
// transport's writing flag); a worker takes it, writes everything queued
// with one non-blocking socket write, and puts it back at the end of the
// list if more frames arrived meanwhile. Frames that arrive while a
// connection waits its turn join its next write, so a busy server makes
// fewer writes per delivery. A socket that cannot take a whole write (its
// peer reads slowly) leaves the pool: a goroutine of the connection's own
// writes the rest, blocking, and hands the connection back (see
// Conn.flush). No worker ever waits on a socket. With
// Config.WriteDelay a worker waits until the connection at the head of
// the list has been there that long; the list is in arrival order, so no
// due connection waits behind one that is not.
//
// Workers exist only while the list is not empty: the first connection put
// on an empty list starts one, and up to GOMAXPROCS run when the list is
// long. Each is owned by the Config.Group.
//
// On Linux a worker sends the connections it takes (up to writePoolTake)
// with one io_uring system call instead of one write(2) each (see
// ringWriter), unless Config.NoRing is set or the kernel refuses io_uring;
// the sends are the same non-blocking writes, so everything above holds
// for both.
type writePool struct {
	wg *sync.WaitGroup

	delay time.Duration // Config.WriteDelay

	mu      sync.Mutex
	ready   []readyConn
	head    int // ready[head:] waits
	running int

	// Rings of idle workers (at most GOMAXPROCS are ever made), and
	// whether rings are off: by Config.NoRing, because the kernel refused
	// one, or because the pool was closed (a worker then closes its ring).
	rings   []*ringWriter
	ringOff bool
	// ringBatches counts the batches sent through a ring (for tests).
	ringBatches atomic.Uint64
}

// readyConn is an entry of the ready list: a connection and when it got
// there (unix nanos; only kept with a write delay).
type readyConn struct {
	c  *Conn
	at int64
}

// writePoolTake is how many connections a worker takes from the list at
// once: few enough to keep the order fair, enough to make the lock cheap.
const writePoolTake = 32

// writePoolSpread is the backlog per running worker above which another
// worker starts (up to GOMAXPROCS).
const writePoolSpread = 256

// schedule puts t on the ready list. t must not be on it already.
func (p *writePool) schedule(c *Conn) {
	var at int64
	if p.delay > 0 {
		at = time.Now().UnixNano()
	}
	p.mu.Lock()
	p.ready = append(p.ready, readyConn{c, at})
	start := p.running == 0 ||
		(len(p.ready)-p.head > writePoolSpread*p.running && p.running < runtime.GOMAXPROCS(0))
	if start {
		p.running++
	}
	p.mu.Unlock()
	if start {
		p.wg.Add(1)
		go p.work()
	}
}

// work flushes ready connections until the list is empty.
func (p *writePool) work() {
	defer p.wg.Done()
	var batch [writePoolTake]readyConn
	buf := make([]byte, 0, 16<<10) // gathers a connection's frames
	var rw *ringWriter
	if p.delay == 0 {
		rw = p.takeRing()
	}
	defer func() { p.putRing(rw) }()
	for {
		p.mu.Lock()
		n := copy(batch[:], p.ready[p.head:])
		if n == 0 {
			p.running--
			p.ready, p.head = p.ready[:0], 0
			if cap(p.ready) > 64<<10 {
				p.ready = nil // a burst's list is not kept
			}
			p.mu.Unlock()
			return
		}
		clear(p.ready[p.head : p.head+n])
		p.head += n
		if p.head == len(p.ready) {
			p.ready, p.head = p.ready[:0], 0
		} else if p.head >= 4096 && p.head*2 >= len(p.ready) {
			m := copy(p.ready, p.ready[p.head:])
			clear(p.ready[m:])
			p.ready, p.head = p.ready[:m], 0
		}
		p.mu.Unlock()
		if rw != nil && n > 1 { // one connection: one system call either way
			p.ringBatches.Add(1)
			if !rw.flush(batch[:n]) {
				rw.ring.Close() // failed: its sends are cancelled, its buffers dropped
				rw = nil
				p.mu.Lock()
				p.ringOff = true // the kernel refused once: write(2) from now on
				p.mu.Unlock()
			}
			continue
		}
		if cap(buf) > 256<<10 {
			buf = make([]byte, 0, 16<<10) // one huge batch does not pin memory
		}
		for i := range batch[:n] {
			if p.delay > 0 {
				// The list is in arrival order: waiting for this entry's
				// time never holds back one that is due.
				if wait := time.Duration(batch[i].at + int64(p.delay) - time.Now().UnixNano()); wait > 0 {
					time.Sleep(wait)
				}
			}
			batch[i].c.flush(&buf)
			batch[i] = readyConn{}
		}
	}
}

// takeRing returns an idle worker's ring, or a new one; nil when rings are
// off (then the worker writes each connection with write(2)).
func (p *writePool) takeRing() *ringWriter {
	p.mu.Lock()
	if p.ringOff {
		p.mu.Unlock()
		return nil
	}
	if n := len(p.rings); n > 0 {
		rw := p.rings[n-1]
		p.rings[n-1] = nil
		p.rings = p.rings[:n-1]
		p.mu.Unlock()
		return rw
	}
	p.mu.Unlock()
	r, err := uring.New(writePoolTake)
	if err != nil {
		p.mu.Lock()
		p.ringOff = true // not on this system: do not ask again
		p.mu.Unlock()
		return nil
	}
	return &ringWriter{ring: r}
}

// putRing keeps an exiting worker's ring for the next worker, or closes it
// when the pool is closed.
func (p *writePool) putRing(rw *ringWriter) {
	if rw == nil {
		return
	}
	p.mu.Lock()
	if !p.ringOff {
		p.rings = append(p.rings, rw)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	rw.ring.Close()
}

// close turns rings off and closes the idle ones; a worker still running
// closes its own when it exits.
func (p *writePool) close() {
	p.mu.Lock()
	p.ringOff = true
	rings := p.rings
	p.rings = nil
	p.mu.Unlock()
	for _, rw := range rings {
		rw.ring.Close()
	}
}
