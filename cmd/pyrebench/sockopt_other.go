//go:build !linux

package main

import "syscall"

// dialControl is a no-op outside Linux: no IP_BIND_ADDRESS_NO_PORT (each
// source address offers the ephemeral port range once) and no small
// receive buffer for stalled clients.
func dialControl(int) func(network, address string, rc syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error { return nil }
}
