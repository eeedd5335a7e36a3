//go:build linux

package wstransport

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// pollReads: on Linux idle connections are watched by an epoll set (see
// poller) instead of a goroutine each.
const pollReads = true

// poller watches the sockets of idle connections for input with one epoll
// set, so that an idle connection holds no goroutine: when a socket
// becomes readable, a goroutine is started to read and handle what came
// (Conn.readPolled), and it ends when the input is consumed, re-arming
// the socket.
//
// Sockets are registered level-triggered and one-shot: an event disarms
// its socket until the reader re-arms it, so at most one reader runs per
// connection, and input that arrived while it read fires again at once.
//
// The epoll descriptor is itself waited on through the runtime's network
// poller (it is an os.File in non-blocking mode), so the poller goroutine
// holds no thread while it waits, and input on an idle connection costs
// one wake-up of the runtime's poller, which sees the socket (edge-
// triggered, nobody waiting) and the epoll set ready together.
type poller struct {
	f    *os.File
	rc   syscall.RawConn
	epfd int

	mu     sync.RWMutex // held shared by epoll_ctl calls and lookups
	closed bool
	// conns are the registered connections by token (an index; nil when
	// free), free the free tokens: a slice costs a pointer per connection,
	// a map several times that.
	conns []*Conn
	free  []uint32
}

// newPoller creates the epoll set.
func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &poller{f: f, rc: rc, epfd: fd}, nil
}

// run dispatches events until close. It waits in the runtime's network
// poller for the epoll set to become readable, then collects events
// without blocking until none is left.
func (p *poller) run() {
	events := make([]syscall.EpollEvent, 128)
	_ = p.rc.Read(func(fd uintptr) bool {
		for {
			n, err := syscall.EpollWait(int(fd), events, 0)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil {
				return true // the set is gone: close is under way
			}
			if n == 0 {
				return false // wait for the set to become readable again
			}
			for i := range events[:n] {
				p.ready(uint32(events[i].Fd))
			}
			// Let the readers just started run before collecting more:
			// under load the set never runs dry, and readers started
			// batch after batch would overflow the processor's run
			// queue, where some wait far longer than others.
			runtime.Gosched()
		}
	})
}

// ready starts the reader of the connection whose socket fired.
func (p *poller) ready(tok uint32) {
	var c *Conn
	p.mu.RLock()
	if int(tok) < len(p.conns) {
		c = p.conns[tok]
	}
	p.mu.RUnlock()
	if c != nil && c.rstate.CompareAndSwap(readArmed, readRunning) {
		c.srv.startReader(c, true)
	}
}

// register adds c to the set, not yet armed. It fails once the poller is
// closed.
func (p *poller) register(c *Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	// A token is reused once free. An event of the token's last
	// connection that the poller is dispatching at that moment may start
	// a reader of the new one for nothing: it waits for input, as it
	// would have at its next event.
	if n := len(p.free); n > 0 {
		c.ptok = p.free[n-1]
		p.free = p.free[:n-1]
		p.conns[c.ptok] = c
	} else {
		c.ptok = uint32(len(p.conns))
		p.conns = append(p.conns, c)
	}
	return true
}

// unregister removes c (its socket is closed, which took it out of the
// epoll set).
func (p *poller) unregister(c *Conn) {
	p.mu.Lock()
	if int(c.ptok) < len(p.conns) && p.conns[c.ptok] == c {
		p.conns[c.ptok] = nil
		p.free = append(p.free, c.ptok)
	}
	p.mu.Unlock()
}

// arm makes the poller watch c's socket for one event. It fails (false)
// when the socket is closed or the poller is: the caller goes on reading
// by itself. Called only by c's reader, while rstate is readRunning.
func (p *poller) arm(c *Conn) bool {
	nc := c.nc
	nc.fdMu.RLock()
	defer nc.fdMu.RUnlock()
	if nc.fdClosed {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return false
	}
	op := syscall.EPOLL_CTL_MOD
	if !c.inPoll {
		op = syscall.EPOLL_CTL_ADD
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(c.ptok)}
	// Armed before the call: the event may fire (and another goroutine
	// take the connection, and arm it again) before it returns.
	c.inPoll = true
	c.rstate.Store(readArmed)
	if err := epollCtl(p.epfd, op, nc.fd, &ev); err != nil {
		// Not armed after all; take the connection back unless the socket
		// was closed meanwhile and its closer took it.
		if c.rstate.CompareAndSwap(readArmed, readRunning) {
			c.inPoll = op == syscall.EPOLL_CTL_MOD
			return false
		}
		return true
	}
	return true
}

// close stops run and releases the epoll set. Connections still
// registered are read by goroutines of their own from now on: the armed
// ones get a reader at once, the others at their next arm.
func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	armed := make([]*Conn, 0, len(p.conns))
	for _, c := range p.conns {
		if c != nil {
			armed = append(armed, c)
		}
	}
	p.mu.Unlock()
	_ = p.f.Close()
	for _, c := range armed {
		if c.rstate.CompareAndSwap(readArmed, readRunning) {
			c.srv.startReader(c, true)
		}
	}
}

// epollCtl is epoll_ctl(2) as a raw system call: it does not block, and
// telling the scheduler costs more than the call (see sock.beginNoBlock).
func epollCtl(epfd, op, fd int, ev *syscall.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
