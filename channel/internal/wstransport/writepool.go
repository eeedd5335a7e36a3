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
// A connection with frames to write is put on a ready list once (its
// transport's writing flag); a worker takes it, writes everything queued
// with one non-blocking socket write, and puts it back at the end of the
// list if more frames arrived meanwhile. Frames that arrive while a
// connection waits its turn join its next write, so a busy server makes
// fewer writes per delivery. A socket that cannot take a whole write (its
// peer reads slowly) leaves the pool: a goroutine of the connection's own
// writes the rest, blocking, and hands the connection back (see
// Conn.flush). No worker ever waits on a socket.
//
// Write delay. A connection may wait on the list before it is written, so
// that more frames share its write: Config.WriteDelay fixes that wait;
// otherwise it adapts to the pool's load (Config.MaxWriteDelay, see
// adaptDelay): zero while the workers are idle half the time or more,
// growing to MaxWriteDelay as they approach being busy all the time, and
// only as far as frames actually share writes (a fan-out whose every
// connection gets one frame per burst gains nothing from waiting). On
// loopback and in virtual machines a socket write costs several times the
// rest of a delivery, so under a heavy fan-out each frame saved is CPU
// returned to the server, and the slack it leaves keeps the latency tail
// short. The list is in arrival order, so no due connection waits behind
// one that is not. A connection with a reply queued (Conn.Queue's urgent)
// is never delayed: it goes on a second list that workers serve first,
// and an entry it left on the delayed list is skipped (entries carry the
// connection's scheduling generation).
//
// Workers exist only while a list is not empty: the first connection put
// on empty lists starts one, and up to GOMAXPROCS run when the list is
// long. Each is owned by the Config.Group.
//
// On Linux a worker sends the connections it takes (up to writePoolTake)
// with one io_uring system call instead of one write(2) each (see
// ringWriter), unless Config.NoRing is set or the kernel refuses io_uring;
// the sends are the same non-blocking writes, so everything above holds
// for both.
type writePool struct {
	wg *sync.WaitGroup

	fixed    time.Duration // Config.WriteDelay: the delay, when positive
	maxDelay time.Duration // Config.MaxWriteDelay: the adaptive delay's bound (0: off)
	// now is the pool's clock (monotonic nanoseconds; tests replace it)
	// and procs the workers' share of the process (GOMAXPROCS).
	now   func() int64
	procs int
	delay atomic.Int64 // the current delay, nanoseconds

	mu      sync.Mutex
	ready   []readyConn // the delayed list, in arrival order
	head    int         // ready[head:] waits
	urgent  []readyConn // connections with a reply queued: written first, never delayed
	running int
	// wake is signalled when a connection goes on the urgent list, so a
	// worker waiting for the delayed list's head to be due writes it now.
	wake chan struct{}

	// The load the adaptive delay follows: the time workers spent writing
	// since winStart, and the server's frame and write counters
	// (Stats.FramesWritten, Stats.Writes) then.
	winStart         int64
	busy             int64
	frames, writes   *atomic.Uint64
	frames0, writes0 uint64
	// framesEW and writesEW are the frames and writes of recent windows,
	// each window weighing delayMergeDecay of the one after it: how much
	// frames share writes is judged over about eight windows, so that one
	// window that happened to merge little does not swing the delay.
	framesEW, writesEW float64
	// delayTotal is the delay integrated over time: nanoseconds of delay
	// per second, summed (Stats.WriteDelayTotal).
	delayTotal atomic.Int64

	// Rings of idle workers (at most GOMAXPROCS are ever made), and
	// whether rings are off: by Config.NoRing, because the kernel refused
	// one, or because the pool was closed (a worker then closes its ring).
	rings   []*ringWriter
	ringOff bool
	// ringBatches counts the batches sent through a ring (for tests).
	ringBatches atomic.Uint64
}

// readyConn is an entry of a ready list: a connection, its scheduling
// generation (an entry whose connection was scheduled again since is
// stale) and when it got there (pool clock; only kept while there is a
// delay).
type readyConn struct {
	c   *Conn
	gen uint32
	at  int64
}

// writePoolTake is how many connections a worker takes from the list at
// once: few enough to keep the order fair, enough to make the lock cheap.
const writePoolTake = 32

// writePoolSpread is the backlog per running worker above which another
// worker starts (up to GOMAXPROCS).
const writePoolSpread = 256

// The adaptive delay's law (adaptDelay): the pool's load is measured over
// windows of at least delayWindow; at a load (the share of the window the
// workers spent writing) of delayLoadLow or less the target delay is zero,
// at 1 it is MaxWriteDelay, linear in between. That target is scaled by
// how much frames share writes: by the merged share of recent windows
// (frames that went out in another frame's write, (frames-writes)/frames,
// over about eight windows, see framesEW) over delayMergeFull, at most 1.
// A burst that gives each connection one frame loads the pool without any
// frame to merge, and waiting would only add latency: there the target is
// zero. Each window moves the delay half way
// to the target, so a steady load settles where the delay and the load it
// leaves agree instead of swinging between the two ends; a delay below
// delayMin is zero.
const (
	delayWindow     = 50 * time.Millisecond
	delayLoadLow    = 0.5
	delayMergeFull  = 0.25
	delayMergeDecay = 7.0 / 8
	delayMin        = time.Millisecond
)

// monoEpoch anchors the pool's default clock.
var monoEpoch = time.Now()

// monoNow is the pool's default clock: monotonic nanoseconds (one clock
// read, where time.Now makes two).
func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// init sets the pool up from cfg; frames and writes are the server's
// counters of frames written and of the writes that carried them.
func (p *writePool) init(cfg *Config, frames, writes *atomic.Uint64) {
	p.frames, p.writes = frames, writes
	p.wg = cfg.Group
	p.fixed = cfg.WriteDelay
	p.maxDelay = max(cfg.MaxWriteDelay, 0)
	p.ringOff = cfg.NoRing
	p.now = monoNow
	p.procs = runtime.GOMAXPROCS(0)
	p.wake = make(chan struct{}, 1)
	if p.fixed > 0 {
		p.delay.Store(int64(p.fixed))
	}
}

// currentDelay returns how long a connection waits on the delayed list.
func (p *writePool) currentDelay() time.Duration { return time.Duration(p.delay.Load()) }

// adaptDelay is the adaptive delay's law: the next delay, given the
// current one, the workers' busy time over the elapsed time of a window
// (with procs workers at most) and the share of the window's frames that
// were merged into another frame's write.
func adaptDelay(cur, busy, elapsed time.Duration, procs int, merged float64, maxDelay time.Duration) time.Duration {
	if maxDelay <= 0 || elapsed <= 0 {
		return 0
	}
	load := float64(busy) / (float64(elapsed) * float64(max(procs, 1)))
	target := time.Duration(0)
	if load > delayLoadLow && merged > 0 {
		f := min((load-delayLoadLow)/(1-delayLoadLow), 1) * min(merged/delayMergeFull, 1)
		target = time.Duration(float64(maxDelay) * f)
	}
	next := (cur + target) / 2
	if elapsed >= 4*delayWindow {
		next = target // a long idle spell: the past is forgotten
	}
	if next < delayMin {
		return 0 // too short to merge anything; it would only split the workers' batches
	}
	return next
}

// account adds a worker's writing time and, once a window has passed,
// adds the window's delay to delayTotal and moves the adaptive delay.
// Called with mu held.
func (p *writePool) account(now, busy int64) {
	if p.fixed <= 0 && p.maxDelay == 0 {
		return // no delay at all
	}
	p.busy += busy
	if p.winStart == 0 {
		p.startWindow(now)
		return
	}
	elapsed := now - p.winStart
	if elapsed < int64(delayWindow) {
		return
	}
	// A window as long as four or more was mostly idle: it adds nothing
	// to the total, and the merges before it are forgotten.
	idle := elapsed >= int64(4*delayWindow)
	if cur := p.delay.Load(); cur > 0 && !idle {
		p.delayTotal.Add(int64(float64(cur) * float64(elapsed) / float64(time.Second)))
	}
	if p.fixed <= 0 {
		merged := p.mergedShare(idle)
		d := adaptDelay(p.currentDelay(), time.Duration(p.busy), time.Duration(elapsed), p.procs, merged, p.maxDelay)
		p.delay.Store(int64(d))
	}
	p.startWindow(now)
}

// mergedShare adds the ending window's frames and writes to the recent
// windows' (after an idle window, they replace them) and returns the share
// of those frames that went out in another frame's write. Called with mu
// held.
func (p *writePool) mergedShare(idle bool) float64 {
	frames := float64(p.frames.Load() - p.frames0)
	// A write is counted just before its frames: a write read here
	// without its frames must not make the share negative.
	writes := min(float64(p.writes.Load()-p.writes0), frames)
	if idle {
		p.framesEW, p.writesEW = frames, writes
	} else {
		p.framesEW = p.framesEW*delayMergeDecay + frames
		p.writesEW = p.writesEW*delayMergeDecay + writes
	}
	if p.framesEW == 0 {
		return 0
	}
	return (p.framesEW - p.writesEW) / p.framesEW
}

// startWindow starts the load's next window at now. Called with mu held.
func (p *writePool) startWindow(now int64) {
	p.winStart, p.busy = now, 0
	p.frames0, p.writes0 = p.frames.Load(), p.writes.Load()
}

// schedule puts c on the urgent list or the delayed one, as generation
// gen of its scheduling. The caller holds c.mu (or has just set c's
// generation under it).
func (p *writePool) schedule(c *Conn, gen uint32, urgent bool) {
	var at int64
	if !urgent && p.delay.Load() > 0 {
		at = p.now()
	}
	p.mu.Lock()
	if urgent {
		p.urgent = append(p.urgent, readyConn{c, gen, 0})
	} else {
		p.ready = append(p.ready, readyConn{c, gen, at})
	}
	start := p.running == 0 ||
		(len(p.ready)-p.head > writePoolSpread*p.running && p.running < p.procs)
	if start {
		p.running++
	}
	p.mu.Unlock()
	if start {
		p.wg.Add(1)
		go p.work()
		return
	}
	if urgent {
		select {
		case p.wake <- struct{}{}: // a worker may be waiting for a delayed entry
		default:
		}
	}
}

// take moves up to len(batch) entries into batch: urgent ones first, then
// the delayed list's entries that are due. It returns how many, or 0 and
// how long until the list's head is due (0: both lists are empty). Called
// with mu held.
func (p *writePool) take(batch []readyConn, now int64) (n int, wait time.Duration) {
	if len(p.urgent) > 0 {
		n = copy(batch, p.urgent)
		m := copy(p.urgent, p.urgent[n:])
		clear(p.urgent[m:])
		p.urgent = p.urgent[:m]
		return n, 0
	}
	// Stale entries at the head (their connection went on the urgent list
	// since) are dropped, so that none keeps a worker waiting.
	for p.head < len(p.ready) && p.ready[p.head].gen != p.ready[p.head].c.gen.Load() {
		p.ready[p.head] = readyConn{}
		p.head++
	}
	waiting := p.ready[p.head:]
	n = min(len(waiting), len(batch))
	if d := p.currentDelay(); d > 0 {
		// In arrival order: the due entries are a prefix. Entries due
		// within an eighth of the delay join them, so that a worker
		// takes full batches rather than waking for each entry.
		due, until := 0, now+int64(d/8)
		for due < n && waiting[due].at+int64(d) <= until {
			due++
		}
		if due == 0 && n > 0 {
			return 0, time.Duration(waiting[0].at + int64(d) - now)
		}
		n = due
	}
	copy(batch, waiting[:n])
	clear(waiting[:n])
	p.head += n
	if p.head == len(p.ready) {
		p.ready, p.head = p.ready[:0], 0
	} else if p.head >= 4096 && p.head*2 >= len(p.ready) {
		m := copy(p.ready, p.ready[p.head:])
		clear(p.ready[m:])
		p.ready, p.head = p.ready[:m], 0
	}
	return n, 0
}

// work flushes ready connections until both lists are empty.
func (p *writePool) work() {
	defer p.wg.Done()
	var batch [writePoolTake]readyConn
	buf := make([]byte, 0, 16<<10) // gathers a connection's frames
	rw := p.takeRing()
	defer func() { p.putRing(rw) }()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var busy int64
	for {
		now := p.now()
		p.mu.Lock()
		p.account(now, busy)
		busy = 0
		n, wait := p.take(batch[:], now)
		if n == 0 && wait == 0 {
			p.running--
			p.ready, p.head = p.ready[:0], 0
			if cap(p.ready) > 64<<10 {
				p.ready = nil // a burst's list is not kept
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if n == 0 {
			// The head of the delayed list is not due: wait for it, or
			// for an urgent connection.
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-p.wake:
				timer.Stop()
			}
			continue
		}
		if rw != nil && n > 1 { // one connection: one system call either way
			p.ringBatches.Add(1)
			if !rw.flush(batch[:n]) {
				rw.ring.Close() // failed: its sends are cancelled, its buffers dropped
				rw = nil
				p.mu.Lock()
				p.ringOff = true // the kernel refused once: write(2) from now on
				p.mu.Unlock()
			}
		} else {
			if cap(buf) > 256<<10 {
				buf = make([]byte, 0, 16<<10) // one huge batch does not pin memory
			}
			for i := range batch[:n] {
				batch[i].c.flush(batch[i].gen, &buf)
				batch[i] = readyConn{}
			}
		}
		busy = p.now() - now
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
