package channel

import (
	"context"
	"sync"
	"time"
)

// procCtx is a channel's context: its values are the connection's, and it
// is canceled when the channel ends or its connection closes. Unlike
// context.WithCancel it allocates no channel until Done is called and
// registers nothing with the parent (the connection cancels its channels
// itself), which keeps an idle joined channel small.
type procCtx struct {
	parent context.Context

	mu   sync.Mutex
	done chan struct{}
	err  error
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *procCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *procCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *procCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *procCtx) Value(key any) any { return c.parent.Value(key) }

func (c *procCtx) String() string { return "channel.procCtx" }

// cancel ends the context; later calls do nothing.
func (c *procCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
}
