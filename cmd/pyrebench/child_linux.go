package main

import "syscall"

// childAttr makes the kernel kill a child when pyrebench dies, so no server
// or worker outlives an interrupted run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
