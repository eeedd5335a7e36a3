package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/internal/adapter"
	"github.com/pyre-go/pyre/pubsub/internal/envelope"
)

// ErrConfig is returned by New for unusable Options.
var ErrConfig = errors.New("pubsub/redis: invalid options")

// Options configures New. Either Client or URL must be set: a nil *Options
// is the zero Options, which New rejects with ErrConfig. Every other field's
// zero value means the default its comment names.
type Options struct {
	// Client is the Redis client to use: a *redis.Client, or a
	// *redis.ClusterClient for Redis Cluster. The adapter does not close a
	// Client it was given. Its settings apply: with ContextTimeoutEnabled
	// false, go-redis bounds a PUBLISH by the client's ReadTimeout instead
	// of PublishTimeout (New rejects such a client without a ReadTimeout,
	// where a PUBLISH to a frozen Redis could hang), and MaxRetries above 0
	// may publish a message twice.
	Client goredis.UniversalClient
	// URL is a redis:// or rediss:// URL (see redis.ParseURL), used when
	// Client is nil. The adapter then creates and owns the client, with
	// retries off (MaxRetries -1), ContextTimeoutEnabled, and DialTimeout
	// set to ConnectTimeout unless the URL sets dial_timeout.
	URL string
	// Prefix is prepended to every topic to form its channel name.
	// Defaults to "pyre:".
	Prefix string
	// Sharded selects SPUBLISH/SSUBSCRIBE (Redis 7+) instead of
	// PUBLISH/SUBSCRIBE. Every node sharing the bus must agree.
	Sharded bool
	// PublishTimeout bounds one PUBLISH. Defaults to 2s.
	PublishTimeout time.Duration
	// ConnectTimeout bounds one attempt to open and check the subscription
	// connection. Defaults to 2s.
	ConnectTimeout time.Duration
	// HealthCheckInterval is how often the subscription connection is
	// pinged; it is declared dead after three intervals without any
	// traffic from Redis. Defaults to 1s.
	HealthCheckInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts, which doubles after each failure. Default to 50ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives connection events (warn: lost or unavailable; info:
	// connected) and dropped messages (debug). Defaults to discarding.
	Logger *slog.Logger
}

// PubSub is one node of a Redis-backed bus. It implements pubsub.PubSub
// and is safe for concurrent use. See the package doc for the mapping of
// topics and the behaviour during faults.
type PubSub struct {
	opts    Options
	client  goredis.UniversalClient
	owned   bool // close client on Close
	cluster bool // sharded with a ClusterClient: one receiver per slot
	base    *adapter.Node
	log     *slog.Logger // base.Log

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	main *receiver // the only receiver unless cluster; immutable

	mu        sync.Mutex
	receivers map[int]*receiver // all receivers; key: hash slot + 1 in cluster mode, else 0
}

var _ pubsub.PubSub = (*PubSub)(nil)

// New returns a node connected to Redis. It makes one connection attempt
// bounded by ctx and ConnectTimeout; if that fails, New still succeeds,
// logs a warning and keeps trying in the background (see the package doc).
// It fails only for invalid Options. New copies *opts; changing it
// afterwards has no effect.
func New(ctx context.Context, o *Options) (*PubSub, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	opts.setDefaults()
	p := &PubSub{
		opts:      opts,
		client:    opts.Client,
		base:      adapter.New("redis", opts.Logger),
		receivers: make(map[int]*receiver),
	}
	p.log = p.base.Log
	if err := checkClient(p.client); err != nil {
		return nil, err
	}
	if p.client == nil {
		if opts.URL == "" {
			return nil, fmt.Errorf("%w: Client or URL is required", ErrConfig)
		}
		ropts, err := goredis.ParseURL(opts.URL)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		ropts.MaxRetries = -1
		ropts.ContextTimeoutEnabled = true
		if ropts.DialTimeout == 0 {
			ropts.DialTimeout = opts.ConnectTimeout
		}
		p.client = goredis.NewClient(ropts)
		p.owned = true
	}
	_, p.cluster = p.client.(*goredis.ClusterClient)
	p.cluster = p.cluster && opts.Sharded
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if !p.cluster {
		p.main = newReceiver(p, -1)
		p.receivers[0] = p.main
		p.main.start(ctx)
	}
	return p, nil
}

// checkClient rejects a caller's client that would let a PUBLISH to a
// frozen Redis hang: one that ignores ctx deadlines (ContextTimeoutEnabled
// false) and has no read timeout either.
func checkClient(c goredis.UniversalClient) error {
	var ctxTimeout bool
	var read time.Duration
	switch c := c.(type) {
	case *goredis.Client:
		ctxTimeout, read = c.Options().ContextTimeoutEnabled, c.Options().ReadTimeout
	case *goredis.ClusterClient:
		ctxTimeout, read = c.Options().ContextTimeoutEnabled, c.Options().ReadTimeout
	default:
		return nil
	}
	if !ctxTimeout && read <= 0 {
		return fmt.Errorf("%w: Client has no read timeout and ignores context deadlines, so a PUBLISH "+
			"to an unresponsive Redis could hang; set ContextTimeoutEnabled or a ReadTimeout", ErrConfig)
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = "pyre:"
	}
	adapter.Default(&o.PublishTimeout, 2*time.Second)
	adapter.Default(&o.ConnectTimeout, 2*time.Second)
	adapter.Default(&o.HealthCheckInterval, time.Second)
	adapter.Backoff(&o.MinBackoff, &o.MaxBackoff)
}

// Channel returns the Redis channel that carries topic.
func (p *PubSub) Channel(topic string) string { return p.opts.Prefix + topic }

// receiverFor returns the receiver that holds topic's broker subscription,
// creating it in cluster mode when create is set; nil when there is none.
func (p *PubSub) receiverFor(topic string, create bool) *receiver {
	if !p.cluster {
		return p.main
	}
	key := int(slot(p.Channel(topic))) + 1
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.receivers[key]
	if r == nil && create && !p.base.Closed() {
		r = newReceiver(p, key-1)
		p.receivers[key] = r
		r.start(nil)
	}
	return r
}

// Subscribe adds s to the subscribers of topic. It returns once local
// delivery is set up; the broker subscription follows asynchronously (see
// Sync). A canceled ctx fails it.
func (p *PubSub) Subscribe(ctx context.Context, topic string, s pubsub.Subscriber) error {
	if err := p.base.CheckSubscribe(ctx, topic); err != nil {
		return err
	}
	first, err := p.base.Local.Subscribe(topic, s)
	if err != nil {
		return err
	}
	if first {
		p.receiverFor(topic, true).mark(topic)
	}
	return nil
}

// Unsubscribe removes s from the subscribers of topic; the broker
// subscription is dropped asynchronously when it was the last one. ctx is
// not used, so cleanup on a canceled context works.
func (p *PubSub) Unsubscribe(_ context.Context, topic string, s pubsub.Subscriber) error {
	if err := p.base.CheckUnsubscribe(topic); err != nil {
		return err
	}
	if p.base.Local.Unsubscribe(topic, s) {
		if r := p.receiverFor(topic, false); r != nil {
			r.mark(topic)
		}
	}
	return nil
}

// Broadcast delivers msg to the local subscribers of msg.Topic, then
// publishes it once to Redis for the other nodes. An error wrapping
// pubsub.ErrUnavailable means the other nodes may not get it.
func (p *PubSub) Broadcast(ctx context.Context, msg *pubsub.Message) error {
	if err := p.base.Broadcast(ctx, msg); err != nil {
		return err
	}
	return p.publish(ctx, msg)
}

// BroadcastFrom is Broadcast of a copy of msg whose From is from.
func (p *PubSub) BroadcastFrom(ctx context.Context, from string, msg *pubsub.Message) error {
	cp, err := adapter.From(msg, from)
	if err != nil {
		return err
	}
	return p.Broadcast(ctx, cp)
}

func (p *PubSub) publish(ctx context.Context, msg *pubsub.Message) error {
	if r := p.receiverFor(msg.Topic, false); r != nil && !r.up.Load() {
		p.base.PublishFailed()
		return fmt.Errorf("pubsub/redis: publish %.60q: %w: not connected to Redis", msg.Topic, pubsub.ErrUnavailable)
	}
	data := envelope.Encode(p.base.ID, msg)
	ctx, cancel := context.WithTimeout(ctx, p.opts.PublishTimeout)
	defer cancel()
	var err error
	if p.opts.Sharded {
		err = p.client.SPublish(ctx, p.Channel(msg.Topic), data).Err()
	} else {
		err = p.client.Publish(ctx, p.Channel(msg.Topic), data).Err()
	}
	if err != nil {
		p.base.PublishFailed()
		return fmt.Errorf("pubsub/redis: publish %.60q: %w: %w", msg.Topic, pubsub.ErrUnavailable, err)
	}
	return nil
}

// handle delivers a message that arrived from Redis on channel.
func (p *PubSub) handle(channel string, data []byte) {
	p.base.Receive("channel", channel, data, p.Channel)
}

// Sync returns once every Subscribe and Unsubscribe made before the call
// has been applied by Redis, or with ctx's error. While Redis is
// unreachable it waits for the reconnection. Broadcast is synchronous, so
// nothing published needs flushing.
func (p *PubSub) Sync(ctx context.Context) error {
	if p.base.Closed() {
		return pubsub.ErrClosed
	}
	p.mu.Lock()
	rs := make([]*receiver, 0, len(p.receivers))
	for _, r := range p.receivers {
		rs = append(rs, r)
	}
	p.mu.Unlock()
	for _, r := range rs {
		if err := r.sync(ctx); err != nil {
			return fmt.Errorf("pubsub/redis: sync: %w", err)
		}
	}
	return nil
}

// Connected reports whether the node's subscription connection is up (in
// sharded cluster mode: all of them).
func (p *PubSub) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.receivers {
		if !r.up.Load() {
			return false
		}
	}
	return true
}

// BrokerStats returns the node's counters since New: failed publishes and
// subscription connections re-established after a loss (one per
// connection in sharded cluster mode).
func (p *PubSub) BrokerStats() pubsub.BrokerStats { return p.base.Stats(-1) }

// Close stops the background goroutines, closes the subscription
// connections and, if the adapter created it, the client. Every method
// called after Close returns pubsub.ErrClosed; Close is idempotent.
func (p *PubSub) Close() error {
	if !p.base.Close() {
		return nil
	}
	p.cancel()
	p.mu.Lock()
	rs := p.receivers
	p.receivers = nil
	p.mu.Unlock()
	for _, r := range rs {
		<-r.exited
	}
	if p.owned {
		return p.client.Close()
	}
	return nil
}
