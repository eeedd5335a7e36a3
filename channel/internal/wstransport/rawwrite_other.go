//go:build !linux

package wstransport

import "errors"

// rawWrites: elsewhere connections are written by a goroutine of their
// own, through net.Conn. The raw path is Linux-only because it is measured
// and tested there; macOS routes raw system calls through libc.
const rawWrites = false

func rawWrite(int, []byte) (int, error) {
	return 0, errors.New("wstransport: raw socket writes are Linux-only")
}
