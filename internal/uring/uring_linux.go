//go:build linux

package uring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Linux system call numbers (the same on every architecture since 5.1).
const (
	sysSetup = 425
	sysEnter = 426
)

// ABI constants from linux/io_uring.h.
const (
	opRecvmsg = 10 // IORING_OP_RECVMSG
	opSend    = 26 // IORING_OP_SEND
	opRecv    = 27 // IORING_OP_RECV

	setupSubmitAll   = 1 << 7 // IORING_SETUP_SUBMIT_ALL: a bad entry does not stop the rest
	setupCoopTaskrun = 1 << 8 // IORING_SETUP_COOP_TASKRUN: no interrupt to run completion work

	featSingleMmap   = 1 << 0 // IORING_FEAT_SINGLE_MMAP
	featNoDrop       = 1 << 1 // IORING_FEAT_NODROP
	featSubmitStable = 1 << 2 // IORING_FEAT_SUBMIT_STABLE

	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS

	offSQRing = 0
	offSQEs   = 0x10000000

	sqeSize = 64
	cqeSize = 16
)

// params is struct io_uring_params.
type params struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32
	features     uint32
	wqFD         uint32
	resv         [3]uint32
	sqOff        sqOffsets
	cqOff        cqOffsets
}

type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// sqe is struct io_uring_sqe (64 bytes), as a send uses it.
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	msgFlags    uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFDIn  int32
	addr3       uint64
	pad         uint64
}

// cqe is struct io_uring_cqe.
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// Ring is one io_uring instance used for batches of socket sends. It is not
// safe for concurrent use: one goroutine owns it at a time.
type Ring struct {
	fd      int
	ringMem []byte
	sqeMem  []byte

	sqHead, sqTail *uint32
	sqMask         uint32
	sqEntries      uint32
	sqes           []sqe

	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []cqe

	pending uint32 // entries written since the last Submit
}

// New sets up a ring with room for entries sends per batch (a power of
// two, at most 4096). It fails where io_uring is missing or forbidden
// (kernels before 5.6, seccomp profiles that block it,
// kernel.io_uring_disabled): callers keep their plain write path then.
func New(entries uint32) (*Ring, error) {
	if entries == 0 || entries > 4096 || entries&(entries-1) != 0 {
		return nil, fmt.Errorf("uring: entries %d is not a power of two in 1..4096", entries)
	}
	var p params
	p.flags = setupSubmitAll | setupCoopTaskrun
	fd, _, e := syscall.Syscall(sysSetup, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e == syscall.EINVAL {
		// Kernels before 5.18/5.19 reject the newer flags.
		p = params{}
		fd, _, e = syscall.Syscall(sysSetup, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	}
	if e != 0 {
		return nil, fmt.Errorf("uring: io_uring_setup: %w", e)
	}
	r := &Ring{fd: int(fd)}
	if p.features&featSingleMmap == 0 || p.features&featNoDrop == 0 || p.features&featSubmitStable == 0 {
		r.Close()
		return nil, errors.New("uring: kernel lacks IORING_FEAT_SINGLE_MMAP, NODROP or SUBMIT_STABLE (needs 5.5+)")
	}
	ringSize := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*cqeSize)
	mem, err := syscall.Mmap(r.fd, offSQRing, int(ringSize),
		syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("uring: mmap rings: %w", err)
	}
	r.ringMem = mem
	sqeMem, err := syscall.Mmap(r.fd, offSQEs, int(p.sqEntries*sqeSize),
		syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("uring: mmap entries: %w", err)
	}
	r.sqeMem = sqeMem
	base := unsafe.Pointer(unsafe.SliceData(mem))
	u32 := func(off uint32) *uint32 { return (*uint32)(unsafe.Add(base, off)) }
	r.sqHead, r.sqTail = u32(p.sqOff.head), u32(p.sqOff.tail)
	r.sqMask, r.sqEntries = *u32(p.sqOff.ringMask), *u32(p.sqOff.ringEntries)
	r.cqHead, r.cqTail = u32(p.cqOff.head), u32(p.cqOff.tail)
	r.cqMask = *u32(p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(base, p.cqOff.cqes)), *u32(p.cqOff.ringEntries))
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(unsafe.SliceData(sqeMem))), r.sqEntries)
	// The submission array maps ring slots to entries; slot i always
	// holds entry i.
	array := unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), r.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	return r, nil
}

// Send queues a non-blocking send of b on the socket fd, tagged tag; it
// returns false when the batch is full. b must stay untouched until Submit
// has returned its completion.
func (r *Ring) Send(fd int, b []byte, tag uint64) bool {
	return r.prep(opSend, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uint32(len(b)),
		syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, tag)
}

// Recv queues a non-blocking receive into b from the socket fd, tagged
// tag; it returns false when the batch is full. Its result is the bytes
// read, 0 at the end of the stream, or -EAGAIN when nothing was queued.
func (r *Ring) Recv(fd int, b []byte, tag uint64) bool {
	return r.prep(opRecv, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uint32(len(b)),
		syscall.MSG_DONTWAIT, tag)
}

// RecvMsg is Recv with a message header, for control messages (receive
// stamps): msg, its iovecs and its control buffer must stay untouched
// until Submit has returned the completion, and Controllen then holds the
// control bytes received.
func (r *Ring) RecvMsg(fd int, msg *syscall.Msghdr, tag uint64) bool {
	return r.prep(opRecvmsg, fd, uintptr(unsafe.Pointer(msg)), 1, syscall.MSG_DONTWAIT, tag)
}

func (r *Ring) prep(op uint8, fd int, addr uintptr, n uint32, flags uint32, tag uint64) bool {
	if r.pending == r.sqEntries {
		return false
	}
	tail := *r.sqTail // only this goroutine writes the tail
	s := &r.sqes[(tail+r.pending)&r.sqMask]
	*s = sqe{
		opcode:   op,
		fd:       int32(fd),
		addr:     uint64(addr),
		len:      n,
		msgFlags: flags,
		userData: tag,
	}
	r.pending++
	return true
}

// Submit sends the queued batch with one system call and calls done for
// each send with its tag and result: the bytes sent (possibly fewer than
// asked), or a negative errno (-EAGAIN: the socket took nothing). The
// sends do not block (the kernel runs them as MSG_DONTWAIT), so the call
// is short, and every send has completed when Submit returns nil.
//
// An error means the ring failed (a kernel refusal, not a socket's error):
// sends not yet reported may still be in the kernel's hands, so the caller
// must not reuse their buffers, must not use the ring again, and should
// Close it (which cancels them).
func (r *Ring) Submit(done func(tag uint64, res int32)) error {
	n := r.pending
	if n == 0 {
		return nil
	}
	r.pending = 0
	atomic.StoreUint32(r.sqTail, *r.sqTail+n)
	submitted := uint32(0)
	for submitted < n {
		got, _, e := syscall.RawSyscall6(sysEnter, uintptr(r.fd), uintptr(n-submitted), 0, 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("uring: io_uring_enter: %w", e)
		}
		submitted += uint32(got)
	}
	reaped := uint32(0)
	for {
		head := *r.cqHead
		tail := atomic.LoadUint32(r.cqTail)
		for ; head != tail; head++ {
			c := r.cqes[head&r.cqMask]
			done(c.userData, c.res)
			reaped++
		}
		atomic.StoreUint32(r.cqHead, head)
		if reaped >= n {
			return nil
		}
		// A send the kernel did not finish inline: wait for it (this
		// may block, so the runtime is told).
		_, _, e := syscall.Syscall6(sysEnter, uintptr(r.fd), 0, 1, enterGetEvents, 0, 0)
		if e != 0 && e != syscall.EINTR {
			return fmt.Errorf("uring: io_uring_enter wait: %w", e)
		}
	}
}

// Close releases the ring. No batch may be in flight.
func (r *Ring) Close() error {
	if r.sqeMem != nil {
		syscall.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.ringMem != nil {
		syscall.Munmap(r.ringMem)
		r.ringMem = nil
	}
	if r.fd < 0 {
		return nil
	}
	err := syscall.Close(r.fd)
	r.fd = -1
	return err
}
