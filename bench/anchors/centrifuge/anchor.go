package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/centrifugal/centrifuge"

	"github.com/pyre-go/pyre/cmd/pyre-bench-server/benchserver"
)

// Config configures the anchor. The zero value of a field means its default.
type Config struct {
	// Broker is "memory" (the default: centrifuge's in-memory broker, one
	// node) or a Redis address, redis://host:port, for centrifuge's Redis
	// broker shared by several nodes.
	Broker string
	// RedisPrefix is the key and channel prefix in Redis. Defaults to
	// "pyrebench-anchor"; every node of one measurement must use the same.
	RedisPrefix string
	// Tuned sets the WebSocket options centrifuge documents for memory:
	// write-buffer pool, 1 KiB read buffer, commands off the read loop.
	// Defaults to off (library defaults, as the shared harness measures).
	Tuned bool
	// Pprof mounts net/http/pprof at /debug/pprof/. Defaults to off.
	Pprof bool
	// Logger receives centrifuge's error logs. Defaults to discarding.
	Logger *slog.Logger
}

// Anchor is a centrifuge node behind the bench contract's HTTP endpoints.
type Anchor struct {
	cfg     Config
	node    *centrifuge.Node
	mux     *http.ServeMux
	broker  *countingBroker // nil with the in-memory broker
	shard   *centrifuge.RedisShard
	publish sync.Mutex   // one publish loop at a time
	pubs    atomic.Int64 // node.Publish calls
}

// ErrUnknownBroker is returned for a Config.Broker that is neither memory nor redis://.
var ErrUnknownBroker = errors.New("anchor: unknown broker (want memory or redis://host:port)")

// New starts a centrifuge node configured by c.
func New(c Config) (*Anchor, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RedisPrefix == "" {
		c.RedisPrefix = "pyrebench-anchor"
	}
	node, err := centrifuge.New(centrifuge.Config{
		LogLevel: centrifuge.LogLevelError,
		LogHandler: func(e centrifuge.LogEntry) {
			c.Logger.Error("centrifuge: "+e.Message, "fields", e.Fields)
		},
	})
	if err != nil {
		return nil, err
	}
	a := &Anchor{cfg: c, node: node, mux: http.NewServeMux()}
	switch {
	case c.Broker == "" || c.Broker == "memory":
	case strings.HasPrefix(c.Broker, "redis://"):
		shard, err := centrifuge.NewRedisShard(node, centrifuge.RedisShardConfig{Address: c.Broker})
		if err != nil {
			return nil, fmt.Errorf("anchor: redis shard: %w", err)
		}
		rb, err := centrifuge.NewRedisBroker(node, centrifuge.RedisBrokerConfig{
			Prefix: c.RedisPrefix,
			Shards: []*centrifuge.RedisShard{shard},
		})
		if err != nil {
			return nil, fmt.Errorf("anchor: redis broker: %w", err)
		}
		// The counting wrapper is the node's Broker; the Redis broker stays
		// its Controller (node-to-node control messages), as SetBroker would
		// have made it.
		a.broker, a.shard = &countingBroker{Broker: rb, closer: rb}, shard
		node.SetController(rb)
		node.SetBroker(a.broker)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownBroker, c.Broker)
	}
	var nextID atomic.Int64
	node.OnConnecting(func(context.Context, centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return centrifuge.ConnectReply{
			Credentials: &centrifuge.Credentials{UserID: "u" + strconv.FormatInt(nextID.Add(1), 10)},
		}, nil
	})
	node.OnConnect(func(client *centrifuge.Client) {
		client.OnSubscribe(func(_ centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{}, nil)
		})
	})
	if err := node.Run(); err != nil {
		return nil, err
	}
	ws := centrifuge.WebsocketConfig{}
	if c.Tuned {
		ws.UseWriteBufferPool = true
		ws.ReadBufferSize = 1024
		ws.ProcessCommandsOffReadLoop = true
	}
	a.mux.Handle("/connection/websocket", centrifuge.NewWebsocketHandler(node, ws))
	// /publish runs the same paced loop as pyre's bench server, each
	// payload published with node.Publish.
	a.mux.Handle("/publish", benchserver.PublishHandler(&a.publish, func(_ context.Context, ch string, payload []byte) error {
		a.pubs.Add(1)
		_, err := a.node.Publish(ch, payload)
		return err
	}))
	a.mux.HandleFunc("/debug/mem", a.handleMem)
	if c.Pprof {
		a.mux.HandleFunc("/debug/pprof/", pprof.Index)
		a.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		a.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	return a, nil
}

// ServeHTTP implements http.Handler.
func (a *Anchor) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Shutdown disconnects every client, stops the node and closes its Redis
// connections.
func (a *Anchor) Shutdown(ctx context.Context) error {
	err := a.node.Shutdown(ctx)
	if a.broker != nil {
		_ = a.broker.Close(ctx)
		a.shard.Close()
	}
	return err
}

// handleMem is GET /debug/mem[?gc=1]: the runtime's memory after an
// optional GC, RSS, the node's clients and subscribers, and the broker
// counters (with the Redis broker).
func (a *Anchor) handleMem(w http.ResponseWriter, r *http.Request) {
	out := benchserver.MemStats(r)
	out["connections"] = a.node.Hub().NumClients()
	out["publishes"] = a.pubs.Load()
	if ch := r.URL.Query().Get("channel"); ch != "" {
		out["subscribers"] = a.node.Hub().NumSubscribers(ch)
	}
	if a.broker != nil {
		out["broker_published"] = a.broker.published.Load()
		out["broker_received"] = a.broker.received.Load()
		out["broker_subscribes"] = a.broker.subscribes.Load()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// countingBroker counts what goes to and comes from the broker: Publish
// calls, publications the broker hands to this node, and channels
// subscribed at the broker.
type countingBroker struct {
	centrifuge.Broker
	closer                          interface{ Close(context.Context) error }
	published, received, subscribes atomic.Int64
}

func (b *countingBroker) RegisterBrokerEventHandler(h centrifuge.BrokerEventHandler) error {
	return b.Broker.RegisterBrokerEventHandler(&countingHandler{BrokerEventHandler: h, b: b})
}

// Close stops the wrapped broker (Node.Shutdown calls it).
func (b *countingBroker) Close(ctx context.Context) error { return b.closer.Close(ctx) }

func (b *countingBroker) Subscribe(channels ...string) error {
	b.subscribes.Add(int64(len(channels)))
	return b.Broker.Subscribe(channels...)
}

func (b *countingBroker) Publish(ch string, data []byte, opts centrifuge.PublishOptions) (centrifuge.PublishResult, error) {
	b.published.Add(1)
	return b.Broker.Publish(ch, data, opts)
}

type countingHandler struct {
	centrifuge.BrokerEventHandler
	b *countingBroker
}

func (h *countingHandler) HandlePublication(ch string, pub *centrifuge.Publication, sp centrifuge.StreamPosition, useDelta bool, prev *centrifuge.Publication) error {
	h.b.received.Add(1)
	return h.BrokerEventHandler.HandlePublication(ch, pub, sp, useDelta, prev)
}
