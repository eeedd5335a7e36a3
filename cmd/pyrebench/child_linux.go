package main

import "syscall"

// childAttr makes the kernel kill a child when pyrebench dies, so no server
// or worker outlives an interrupted run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// openFileLimit returns RLIMIT_NOFILE (soft, hard).
func openFileLimit() (cur, hard uint64) {
	var rl syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur, rl.Max
}
