//go:build unix

package brokertest

import "syscall"

const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)

// signal sends sig to the broker process.
func (b *Broker) signal(sig syscall.Signal) { _ = b.cmd.Process.Signal(sig) }
