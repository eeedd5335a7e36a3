//go:build !unix

package brokertest

import "syscall"

// Windows has no SIGSTOP/SIGCONT: Freeze and Thaw fail the test there.
const (
	sigStop = syscall.Signal(-1)
	sigCont = syscall.Signal(-2)
)

func (b *Broker) signal(syscall.Signal) {
	b.t.Fatalf("brokertest: Freeze and Thaw need a Unix system")
}
