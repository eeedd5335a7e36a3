package main

import (
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// recvStamped returns what was written and the kernel's arrival stamp,
// taken between the write and the read.
func TestRecvStampedReturnsTheArrivalTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cl, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer cl.Close()
	sv, err := ln.Accept()
	require.NoError(t, err)
	defer sv.Close()

	rc, err := cl.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var fd int
	require.NoError(t, rc.Control(func(f uintptr) { fd, err = syscall.Dup(int(f)) }))
	require.NoError(t, err)
	defer syscall.Close(fd)
	require.NoError(t, syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1))
	require.NoError(t, syscall.SetNonblock(fd, true))

	var oob [64]byte
	buf := make([]byte, 64)
	n, stamp, err := recvStamped(fd, buf, &oob)
	require.ErrorIs(t, err, syscall.EAGAIN, "nothing written yet")
	require.Equal(t, -1, n)
	require.Zero(t, stamp)

	// The kernel turns receive stamps on for the whole stack in deferred
	// work after the first SO_TIMESTAMPNS: segments that arrive before that
	// carry no stamp (recvStamped gives 0, and the client records no
	// arrival latency for them). Write until one is stamped; how long the
	// kernel's work takes to run is not ours to say, so give it 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for try := 0; time.Now().Before(deadline); try++ {
		before := time.Now().UnixNano()
		_, err = sv.Write([]byte("hello"))
		require.NoError(t, err)
		waitReadable(t, fd)
		n, stamp, err = recvStamped(fd, buf, &oob)
		after := time.Now().UnixNano()
		require.NoError(t, err)
		require.Equal(t, "hello", string(buf[:n]))
		if stamp == 0 {
			continue
		}
		require.GreaterOrEqual(t, stamp, before, "try %d", try)
		require.LessOrEqual(t, stamp, after, "try %d", try)
		return
	}
	t.Fatal("no segment was stamped within 10 s")
}

// A control buffer without a timestamp, or a malformed one, gives 0.
func TestParseStampWithoutStamp(t *testing.T) {
	require.Zero(t, parseStamp(nil))
	require.Zero(t, parseStamp(make([]byte, syscall.SizeofCmsghdr-1)))
	b := make([]byte, 32)
	h := (*syscall.Cmsghdr)(unsafePointer(&b[0]))
	h.Level, h.Type = syscall.SOL_SOCKET, syscall.SCM_RIGHTS
	h.SetLen(syscall.SizeofCmsghdr + 4)
	require.Zero(t, parseStamp(b))
	h.SetLen(1000) // longer than the buffer
	require.Zero(t, parseStamp(b))
}

// waitReadable waits (at most 5 s) for input on fd.
func waitReadable(t *testing.T, fd int) {
	t.Helper()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	require.NoError(t, err)
	defer syscall.Close(ep)
	require.NoError(t, syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}))
	ev := make([]syscall.EpollEvent, 1)
	for {
		n, err := syscall.EpollWait(ep, ev, 5000)
		if err == syscall.EINTR {
			continue
		}
		require.NoError(t, err)
		require.Equal(t, 1, n, "no input within 5 s")
		return
	}
}

func unsafePointer(p *byte) unsafe.Pointer { return unsafe.Pointer(p) }
