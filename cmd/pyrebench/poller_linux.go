package main

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"
	"unsafe"

	"github.com/pyre-go/pyre/internal/uring"
)

// poller owns an epoll set and the connections registered in it.
type poller struct {
	w    *worker
	epfd int
	oob  [64]byte // control messages of recvStamped

	// ring, unless nil (workerConfig.NoRing, or the kernel refused it),
	// reads the connections of one epoll_wait with one io_uring call
	// instead of one read(2) each (readBatch); slots hold each read's
	// connection and, for receive stamps, its message header.
	ring  *uring.Ring
	slots []ringRead
}

// ringRead is one connection's read in a poller's batch.
type ringRead struct {
	c   *wconn
	msg syscall.Msghdr
	iov syscall.Iovec
	oob [64]byte
}

// pollEvents is how many events one epoll_wait returns at most, and the
// size of a poller's read batch.
const pollEvents = 256

// startPollers starts n pollers (owned by w.pollWG).
func (w *worker) startPollers(n int) error {
	for range n {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		p := &poller{w: w, epfd: fd}
		if !w.cfg.NoRing {
			if r, err := uring.New(pollEvents); err == nil {
				p.ring = r
				p.slots = make([]ringRead, pollEvents)
			}
		}
		w.pollers = append(w.pollers, p)
		w.pollWG.Add(1)
		go p.run()
	}
	return nil
}

// handOver moves a joined connection from its goroutine to a poller. The
// socket is duplicated and the net.Conn closed, which takes it out of Go's
// own netpoller (otherwise every arrival would wake both), so from here on
// the poller reads the raw descriptor and writes go through fdConn.
func (w *worker) handOver(c *wconn) error {
	tc, ok := c.nc.(*net.TCPConn)
	if !ok {
		return errors.New("not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(f uintptr) { fd, derr = syscall.Dup(int(f)) }); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	syscall.CloseOnExec(fd)
	if w.cfg.Arrival {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
			_ = syscall.Close(fd)
			return err
		}
	}
	pending := c.ws.TakeOver(fdConn(fd))
	_ = c.nc.Close()
	c.fd = fd
	c.rbuf = make([]byte, max(w.cfg.ReadBuf, len(pending)))
	c.rlen = copy(c.rbuf, pending)
	if c.rlen > 0 {
		if err := w.consume(c); err != nil {
			w.connEnded(c, err)
			_ = c.ws.Close()
			return nil
		}
	}
	p := w.pollers[c.id%len(w.pollers)]
	// Publish the fields above to the poller (and shutdown); from here on
	// they are the poller's.
	c.polled.Store(true)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.id)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.connEnded(c, err)
		_ = c.ws.Close()
	}
	return nil
}

// fdConn writes to and closes a raw non-blocking socket descriptor. The
// client's writes are small (heartbeats, echoes, pongs) and the server
// reads them, so a full send buffer is waited out briefly, boundedly.
type fdConn int

func (f fdConn) Write(p []byte) (int, error) {
	n := 0
	for waits := 0; n < len(p); {
		m, err := syscall.Write(int(f), p[n:])
		if m > 0 {
			n += m
			continue
		}
		switch {
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.EAGAIN) && waits < 5000:
			waits++
			time.Sleep(time.Millisecond)
		case err == nil:
			return n, io.ErrShortWrite
		default:
			return n, err
		}
	}
	return n, nil
}

func (f fdConn) Close() error { return syscall.Close(int(f)) }

func (p *poller) run() {
	defer p.w.pollWG.Done()
	defer syscall.Close(p.epfd)
	defer func() {
		if p.ring != nil {
			p.ring.Close()
		}
	}()
	events := make([]syscall.EpollEvent, pollEvents)
	for {
		select {
		case <-p.w.quit:
			return
		default:
		}
		// Poll without blocking first, as a raw system call: while events
		// keep coming this never enters the scheduler's blocking-syscall
		// path (which hands the processor to another thread), so the
		// client's cost per delivery stays low under load.
		n, err := epollPoll(p.epfd, events)
		if err == nil && n == 0 {
			if p.w.cfg.Poll > 0 {
				// Never block in epoll_wait: a sender then never has to
				// wake this thread, and the next poll collects what
				// arrived meanwhile.
				time.Sleep(p.w.cfg.Poll)
				continue
			}
			n, err = syscall.EpollWait(p.epfd, events, 100)
		}
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			p.w.noteErr(p.w.drops, "epoll", err)
			return
		}
		if p.ring != nil {
			if err := p.readBatch(events[:n]); err != nil {
				p.w.noteErr(p.w.drops, "io_uring", err)
				return
			}
			continue
		}
		for i := range n {
			if c := p.polled(&events[i]); c != nil {
				p.readable(c)
			}
		}
	}
}

// polled returns the connection of an epoll event, or nil when it is not
// (or no longer) read by this poller.
func (p *poller) polled(ev *syscall.EpollEvent) *wconn {
	id := int(ev.Fd)
	if id < 0 || id >= len(p.w.conns) {
		return nil
	}
	c := p.w.conns[id]
	if !c.polled.Load() || c.done.Load() {
		return nil
	}
	return c
}

func (p *poller) readable(c *wconn) {
	var n int
	var err error
	if p.w.cfg.Arrival {
		n, c.arrival, err = recvStamped(c.fd, c.rbuf[c.rlen:], &p.oob)
	} else {
		n, err = rawRead(c.fd, c.rbuf[c.rlen:])
	}
	p.took(c, n, err)
}

// took handles a read of c: n > 0 bytes (consumed), 0 (the end of the
// stream) or an error (EAGAIN, EINTR: nothing to read now).
func (p *poller) took(c *wconn, n int, err error) {
	switch {
	case n > 0:
		c.rlen += n
		err := p.w.consume(c)
		c.arrival = 0
		if err != nil {
			p.end(c, err)
		}
	case n == 0:
		p.end(c, io.EOF)
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
	default:
		p.end(c, err)
	}
}

// readBatch reads every connection of events with one io_uring call: the
// same non-blocking reads as readable's, one system call for all (a read
// costs the client's core about a third less; see internal/uring). An
// error is the ring's own, not a connection's: the poller must stop.
func (p *poller) readBatch(events []syscall.EpollEvent) error {
	k := 0
	for i := range events {
		c := p.polled(&events[i])
		if c == nil {
			continue
		}
		buf := c.rbuf[c.rlen:]
		if len(buf) == 0 {
			p.readable(c) // ends it, as a plain read would
			continue
		}
		s := &p.slots[k]
		s.c = c
		if p.w.cfg.Arrival {
			s.iov = syscall.Iovec{Base: &buf[0]}
			s.iov.SetLen(len(buf))
			s.msg = syscall.Msghdr{Iov: &s.iov, Iovlen: 1, Control: &s.oob[0]}
			s.msg.SetControllen(len(s.oob))
			p.ring.RecvMsg(c.fd, &s.msg, uint64(k))
		} else {
			p.ring.Recv(c.fd, buf, uint64(k))
		}
		k++
	}
	if k == 0 {
		return nil
	}
	return p.ring.Submit(p.readDone)
}

// readDone takes one read of readBatch, as readable takes a read(2).
func (p *poller) readDone(tag uint64, res int32) {
	s := &p.slots[tag]
	c := s.c
	s.c = nil
	n, err := int(res), error(nil)
	if res < 0 {
		n, err = -1, syscall.Errno(-res)
	}
	if n > 0 && p.w.cfg.Arrival {
		c.arrival = parseStamp(s.oob[:s.msg.Controllen])
	}
	p.took(c, n, err)
}

func (p *poller) end(c *wconn, err error) {
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	p.w.connEnded(c, err)
	_ = c.ws.Close()
}

// rawRead is read(2) without the scheduler hand-off of syscall.Read: the
// descriptor is non-blocking, so the call never blocks.
// epollPoll is epoll_wait with a zero timeout, made as a raw system call
// (it cannot block).
func epollPoll(epfd int, events []syscall.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, syscall.ENOBUFS
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// recvStamped is rawRead with the kernel's receive stamp (SO_TIMESTAMPNS,
// CLOCK_REALTIME unix nanos) of the last segment read; stamp is 0 when the
// kernel sent none.
func recvStamped(fd int, p []byte, oob *[64]byte) (n int, stamp int64, err error) {
	if len(p) == 0 {
		return 0, 0, syscall.ENOBUFS
	}
	iov := syscall.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	msg := syscall.Msghdr{Iov: &iov, Iovlen: 1, Control: &oob[0]}
	msg.SetControllen(len(oob))
	r, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), 0)
	if e != 0 {
		return -1, 0, e
	}
	return int(r), parseStamp(oob[:msg.Controllen]), nil
}

// parseStamp finds an SCM_TIMESTAMPNS control message in b without
// allocating.
func parseStamp(b []byte) int64 {
	for len(b) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < syscall.SizeofCmsghdr || l > len(b) {
			return 0
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && l >= syscall.SizeofCmsghdr+16 {
			ts := (*syscall.Timespec)(unsafe.Pointer(&b[syscall.SizeofCmsghdr]))
			return ts.Nano()
		}
		adv := (l + 7) &^ 7
		if adv > len(b) {
			return 0
		}
		b = b[adv:]
	}
	return 0
}
