package promchannel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/promchannel"
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

// client is a minimal phoenix.js-like V2 client over a real WebSocket.
type client struct {
	t        *testing.T
	c        *websocket.Conn
	ref      int
	joinRefs map[string]string // topic -> join_ref of the last join
}

func (e *endpoint) dial(t *testing.T) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	u := "ws" + strings.TrimPrefix(e.hs.URL, "http") + "/socket/websocket?vsn=2.0.0"
	c, _, err := websocket.Dial(ctx, u, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &client{t: t, c: c, joinRefs: map[string]string{}}
}

// send sends [joinRef, ref, topic, event, payload] and returns the ref.
func (c *client) send(joinRef, topic, event string, payload any) string {
	c.t.Helper()
	c.ref++
	ref := fmt.Sprint(c.ref)
	b, err := json.Marshal([]any{joinRef, ref, topic, event, payload})
	require.NoError(c.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	require.NoError(c.t, c.c.Write(ctx, websocket.MessageText, b))
	return ref
}

// reply reads frames until the reply to ref and returns its status.
func (c *client) reply(ref string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := c.c.Read(ctx)
		require.NoError(c.t, err)
		var f []any
		require.NoError(c.t, json.Unmarshal(b, &f))
		if f[1] == ref && f[3] == "phx_reply" {
			return f[4].(map[string]any)["status"].(string)
		}
	}
}

// join joins topic and returns the reply status.
func (c *client) join(topic string, params any) string {
	c.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	ref := c.send(fmt.Sprint(c.ref+1), topic, "phx_join", params)
	c.joinRefs[topic] = ref
	return c.reply(ref)
}

// push sends a client event on a joined topic and returns its ref.
func (c *client) push(topic, event string) string {
	c.t.Helper()
	return c.send(c.joinRefs[topic], topic, event, map[string]any{})
}
