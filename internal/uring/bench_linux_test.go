//go:build linux

package uring

import (
	"io"
	"net"
	"syscall"
	"testing"
	"unsafe"
)

// pairs opens n loopback TCP connections and returns the raw descriptors of
// the dialed ends (set non-blocking) and the accepted ends.
func pairs(tb testing.TB, n int) (fds []int, peers []net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		p, err := ln.Accept()
		if err != nil {
			tb.Fatal(err)
		}
		f, err := c.(*net.TCPConn).File() // a blocking duplicate; made non-blocking below
		if err != nil {
			tb.Fatal(err)
		}
		c.Close()
		fd := int(f.Fd())
		if err := syscall.SetNonblock(fd, true); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { f.Close() })
		fds = append(fds, fd)
		peers = append(peers, p)
		tb.Cleanup(func() { p.Close() })
	}
	return fds, peers
}

// drain reads want bytes from every peer.
func drain(tb testing.TB, peers []net.Conn, want []int) {
	buf := make([]byte, 64<<10)
	for i, p := range peers {
		if want[i] == 0 {
			continue
		}
		if _, err := io.ReadFull(p, buf[:want[i]]); err != nil {
			tb.Fatal(err)
		}
		want[i] = 0
	}
}

const benchConns = 2000

func BenchmarkWriteSyscall(b *testing.B) {
	fds, peers := pairs(b, benchConns)
	msg := make([]byte, 128)
	sent := make([]int, len(fds))
	b.ResetTimer()
	for i := range b.N {
		k := i % len(fds)
		if k == 0 && i > 0 && i%(len(fds)*50) == 0 {
			b.StopTimer()
			drain(b, peers, sent)
			b.StartTimer()
		}
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fds[k]), uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)))
		if e != 0 || int(r) != len(msg) {
			b.Fatalf("write: %d %v", r, e)
		}
		sent[k] += len(msg)
	}
	b.StopTimer()
	drain(b, peers, sent)
}

func BenchmarkRingSend32(b *testing.B) {
	fds, peers := pairs(b, benchConns)
	r, err := New(32)
	if err != nil {
		b.Skip(err)
	}
	defer r.Close()
	msg := make([]byte, 128)
	sent := make([]int, len(fds))
	done := func(tag uint64, res int32) {
		if res != int32(len(msg)) {
			b.Fatalf("send %d: %d", tag, res)
		}
		sent[tag] += len(msg)
	}
	b.ResetTimer()
	for i := range b.N {
		k := i % len(fds)
		if k == 0 && i > 0 && i%(len(fds)*50) == 0 {
			if err := r.Submit(done); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			drain(b, peers, sent)
			b.StartTimer()
		}
		if !r.Send(fds[k], msg, uint64(k)) {
			if err := r.Submit(done); err != nil {
				b.Fatal(err)
			}
			r.Send(fds[k], msg, uint64(k))
		}
	}
	if err := r.Submit(done); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	drain(b, peers, sent)
}
