//go:build !linux

package main

import "errors"

type poller struct{}

// startPollers reports that the epoll read path is Linux-only; the worker
// then reads with a goroutine per connection.
func (w *worker) startPollers(int) error { return errors.New("epoll read path: Linux only") }

func (w *worker) handOver(*wconn) error { return errors.New("epoll read path: Linux only") }
