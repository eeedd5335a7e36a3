//go:build !linux

package main

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }

// openFileLimit is reported as 0/0 where pyrebench does not read it.
func openFileLimit() (cur, hard uint64) { return 0, 0 }
