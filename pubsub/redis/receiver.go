package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// subscribeBatch is the most channels sent in one SUBSCRIBE.
const subscribeBatch = 512

var (
	errStale     = errors.New("no traffic from Redis for three health-check intervals")
	errSlotMoved = errors.New("redis dropped a sharded subscription (slot migrated)")
)

// receiver owns one subscription connection (a go-redis PubSub) and the
// broker subscriptions of the topics routed to it.
//
// Two goroutines: run (the owner) connects, reconnects with backoff,
// reconciles broker subscriptions with the local ones, health-checks and
// sends Sync pings; read receives from the connection and delivers. run
// starts read for each connection and waits for it before the next.
type receiver struct {
	p    *PubSub
	slot int // hash slot in cluster mode, else -1

	wake     chan struct{} // cap 1: pending work for run
	exited   chan struct{} // closed when run returns
	up       atomic.Bool   // subscription connection established
	lastSeen atomic.Int64  // unix nanos of the last traffic from Redis

	mu       sync.Mutex
	pending  map[string]struct{}        // topics whose broker state may be stale
	syncWait []chan struct{}            // Sync calls waiting for the next ping
	pongWait map[string][]chan struct{} // ping token -> Sync calls
	syncSeq  uint64
}

func newReceiver(p *PubSub, slot int) *receiver {
	return &receiver{
		p:        p,
		slot:     slot,
		wake:     make(chan struct{}, 1),
		exited:   make(chan struct{}),
		pending:  make(map[string]struct{}),
		pongWait: make(map[string][]chan struct{}),
	}
}

// start makes a first connection attempt bounded by ctx (when not nil)
// and then runs the receiver in the background.
func (r *receiver) start(ctx context.Context) {
	var ps *goredis.PubSub
	if ctx != nil {
		var err error
		if ps, err = r.connect(ctx); err != nil {
			r.p.log.Warn("pubsub/redis: Redis unavailable at start; local delivery works, retrying in the background",
				slog.Any("error", err))
		} else {
			r.p.log.Info("pubsub/redis: connected to Redis")
		}
	}
	go r.run(ps)
}

// mark records that topic's broker subscription may need to change.
func (r *receiver) mark(topic string) {
	r.mu.Lock()
	r.pending[topic] = struct{}{}
	r.mu.Unlock()
	r.poke()
}

func (r *receiver) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// sync waits until run has applied everything pending before the call and
// Redis has answered a PING sent after it.
func (r *receiver) sync(ctx context.Context) error {
	if !r.up.Load() && !r.wanted() {
		return nil // an idle per-slot connection has nothing to apply
	}
	done := make(chan struct{})
	r.mu.Lock()
	r.syncWait = append(r.syncWait, done)
	r.mu.Unlock()
	r.poke()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.exited:
		return errors.New("closed")
	}
}

func (r *receiver) run(ps *goredis.PubSub) {
	defer close(r.exited)
	backoff := r.p.opts.MinBackoff
	wasUp := ps != nil // a later connection is a reconnection
	for attempt := 1; ; attempt++ {
		if ps == nil {
			if !r.waitWanted() {
				return
			}
			var err error
			ctx, cancel := context.WithTimeout(r.p.ctx, r.p.opts.ConnectTimeout)
			ps, err = r.connect(ctx)
			cancel()
			if err != nil {
				if r.p.ctx.Err() != nil {
					return
				}
				r.p.log.Debug("pubsub/redis: connect failed", slog.Int("attempt", attempt), slog.Any("error", err))
				if !r.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, r.p.opts.MaxBackoff)
				continue
			}
			r.p.log.Info("pubsub/redis: connected to Redis", slog.Int("slot", r.slot), slog.Int("attempts", attempt))
			if wasUp {
				r.p.base.Reconnected()
			}
			wasUp = true
		}
		err := r.serve(ps)
		r.up.Store(false)
		_ = ps.Close()
		ps = nil
		r.requeueSyncs()
		if r.p.ctx.Err() != nil {
			return
		}
		r.p.log.Warn("pubsub/redis: lost the Redis subscription connection; broadcasts fail with ErrUnavailable until it is back",
			slog.Int("slot", r.slot), slog.Any("error", err))
		attempt, backoff = 0, r.p.opts.MinBackoff
	}
}

// wanted reports whether this receiver needs a connection: always, except
// a per-slot receiver whose slot has no local subscribers.
func (r *receiver) wanted() bool { return r.slot < 0 || len(r.topics()) > 0 }

// waitWanted waits until the receiver is wanted and reports false on Close.
func (r *receiver) waitWanted() bool {
	for !r.wanted() {
		select {
		case <-r.p.ctx.Done():
			return false
		case <-r.wake:
		}
	}
	return r.p.ctx.Err() == nil
}

// sleep waits d and reports false on Close. Work that arrives meanwhile
// stays recorded in pending and syncWait for the next connection.
func (r *receiver) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.p.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// topics returns the local topics routed to this receiver.
func (r *receiver) topics() []string {
	all := r.p.base.Local.Topics()
	if r.slot < 0 {
		return all
	}
	mine := all[:0]
	for _, t := range all {
		if int(slot(r.p.Channel(t))) == r.slot {
			mine = append(mine, t)
		}
	}
	return mine
}

// connect opens a subscription connection and checks it with a PING.
func (r *receiver) connect(ctx context.Context) (*goredis.PubSub, error) {
	var ps *goredis.PubSub
	if r.p.opts.Sharded {
		var first []string
		if topics := r.topics(); len(topics) > 0 {
			first = []string{r.p.Channel(topics[0])} // routes the connection to the slot owner
		}
		ps = r.p.client.SSubscribe(ctx, first...)
	} else {
		ps = r.p.client.Subscribe(ctx)
	}
	if err := ps.Ping(ctx, "hello"); err != nil {
		_ = ps.Close()
		return nil, err
	}
	for {
		m, err := ps.Receive(ctx)
		if err != nil {
			_ = ps.Close()
			return nil, err
		}
		if pong, ok := m.(*goredis.Pong); ok && pong.Payload == "hello" {
			r.up.Store(true)
			return ps, nil
		}
	}
}

// serve runs one connection until it fails or the adapter closes.
func (r *receiver) serve(ps *goredis.PubSub) error {
	r.lastSeen.Store(time.Now().UnixNano())
	readErr := make(chan error, 1)
	go r.read(ps, readErr)
	fail := func(err error) error {
		_ = ps.Close() // ends read
		<-readErr
		return err
	}

	have := make(map[string]bool)
	r.mu.Lock()
	clear(r.pending) // everything wanted now is subscribed below
	r.mu.Unlock()
	if err := r.send(ps, "subscribe", r.topics(), have); err != nil {
		return fail(err)
	}
	interval := r.p.opts.HealthCheckInterval
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if err := r.reconcile(ps, have); err != nil {
			return fail(err)
		}
		if err := r.pingSyncs(ps); err != nil {
			return fail(err)
		}
		select {
		case <-r.p.ctx.Done():
			return fail(r.p.ctx.Err())
		case err := <-readErr:
			return err
		case <-r.wake:
		case <-ticker.C:
			if time.Since(time.Unix(0, r.lastSeen.Load())) > 3*interval {
				return fail(errStale)
			}
			ctx, cancel := context.WithTimeout(r.p.ctx, interval)
			err := ps.Ping(ctx, "health")
			cancel()
			if err != nil {
				return fail(err)
			}
		}
	}
}

// reconcile applies pending topics: subscribe those with local subscribers
// that the connection lacks, unsubscribe those without.
func (r *receiver) reconcile(ps *goredis.PubSub, have map[string]bool) error {
	r.mu.Lock()
	pending := r.pending
	r.pending = make(map[string]struct{})
	r.mu.Unlock()
	var sub, unsub []string
	for topic := range pending {
		want := r.p.base.Local.Count(topic) > 0
		switch {
		case want && !have[topic]:
			sub = append(sub, topic)
		case !want && have[topic]:
			unsub = append(unsub, topic)
		}
	}
	if err := r.send(ps, "subscribe", sub, have); err != nil {
		return err
	}
	return r.send(ps, "unsubscribe", unsub, have)
}

// send issues (S)SUBSCRIBE or (S)UNSUBSCRIBE for topics in batches and
// records the result in have.
func (r *receiver) send(ps *goredis.PubSub, verb string, topics []string, have map[string]bool) error {
	for len(topics) > 0 {
		n := min(len(topics), subscribeBatch)
		chans := make([]string, n)
		for i, t := range topics[:n] {
			chans[i] = r.p.Channel(t)
		}
		ctx, cancel := context.WithTimeout(r.p.ctx, r.p.opts.ConnectTimeout)
		var err error
		switch {
		case verb == "subscribe" && r.p.opts.Sharded:
			err = ps.SSubscribe(ctx, chans...)
		case verb == "subscribe":
			err = ps.Subscribe(ctx, chans...)
		case r.p.opts.Sharded:
			err = ps.SUnsubscribe(ctx, chans...)
		default:
			err = ps.Unsubscribe(ctx, chans...)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
		for _, t := range topics[:n] {
			if verb == "subscribe" {
				have[t] = true
			} else {
				delete(have, t)
			}
		}
		topics = topics[n:]
	}
	return nil
}

// pingSyncs sends one PING for the Sync calls waiting; read releases them
// when the PONG arrives, after the replies to everything sent before.
func (r *receiver) pingSyncs(ps *goredis.PubSub) error {
	r.mu.Lock()
	if len(r.syncWait) == 0 {
		r.mu.Unlock()
		return nil
	}
	r.syncSeq++
	token := "sync:" + strconv.FormatUint(r.syncSeq, 10)
	r.pongWait[token] = r.syncWait
	r.syncWait = nil
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.p.ctx, r.p.opts.ConnectTimeout)
	defer cancel()
	return ps.Ping(ctx, token)
}

// requeueSyncs moves Sync calls whose PING was lost with the connection
// back to the waiting list, for the next connection.
func (r *receiver) requeueSyncs() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for token, ws := range r.pongWait {
		r.syncWait = append(r.syncWait, ws...)
		delete(r.pongWait, token)
	}
}

// read receives from ps until it fails, delivering messages and releasing
// Sync calls.
func (r *receiver) read(ps *goredis.PubSub, errc chan<- error) {
	for {
		m, err := ps.Receive(r.p.ctx)
		if err != nil {
			errc <- err
			return
		}
		r.lastSeen.Store(time.Now().UnixNano())
		switch m := m.(type) {
		case *goredis.Message:
			r.p.handle(m.Channel, []byte(m.Payload))
		case *goredis.Pong:
			r.mu.Lock()
			ws := r.pongWait[m.Payload]
			delete(r.pongWait, m.Payload)
			r.mu.Unlock()
			for _, w := range ws {
				close(w)
			}
		case *goredis.Subscription:
			topic, ours := strings.CutPrefix(m.Channel, r.p.opts.Prefix)
			if m.Kind == "sunsubscribe" && r.slot >= 0 && ours && r.p.base.Local.Count(topic) > 0 {
				errc <- errSlotMoved
				return
			}
		}
	}
}

// slot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key, or of its hash tag (the part between the first '{' and the next
// '}', when not empty), modulo 16384.
func slot(key string) uint16 {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						key = key[i+1 : j]
					}
					return crc16(key) % 16384
				}
			}
			break
		}
	}
	return crc16(key) % 16384
}

func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
