// Package uring sends batches of small socket writes through one Linux
// io_uring system call instead of one write(2) per socket.
//
// A server that fans a broadcast out to thousands of connections makes one
// socket write per connection. In a virtual machine a system call is
// expensive (entering the kernel and re-enabling interrupts can be
// hypervisor exits), so submitting 32 non-blocking sends at once costs
// noticeably less per send: BenchmarkWriteSyscall against
// BenchmarkRingSend32 in this package measure it on loopback (see
// BENCHMARKS.md for the figures).
//
// The load tool (cmd/pyrebench) batches its clients' socket reads the same
// way (Recv, RecvMsg).
//
// The package is deliberately small: sends and receives only, all
// MSG_DONTWAIT, completions
// reaped before Submit returns, so no buffer is ever in the kernel's hands
// after it. Where io_uring is unavailable (not Linux, kernels before 5.5,
// container profiles that block it, kernel.io_uring_disabled) New fails and
// callers keep their write(2) path.
package uring
