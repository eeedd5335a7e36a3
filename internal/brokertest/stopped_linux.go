//go:build linux

package brokertest

import (
	"syscall"
	"unsafe"
)

// waitStopped blocks until every thread of process pid has stopped after
// a SIGSTOP, so that a frozen broker can no longer process anything that
// reaches it afterwards. It uses waitid with WNOWAIT, which leaves the
// state to be reported again and does not reap the process; it returns
// early if the process is gone.
func waitStopped(pid int) {
	const pPID = 1     // P_PID
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WSTOPPED|syscall.WNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}
