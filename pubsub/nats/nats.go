package nats

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/internal/adapter"
	"github.com/pyre-go/pyre/pubsub/internal/envelope"
)

// ErrConfig is returned by New for unusable Options.
var ErrConfig = errors.New("pubsub/nats: invalid options")

// maxB64Topic is the longest topic mapped by base64 (256 encoded bytes);
// longer ones are hashed.
const maxB64Topic = 192

// Options configures New. Either Conn or URL must be set: a nil *Options
// is the zero Options, which New rejects with ErrConfig. Every other field's
// zero value means the default its comment names.
type Options struct {
	// Conn is the NATS connection to use. The adapter does not close it and
	// does not change its handlers; see the package doc for the settings
	// it should have.
	Conn *natsgo.Conn
	// URL is one or more comma-separated nats:// URLs, used when Conn is
	// nil. The adapter then creates and owns the connection.
	URL string
	// NATSOptions are applied after the adapter's own when it creates the
	// connection (credentials, TLS, name...).
	NATSOptions []natsgo.Option
	// Prefix is the first subject token(s) of every subject. It must be a
	// valid literal subject (no spaces or wildcards). Defaults to "pyre".
	Prefix string
	// ReceiveBuffer is how many received messages may wait for delivery
	// before NATS drops further ones (slow consumer). Defaults to 8192.
	ReceiveBuffer int
	// ConnectTimeout bounds one connection attempt. Defaults to 2s.
	ConnectTimeout time.Duration
	// HealthCheckInterval is the client ping interval of an owned
	// connection; two unanswered pings drop it. Defaults to 1s.
	HealthCheckInterval time.Duration
	// WriteTimeout bounds a blocked socket write of an owned connection
	// before it is dropped. Defaults to 2s.
	WriteTimeout time.Duration
	// PublishTimeout bounds the wait for NATS to confirm a broadcast (see
	// the package doc); a broadcast not confirmed in time fails with
	// pubsub.ErrUnavailable, or is counted in Stats().Unconfirmed with
	// AsyncConfirm. Defaults to 2s.
	PublishTimeout time.Duration
	// AsyncConfirm makes Broadcast return as soon as the message is handed
	// to the connection, without waiting for NATS to confirm it. The
	// confirmation still happens in the background: a broadcast that NATS
	// does not confirm is counted in Stats().Unconfirmed and logged at warn
	// level, never lost silently. Broadcast still fails at once while the
	// connection is down. Off by default: Broadcast waits.
	AsyncConfirm bool
	// MinBackoff and MaxBackoff bound the reconnect delay of an owned
	// connection, which doubles after each failed attempt. Default to 50ms
	// and 5s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives connection events and dropped messages. Defaults to
	// discarding.
	Logger *slog.Logger
}

// PubSub is one node of a NATS-backed bus. It implements pubsub.PubSub and
// is safe for concurrent use. See the package doc for the subject mapping
// and the behaviour during faults.
type PubSub struct {
	opts  Options
	nc    *natsgo.Conn
	owned bool
	base  *adapter.Node
	log   *slog.Logger // base.Log
	recv  chan *natsgo.Msg
	conf  *confirmer

	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the receive loop returns

	subMu sync.Mutex
	subs  map[string]*natsgo.Subscription // one per topic with local subscribers

	reconnects0 uint64 // the connection's reconnections before New
}

var _ pubsub.PubSub = (*PubSub)(nil)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// New returns a node on NATS. With an owned connection (URL), it makes one
// connection attempt bounded by ConnectTimeout (or ctx's deadline, if
// sooner); if that fails New still succeeds, logs a warning and keeps
// trying in the background. It fails only for invalid Options. New copies
// *opts (NATSOptions included); changing it afterwards has no effect.
func New(ctx context.Context, o *Options) (*PubSub, error) {
	var opts Options
	if o != nil {
		opts = *o
		opts.NATSOptions = slices.Clone(o.NATSOptions)
	}
	opts.setDefaults()
	if err := checkPrefix(opts.Prefix); err != nil {
		return nil, err
	}
	p := &PubSub{
		opts:   opts,
		base:   adapter.New("nats", opts.Logger),
		recv:   make(chan *natsgo.Msg, opts.ReceiveBuffer),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
		subs:   make(map[string]*natsgo.Subscription),
	}
	p.log = p.base.Log
	switch {
	case opts.Conn != nil:
		p.nc = opts.Conn
	case opts.URL != "":
		nc, err := p.connect(ctx)
		if err != nil {
			return nil, err
		}
		p.nc, p.owned = nc, true
	default:
		return nil, fmt.Errorf("%w: Conn or URL is required", ErrConfig)
	}
	p.reconnects0 = p.nc.Stats().Reconnects
	p.conf = newConfirmer(p.nc, opts.PublishTimeout, p.log)
	go p.receive()
	return p, nil
}

func (o *Options) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = "pyre"
	}
	if o.ReceiveBuffer <= 0 {
		o.ReceiveBuffer = 8192
	}
	adapter.Default(&o.ConnectTimeout, 2*time.Second)
	adapter.Default(&o.HealthCheckInterval, time.Second)
	adapter.Default(&o.WriteTimeout, 2*time.Second)
	adapter.Default(&o.PublishTimeout, 2*time.Second)
	adapter.Backoff(&o.MinBackoff, &o.MaxBackoff)
}

func checkPrefix(prefix string) error {
	for tok := range strings.SplitSeq(prefix, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("%w: Prefix %q is not a literal subject", ErrConfig, prefix)
		}
	}
	return nil
}

func (p *PubSub) connect(ctx context.Context) (*natsgo.Conn, error) {
	o := p.opts
	timeout := o.ConnectTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	nopts := []natsgo.Option{
		natsgo.Name("pyre-" + p.base.ID.String()),
		natsgo.NoEcho(),
		natsgo.RetryOnFailedConnect(true),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectBufSize(-1),
		natsgo.Timeout(timeout),
		natsgo.PingInterval(o.HealthCheckInterval),
		natsgo.MaxPingsOutstanding(2),
		natsgo.FlusherTimeout(o.WriteTimeout),
		natsgo.CustomReconnectDelay(func(attempts int) time.Duration {
			d := o.MinBackoff << min(max(attempts-1, 0), 20)
			d = min(d, o.MaxBackoff)
			return d/2 + rand.N(d/2+1) // jitter: [d/2, d]
		}),
		natsgo.ConnectHandler(func(*natsgo.Conn) {
			p.log.Info("pubsub/nats: connected to NATS")
		}),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if !p.base.Closed() {
				p.log.Warn("pubsub/nats: disconnected from NATS; broadcasts fail with ErrUnavailable until reconnected",
					slog.Any("error", err))
			}
		}),
		natsgo.ReconnectHandler(func(nc *natsgo.Conn) {
			p.log.Info("pubsub/nats: reconnected to NATS", slog.String("server", nc.ConnectedUrlRedacted()))
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, sub *natsgo.Subscription, err error) {
			attrs := []any{slog.Any("error", err)}
			if sub != nil {
				attrs = append(attrs, slog.String("subject", sub.Subject))
			}
			if errors.Is(err, natsgo.ErrSlowConsumer) {
				p.log.Warn("pubsub/nats: receive buffer full, NATS is dropping messages for this node", attrs...)
				return
			}
			p.log.Warn("pubsub/nats: asynchronous error", attrs...)
		}),
	}
	nc, err := natsgo.Connect(o.URL, append(nopts, o.NATSOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !nc.IsConnected() {
		p.log.Warn("pubsub/nats: NATS unavailable at start; local delivery works, retrying in the background",
			slog.String("url", o.URL))
	}
	return nc, nil
}

// Subject returns the NATS subject that carries topic.
func (p *PubSub) Subject(topic string) string {
	if len(topic) <= maxB64Topic {
		return p.opts.Prefix + ".t." + base64.RawURLEncoding.EncodeToString([]byte(topic))
	}
	sum := sha256.Sum256([]byte(topic))
	return p.opts.Prefix + ".h." + hex.EncodeToString(sum[:])
}

// Subscribe adds s to the subscribers of topic and, for its first
// subscriber, subscribes the node to the topic's subject. It does not wait
// for the server (see Sync). A canceled ctx fails it.
func (p *PubSub) Subscribe(ctx context.Context, topic string, s pubsub.Subscriber) error {
	if err := p.base.CheckSubscribe(ctx, topic); err != nil {
		return err
	}
	p.subMu.Lock()
	defer p.subMu.Unlock()
	first, err := p.base.Local.Subscribe(topic, s)
	if err != nil || !first {
		return err
	}
	sub, err := p.nc.ChanSubscribe(p.Subject(topic), p.recv)
	if err != nil {
		p.base.Local.Unsubscribe(topic, s)
		return fmt.Errorf("pubsub/nats: subscribe %.60q: %w: %w", topic, pubsub.ErrUnavailable, err)
	}
	p.subs[topic] = sub
	return nil
}

// Unsubscribe removes s from the subscribers of topic and, when it was the
// last one, unsubscribes the node from the topic's subject. ctx is not
// used, so cleanup on a canceled context works.
func (p *PubSub) Unsubscribe(_ context.Context, topic string, s pubsub.Subscriber) error {
	if err := p.base.CheckUnsubscribe(topic); err != nil {
		return err
	}
	p.subMu.Lock()
	defer p.subMu.Unlock()
	if !p.base.Local.Unsubscribe(topic, s) {
		return nil
	}
	if sub := p.subs[topic]; sub != nil {
		delete(p.subs, topic)
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, natsgo.ErrConnectionClosed) {
			p.log.Debug("pubsub/nats: unsubscribe failed", slog.String("topic", topic), slog.Any("error", err))
		}
	}
	return nil
}

// Broadcast delivers msg to the local subscribers of msg.Topic, publishes
// it once to NATS for the other nodes and waits until the NATS server
// confirms it (unless AsyncConfirm): a nil error means the server has
// processed the message, that is, handed it to the subscriptions it knows.
// An error wrapping pubsub.ErrUnavailable means the other nodes may not get
// it: the connection is down, or the server did not confirm within
// PublishTimeout or before ctx ended.
func (p *PubSub) Broadcast(ctx context.Context, msg *pubsub.Message) error {
	if err := p.base.Broadcast(ctx, msg); err != nil {
		return err
	}
	if !p.nc.IsConnected() {
		p.base.PublishFailed()
		return fmt.Errorf("pubsub/nats: publish %.60q: %w: not connected to NATS (%v)",
			msg.Topic, pubsub.ErrUnavailable, p.nc.Status())
	}
	gen := p.conf.generation() // before publishing: see roundTrip
	bp := bufPool.Get().(*[]byte)
	data := envelope.Append((*bp)[:0], p.base.ID, msg)
	err := p.nc.Publish(p.Subject(msg.Topic), data) // copies data
	size := len(data)
	if cap(data) <= 64<<10 {
		*bp = data
		bufPool.Put(bp)
	}
	switch {
	case err == nil:
		if p.opts.AsyncConfirm {
			p.conf.confirmAsync(gen)
			return nil
		}
		if err := p.conf.confirm(ctx, gen); err != nil {
			p.base.PublishFailed()
			return fmt.Errorf("pubsub/nats: publish %.60q: %w: %w", msg.Topic, pubsub.ErrUnavailable, err)
		}
		return nil
	case errors.Is(err, natsgo.ErrMaxPayload):
		p.base.PublishFailed()
		return fmt.Errorf("pubsub/nats: publish %.60q (%d bytes): %w", msg.Topic, size, err)
	default:
		p.base.PublishFailed()
		return fmt.Errorf("pubsub/nats: publish %.60q: %w: %w", msg.Topic, pubsub.ErrUnavailable, err)
	}
}

// BroadcastFrom is Broadcast of a copy of msg whose From is from.
func (p *PubSub) BroadcastFrom(ctx context.Context, from string, msg *pubsub.Message) error {
	cp, err := adapter.From(msg, from)
	if err != nil {
		return err
	}
	return p.Broadcast(ctx, cp)
}

// receive delivers what the node's subscriptions receive, until Close.
func (p *PubSub) receive() {
	defer close(p.exited)
	for {
		select {
		case <-p.done:
			return
		case m := <-p.recv:
			p.base.Receive("subject", m.Subject, m.Data, p.Subject)
		}
	}
}

// Sync returns once every Subscribe and Unsubscribe made before the call
// has been processed by the server and everything published before it has
// been written, or with ctx's error. While disconnected it waits for the
// reconnection.
func (p *PubSub) Sync(ctx context.Context) error {
	if p.base.Closed() {
		return pubsub.ErrClosed
	}
	status := p.nc.StatusChanged(natsgo.CONNECTED, natsgo.CLOSED)
	defer p.nc.RemoveStatusListener(status)
	for {
		if p.nc.IsClosed() {
			return fmt.Errorf("pubsub/nats: sync: %w", natsgo.ErrConnectionClosed)
		}
		if p.nc.IsConnected() {
			fctx, cancel := context.WithTimeout(ctx, 3*p.opts.HealthCheckInterval+p.opts.WriteTimeout)
			err := p.nc.FlushWithContext(fctx)
			cancel()
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("pubsub/nats: sync: %w", ctx.Err())
			}
			continue // the connection dropped meanwhile, or the flush timed out
		}
		select {
		case <-status:
		case <-ctx.Done():
			return fmt.Errorf("pubsub/nats: sync: %w", ctx.Err())
		case <-p.done:
			return pubsub.ErrClosed
		}
	}
}

// Connected reports whether the connection to NATS is up.
func (p *PubSub) Connected() bool { return p.nc.IsConnected() }

// Stats are a node's counters since New.
type Stats struct {
	// Unconfirmed counts broadcasts that returned nil with
	// Options.AsyncConfirm but that NATS did not confirm: other nodes may
	// not have them. It stays 0 without AsyncConfirm, where such a
	// broadcast returns an error instead.
	Unconfirmed uint64
}

// Stats returns the node's counters.
func (p *PubSub) Stats() Stats { return Stats{Unconfirmed: p.conf.unconfirmed.Load()} }

// BrokerStats returns the node's counters since New: failed publishes
// (the broadcasts that returned an error after local delivery) and the
// connection's reconnections, as nats.go counts them.
func (p *PubSub) BrokerStats() pubsub.BrokerStats {
	return p.base.Stats(int64(p.nc.Stats().Reconnects - p.reconnects0))
}

// Close removes the node's subscriptions (closing the connection if the
// adapter owns it) and stops the receive and confirmation goroutines; a
// Broadcast still waiting for its confirmation fails with
// pubsub.ErrUnavailable. Every method called after Close returns
// pubsub.ErrClosed; Close is idempotent.
func (p *PubSub) Close() error {
	if !p.base.Close() {
		return nil
	}
	p.subMu.Lock()
	if p.owned {
		p.nc.Close()
	} else {
		for _, sub := range p.subs {
			_ = sub.Unsubscribe()
		}
	}
	clear(p.subs)
	p.subMu.Unlock()
	p.conf.stop()
	close(p.done)
	<-p.exited
	return nil
}
