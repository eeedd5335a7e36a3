package main

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h (the
// syscall package predates it): bind() to a source address leaves the port
// to connect(), which picks it per 4-tuple, so 8 source addresses give 8
// times the ephemeral ports and loopback TIME_WAIT can be reused.
const ipBindAddressNoPort = 24

// dialControl sets the socket options of an outgoing client socket:
// IP_BIND_ADDRESS_NO_PORT, and SO_RCVBUF when rcvbuf > 0 (stalled clients:
// a small receive window makes the server's queue fill quickly).
func dialControl(rcvbuf int) func(network, address string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			if serr == nil && rcvbuf > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}
