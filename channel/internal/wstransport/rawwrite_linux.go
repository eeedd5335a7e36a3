//go:build linux

package wstransport

import (
	"io"
	"syscall"
	"unsafe"
)

// rawWrites: this system can write a socket with a raw system call.
const rawWrites = true

// rawWrite writes b to the non-blocking socket fd with raw write(2) calls
// until it is all written, the socket would block (a short count, no
// error) or a call fails.
func rawWrite(fd int, b []byte) (int, error) {
	w := 0
	for w < len(b) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd),
			uintptr(unsafe.Pointer(unsafe.SliceData(b[w:]))), uintptr(len(b)-w))
		switch e {
		case 0:
			if r == 0 {
				return w, io.ErrShortWrite
			}
			w += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return w, nil
		default:
			return w, e
		}
	}
	return w, nil
}
