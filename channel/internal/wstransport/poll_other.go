//go:build !linux

package wstransport

import "errors"

// pollReads: elsewhere each connection is read by a goroutine of its own
// (Conn.readLoop), which waits for input on a shallow stack.
const pollReads = false

// poller is Linux-only (poll_linux.go); this one is never created.
type poller struct{}

func newPoller() (*poller, error) {
	return nil, errors.New("wstransport: the epoll poller is Linux-only")
}

func (p *poller) run()                {}
func (p *poller) register(*Conn) bool { return false }
func (p *poller) unregister(*Conn)    {}
func (p *poller) arm(*Conn) bool      { return false }
func (p *poller) close()              {}
