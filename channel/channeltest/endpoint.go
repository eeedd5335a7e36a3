package channeltest

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/pubsub"
)

// Options configure an Endpoint. nil and the zero value of every field mean
// the defaults.
type Options struct {
	// Server configures the channel.Server the Endpoint owns, as in
	// production. Its Router is replaced by New's router argument when that
	// is not nil. PubSub defaults to a private in-memory PubSub closed with
	// the Endpoint; a PubSub passed in is not closed. Connect runs for
	// Endpoint.Connect, not for Endpoint.Client. OnTerminate, if set, is
	// called before the Endpoint records the termination.
	Server channel.Options
	// Timeout bounds every wait of an assertion: a reply, a push, a
	// broadcast, a termination, the end of a Close. Defaults to 1 s.
	Timeout time.Duration
	// RefuteTimeout is the window of Refute assertions called with a
	// window of 0, like Phoenix's refute_receive_timeout. Defaults to 100 ms.
	RefuteTimeout time.Duration
	// MaxFrames bounds the frames a Client holds that no assertion has
	// taken yet, and separately the broadcasts it holds. Slow-consumer
	// policy: a Client that would exceed it is closed by its transport with
	// channel.CloseSlowConsumer, as the WebSocket transport does, and
	// further broadcasts are dropped and counted; assertion failures say
	// so. Defaults to 10 000.
	MaxFrames int
	// Wire makes the transport encode every outbound frame with the
	// connection's serializer, as the WebSocket transport does, and report
	// each frame that cannot be encoded or is not valid JSON with
	// tb.Errorf (the test goes on; the frame is still kept). Without it
	// frames reach the test as they are, with no encoding step. Defaults
	// to off.
	Wire bool
}

// Endpoint is an in-process Phoenix endpoint for tests: a real
// channel.Server with the application's router, hooks and PubSub, whose
// connections are Clients driven by the test instead of WebSockets. Create
// one per test with New; it is closed when the test ends.
type Endpoint struct {
	tb      testing.TB
	srv     *channel.Server
	timeout time.Duration
	refute  time.Duration
	max     int
	wire    bool
	userCB  func(s *channel.Socket, reason error)

	mu      sync.Mutex
	conns   map[*channel.Conn]*Client
	clients []*Client
	closed  bool
}

// New returns an Endpoint serving router, configured by opts (nil for the
// defaults), and registers its Close with tb.Cleanup. router may be nil if
// opts.Server.Router is set.
func New(tb testing.TB, router *channel.Router, opts *Options) *Endpoint {
	tb.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if router != nil {
		o.Server.Router = router
	}
	if o.Server.Router == nil {
		tb.Fatalf("channeltest: New needs a router")
		return nil
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.RefuteTimeout <= 0 {
		o.RefuteTimeout = 100 * time.Millisecond
	}
	if o.MaxFrames <= 0 {
		o.MaxFrames = 10_000
	}
	e := &Endpoint{
		tb:      tb,
		timeout: o.Timeout,
		refute:  o.RefuteTimeout,
		max:     o.MaxFrames,
		wire:    o.Wire,
		userCB:  o.Server.OnTerminate,
		conns:   make(map[*channel.Conn]*Client),
	}
	userConnect := o.Server.Connect
	o.Server.Connect = func(ctx context.Context, info *channel.ConnectInfo) error {
		if ctx.Value(skipConnectKey{}) != nil || userConnect == nil {
			return nil
		}
		return userConnect(ctx, info)
	}
	o.Server.OnTerminate = e.onTerminate
	userJoin := o.Server.OnJoin
	o.Server.OnJoin = func(cs *channel.Socket) {
		if userJoin != nil {
			userJoin(cs)
		}
		e.onJoin(cs)
	}
	e.srv = channel.NewServer(&o.Server)
	tb.Cleanup(e.Close)
	return e
}

type skipConnectKey struct{}

// Server returns the channel.Server behind the Endpoint, for its Broadcast,
// Stats and Subscribers.
func (e *Endpoint) Server() *channel.Server { return e.srv }

// PubSub returns the Endpoint's PubSub.
func (e *Endpoint) PubSub() pubsub.PubSub { return e.srv.PubSub() }

// Broadcast broadcasts event with payload to topic, like Phoenix's
// Endpoint.broadcast, and fails the test on error. With the in-memory
// PubSub, local subscribers have the broadcast when it returns.
func (e *Endpoint) Broadcast(topic, event string, payload any) {
	e.tb.Helper()
	if err := e.srv.Broadcast(context.Background(), topic, event, payload); err != nil {
		e.tb.Fatalf("channeltest: broadcast %q on %q: %v", event, topic, err)
	}
}

// Client connects a test client without calling Options.Server.Connect,
// like Phoenix's socket/3: info (nil for none) supplies the socket ID,
// Assigns, CorrelationID, Params, Header and Serializer the connection
// would have had after Connect. An empty CorrelationID gets a fresh one.
//
//	client := ep.Client(&channel.ConnectInfo{ID: "user:7", Assigns: map[string]any{"user_id": 7}})
func (e *Endpoint) Client(info *channel.ConnectInfo) *Client {
	e.tb.Helper()
	ctx := context.WithValue(context.Background(), skipConnectKey{}, true)
	c, err := e.attach(ctx, info)
	if err != nil {
		e.tb.Fatalf("channeltest: Client: %v", err)
		return nil
	}
	return c
}

// Connect connects a test client through Options.Server.Connect, like
// Phoenix's connect/3: info carries what a client would send (Params,
// Header, AuthToken, RemoteAddr, Serializer) and Connect may refuse the
// connection, whose error is returned. info is not modified. Request is
// nil: a Connect callback that needs the HTTP request cannot be tested this
// way.
func (e *Endpoint) Connect(info *channel.ConnectInfo) (*Client, error) {
	e.tb.Helper()
	return e.attach(context.Background(), info)
}

func (e *Endpoint) attach(ctx context.Context, in *channel.ConnectInfo) (*Client, error) {
	var info channel.ConnectInfo
	if in != nil {
		info = *in
	}
	info.Request = nil
	if info.Params == nil {
		info.Params = map[string]any{}
	}
	if info.Header == nil {
		info.Header = http.Header{}
	}
	if info.RemoteAddr == "" {
		info.RemoteAddr = "127.0.0.1:0"
	}
	s := newClient(e, info.Serializer)
	conn, err := e.srv.Attach(ctx, &info, s.tr)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		conn.Finish()
		return nil, channel.ErrServerClosed
	}
	e.conns[conn] = s
	e.clients = append(e.clients, s)
	e.mu.Unlock()
	s.start()
	return s, nil
}

// onJoin is the server's OnJoin hook: it keeps // socket and a snapshot of its assigns for Channel.Assigns and Channel.Send.
// It runs after the join handler, before anything else of the channel.
func (e *Endpoint) onJoin(cs *channel.Socket) {
	e.mu.Lock()
	s := e.conns[cs.Conn()]
	e.mu.Unlock()
	if s != nil {
		s.recordJoin(cs)
	}
}

// onTerminate is the server's OnTerminate hook: the user's hook first, then
// the record the assertions wait for.
func (e *Endpoint) onTerminate(cs *channel.Socket, reason error) {
	if e.userCB != nil {
		e.userCB(cs, reason)
	}
	e.mu.Lock()
	s := e.conns[cs.Conn()]
	e.mu.Unlock()
	if s != nil {
		s.recordTermination(cs.Topic(), cs.JoinRef(), reason)
	}
}

func (e *Endpoint) forget(s *Client) {
	e.mu.Lock()
	delete(e.conns, s.conn)
	e.mu.Unlock()
}

// Close closes every Client (as if its client went away), waits for their
// channels to terminate, and closes the Server. New registers it with
// tb.Cleanup; calling it earlier is allowed, later calls do nothing.
func (e *Endpoint) Close() {
	e.tb.Helper()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	socks := slices.Clone(e.clients)
	e.mu.Unlock()
	for _, s := range socks {
		if !s.shutdown() {
			e.tb.Errorf("channeltest: Close: a connection did not finish within %v: a channel callback is blocked", e.timeout)
		}
		s.unsubscribeAll()
	}
	if err := e.srv.Close(); err != nil {
		e.tb.Errorf("channeltest: close server: %v", err)
	}
}
