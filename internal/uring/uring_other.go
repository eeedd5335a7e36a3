//go:build !linux

package uring

import "errors"

// Ring is one io_uring instance; there is none on this system.
type Ring struct{}

// New fails: io_uring is Linux's.
func New(entries uint32) (*Ring, error) {
	return nil, errors.New("uring: io_uring is Linux only")
}

// Send is never called: New fails on this system.
func (r *Ring) Send(fd int, b []byte, tag uint64) bool { return false }

// Recv is never called: New fails on this system.
func (r *Ring) Recv(fd int, b []byte, tag uint64) bool { return false }

// Submit is never called: New fails on this system.
func (r *Ring) Submit(done func(tag uint64, res int32)) error { return nil }

// Close does nothing.
func (r *Ring) Close() error { return nil }
