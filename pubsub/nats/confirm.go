package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// errReconnected fails a confirmation whose PONG came on a newer
// connection than a publish it should confirm: the server acknowledged the
// new connection's traffic, not what was written to the old one.
var errReconnected = errors.New("the connection to NATS was replaced before the server confirmed")

// errConfirmerStopped fails the confirmations pending at Close.
var errConfirmerStopped = errors.New("closed before NATS confirmed")

// confirmer confirms publishes by group commit. The server answers a PING
// with a PONG only after processing everything the connection sent before
// it, so one round trip confirms every publish made before its PING. A
// publisher joins the batch that is collecting; the confirmer goroutine
// takes it and confirms all of it with one round trip. While that round
// trip is in flight the next batch collects, so concurrent publishers
// share round trips and at most one is in flight. (Making the round trip
// on the publisher's goroutine when nothing is in flight saved nothing
// measurable in the benchmarks.)
type confirmer struct {
	nc      *natsgo.Conn
	timeout time.Duration
	log     *slog.Logger
	ctx     context.Context // canceled by stop: ends a round trip in flight
	cancel  context.CancelFunc
	wake    chan struct{} // cap 1: a batch is waiting
	exited  chan struct{}

	unconfirmed atomic.Uint64 // asynchronous publishes whose batch failed

	mu      sync.Mutex
	next    *batch // collecting; nil when empty
	stopped bool
}

// batch is the set of publishes one round trip confirms.
type batch struct {
	gen   uint64 // lowest connection generation (nc.Reconnects) of a publish
	async int    // publishes whose Broadcast does not wait for err
	done  chan struct{}
	err   error // set before done is closed
}

func newConfirmer(nc *natsgo.Conn, timeout time.Duration, log *slog.Logger) *confirmer {
	c := &confirmer{
		nc:      nc,
		timeout: timeout,
		log:     log,
		wake:    make(chan struct{}, 1),
		exited:  make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
	return c
}

// generation returns the current connection generation. A publisher reads
// it before publishing.
func (c *confirmer) generation() uint64 { return c.nc.Stats().Reconnects }

// confirm returns once the publishes made so far on connection generation
// gen are confirmed, with an error when they could not be, or when ctx
// ended first.
func (c *confirmer) confirm(ctx context.Context, gen uint64) error {
	c.mu.Lock()
	b := c.joinLocked(gen, false)
	c.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("not confirmed by NATS before the context ended: %w", ctx.Err())
	}
}

// confirmAsync has the publishes made so far on connection generation gen
// confirmed in the background; if that fails they are counted as
// unconfirmed and logged.
func (c *confirmer) confirmAsync(gen uint64) {
	c.mu.Lock()
	c.joinLocked(gen, true)
	c.mu.Unlock()
}

func (c *confirmer) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// joinLocked adds a publish made on connection generation gen to the
// collecting batch and returns the batch. An async publish is counted as
// unconfirmed if the batch fails. c.mu is held.
func (c *confirmer) joinLocked(gen uint64, async bool) *batch {
	if c.stopped {
		b := &batch{done: make(chan struct{}), err: errConfirmerStopped}
		close(b.done)
		return b
	}
	b := c.next
	if b == nil {
		b = &batch{gen: gen, done: make(chan struct{})}
		c.next = b
		c.signal()
	}
	b.gen = min(b.gen, gen)
	if async {
		b.async++
	}
	return b
}

func (c *confirmer) run() {
	defer close(c.exited)
	for {
		select {
		case <-c.ctx.Done():
			c.mu.Lock()
			c.stopped = true
			b := c.next
			c.next = nil
			c.mu.Unlock()
			if b != nil {
				c.finish(b, errConfirmerStopped)
			}
			return
		case <-c.wake:
		}
		c.mu.Lock()
		b := c.next
		c.next = nil
		c.mu.Unlock()
		if b != nil {
			c.finish(b, c.roundTrip(b.gen))
		}
	}
}

// roundTrip confirms everything sent on the connection so far, provided
// that it is still connection generation gen. It waits at most the
// PublishTimeout, and not after stop.
func (c *confirmer) roundTrip(gen uint64) error {
	if !c.nc.IsConnected() {
		return fmt.Errorf("connection to NATS lost before the server confirmed (%v)", c.nc.Status())
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	if err := c.nc.FlushWithContext(ctx); err != nil {
		switch {
		case c.ctx.Err() != nil:
			return errConfirmerStopped
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("NATS did not confirm within PublishTimeout (%v)", c.timeout)
		}
		return err
	}
	if c.generation() != gen {
		return errReconnected
	}
	return nil
}

func (c *confirmer) finish(b *batch, err error) {
	b.err = err
	close(b.done)
	if err != nil && b.async > 0 {
		total := c.unconfirmed.Add(uint64(b.async))
		c.log.Warn("pubsub/nats: broadcasts not confirmed by NATS; other nodes may not have them",
			slog.Int("count", b.async), slog.Uint64("total", total), slog.Any("error", err))
	}
}

// stop fails the collecting batch, ends a round trip in flight and waits
// for the goroutine to return.
func (c *confirmer) stop() {
	c.cancel()
	<-c.exited
}
