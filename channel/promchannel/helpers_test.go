package promchannel_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/promchannel"
	"github.com/pyre-go/pyre/internal/phxtest"
)

const timeout = 5 * time.Second

// room is the test channel: its events answer as their names say.
type room struct{ channel.Base }

func (r *room) Join(_ context.Context, _ *channel.Socket, p channel.Payload) (any, error) {
	switch m := p.Map(); {
	case m["reject"] == true:
		return nil, channel.Refuse(map[string]string{"reason": "unauthorized"})
	case m["crash"] == true:
		panic("join crash")
	}
	return nil, nil
}

func (r *room) HandleIn(_ context.Context, _ *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	switch ev := msg.Event; {
	case ev == "echo", strings.HasPrefix(ev, "any:"):
		return channel.OK(msg.Payload), nil
	case ev == "err":
		return channel.ErrorReply(map[string]string{"reason": "nope"}), nil
	case ev == "custom":
		return channel.Reply{Status: "queued"}, nil
	case ev == "noreply":
		return channel.NoReply, nil
	case ev == "stop":
		return channel.NoReply, channel.ErrStop
	case ev == "boom":
		panic("boom")
	case ev == "fail":
		return channel.NoReply, errors.New("handler failed")
	}
	return channel.NoReply, channel.ErrUnhandled
}

// feed is room with client broadcast filters (channel.Filterable).
type feed struct{ room }

func (*feed) FilterLimits() *channel.FilterLimits { return nil }

func newRouter() *channel.Router {
	r := channel.NewRouter()
	r.Handle("feed:*", func() channel.Channel { return &feed{} })
	r.Handle("room:*", func() channel.Channel { return &room{} })
	r.Handle("lobby", func() channel.Channel { return &room{} })
	return r
}

// endpoint is a Server behind an httptest server, with an Observer
// installed after the Metrics' so that tests can wait for an observation
// to be counted (Observers are called in the order they were installed).
type endpoint struct {
	srv     *channel.Server
	hs      *httptest.Server
	reg     *prometheus.Registry
	joined  chan channel.JoinInfo
	handled chan channel.EventInfo
	left    chan channel.LeaveInfo
}

// newEndpoint starts a Server with opts (Router and Logger defaulted) and
// returns it with its Metrics registered on a fresh registry. popts may
// be nil.
func newEndpoint(t *testing.T, opts *channel.Options, popts *promchannel.Options) (*endpoint, *promchannel.Metrics) {
	t.Helper()
	if opts.Router == nil {
		opts.Router = newRouter()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &endpoint{srv: channel.NewServer(opts), reg: prometheus.NewRegistry(),
		joined: make(chan channel.JoinInfo, 64), handled: make(chan channel.EventInfo, 64), left: make(chan channel.LeaveInfo, 64)}
	var o promchannel.Options
	if popts != nil {
		o = *popts
	}
	o.Registerer = e.reg
	m, err := promchannel.New(e.srv, &o)
	require.NoError(t, err)
	e.srv.Observe(&channel.Observer{
		Join:  func(i channel.JoinInfo) { e.joined <- i },
		Event: func(i channel.EventInfo) { e.handled <- i },
		Leave: func(i channel.LeaveInfo) { e.left <- i },
	})
	mux := http.NewServeMux()
	mux.Handle("/socket/", e.srv)
	e.hs = httptest.NewServer(mux)
	t.Cleanup(func() {
		m.Close()
		require.NoError(t, e.srv.Close())
		e.hs.Close()
	})
	return e, m
}

// wait receives n values from c: the Metrics counted them.
func wait[T any](t *testing.T, c chan T, n int) []T {
	t.Helper()
	var out []T
	for range n {
		select {
		case v := <-c:
			out = append(out, v)
		case <-time.After(timeout):
			t.Fatalf("observed %d of %d %T", len(out), n, *new(T))
		}
	}
	return out
}

// compare gathers the registry and compares the named metrics with the
// text exposition want (HELP and TYPE lines included).
func (e *endpoint) compare(t *testing.T, want string, names ...string) {
	t.Helper()
	require.NoError(t, testutil.GatherAndCompare(e.reg, strings.NewReader(want), names...))
}

// client is the shared test client with this package's shorthands.
type client struct{ *phxtest.Client }

func (e *endpoint) dial(t *testing.T) *client {
	t.Helper()
	return &client{phxtest.Dial(t, phxtest.URL(e.hs.URL, "", ""), nil)}
}

// join joins topic and returns the reply status.
func (c *client) join(topic string, params any) string {
	c.T().Helper()
	_, status := c.Join(topic, params)
	return status
}

// push sends a client event on topic's last join and returns its ref.
func (c *client) push(topic, event string) string {
	c.T().Helper()
	return c.Push(c.JoinRef(topic), topic, event, nil)
}
