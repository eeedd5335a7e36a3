package otelchannel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/otelchannel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 5 * time.Second

// room answers events by name: "ok" and "error" reply with that status,
// "crash" panics, "fail" returns an error (a crash), "stop" stops the
// channel, "log" logs with the handler's context and replies ok, "quiet"
// replies nothing. A join with {"refuse": true} is refused.
type room struct{ channel.Base }

func (*room) Join(ctx context.Context, s *channel.Socket, p channel.Payload) (any, error) {
	if p.Map()["refuse"] == true {
		return nil, channel.Refuse(map[string]any{"reason": "unauthorized"})
	}
	return nil, nil
}

var errFail = errors.New("room failed")

func (*room) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	switch msg.Event {
	case "ok":
		return channel.OK(nil), nil
	case "error":
		return channel.ErrorReply(map[string]any{"reason": "bad"}), nil
	case "crash":
		panic("room exploded")
	case "fail":
		return channel.NoReply, errFail
	case "stop":
		return channel.OK(nil), channel.ErrStop
	case "log":
		s.Logger().InfoContext(ctx, "handled in a span")
		return channel.OK(nil), nil
	case "quiet":
		return channel.NoReply, nil
	}
	return channel.NoReply, channel.ErrUnhandled
}

// crashingJoin panics in Join.
type crashingJoin struct{ room }

func (*crashingJoin) Join(context.Context, *channel.Socket, channel.Payload) (any, error) {
	panic("join exploded")
}

// bare handles nothing and has no hooks (no Base): ErrUnhandled reaches
// the router's hooks.
type bare struct{}

func (*bare) Join(context.Context, *channel.Socket, channel.Payload) (any, error) { return nil, nil }

func (*bare) HandleIn(context.Context, *channel.Socket, *channel.Message) (channel.Reply, error) {
	return channel.NoReply, channel.ErrUnhandled
}

// endpoint is a traced server behind an httptest server.
type endpoint struct {
	hs    *httptest.Server
	spans *tracetest.SpanRecorder
	logs  *lockedBuffer
}

// newEndpoint serves "room:*" channels traced with opts (whose
// Propagators default to W3C trace context and baggage here), see serve.
func newEndpoint(t *testing.T, opts *otelchannel.Options) *endpoint {
	t.Helper()
	if opts == nil {
		opts = &otelchannel.Options{}
	}
	if opts.Propagators == nil {
		opts.Propagators = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	return serve(t, opts)
}

// serve serves "room:*" and "crash:*" channels traced with opts, whose
// TracerProvider it sets to a provider recording into e.spans, with the
// tracing Connect and a JSON logger through LogHandler into e.logs.
func serve(t *testing.T, opts *otelchannel.Options) *endpoint {
	t.Helper()
	e := &endpoint{spans: tracetest.NewSpanRecorder(), logs: &lockedBuffer{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	opts.TracerProvider = tp
	r := channel.NewRouter()
	r.Use(otelchannel.Middleware(opts))
	r.Handle("room:*", func() channel.Channel { return &room{} })
	r.Handle("crash:*", func() channel.Channel { return &crashingJoin{} })
	r.Handle("bare:*", func() channel.Channel { return &bare{} })
	srv := channel.NewServer(&channel.Options{
		Router:  r,
		Connect: otelchannel.Connect(nil, opts),
		Logger:  slog.New(otelchannel.LogHandler(slog.NewJSONHandler(e.logs, nil))),
	})
	mux := http.NewServeMux()
	mux.Handle("/socket/", srv)
	e.hs = httptest.NewServer(mux)
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		e.hs.Close()
		require.NoError(t, tp.Shutdown(context.Background()))
	})
	return e
}

// span returns the one ended span named name.
func (e *endpoint) span(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "spans named %q among %v", name, e.spanNames())
	return found[0]
}

func (e *endpoint) spanNames() []string {
	var names []string
	for _, s := range e.spans.Ended() {
		names = append(names, s.Name())
	}
	return names
}

// client is a WebSocket client speaking the Phoenix V2 JSON protocol.
type client struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan []json.RawMessage
	ref    int
}

// dial connects with the query (vsn=2.0.0 added) and header.
func (e *endpoint) dial(t *testing.T, query string, header http.Header) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	u := "ws" + strings.TrimPrefix(e.hs.URL, "http") + "/socket/websocket?vsn=2.0.0"
	if query != "" {
		u += "&" + query
	}
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: header})
	require.NoError(t, err)
	c := &client{t: t, ws: ws, frames: make(chan []json.RawMessage, 64)}
	done := make(chan struct{})
	go func() { // reads continuously, so that close handshakes complete
		defer close(done)
		defer close(c.frames)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var f []json.RawMessage
			if json.Unmarshal(b, &f) == nil && len(f) == 5 {
				c.frames <- f
			}
		}
	}()
	t.Cleanup(func() {
		_ = ws.CloseNow()
		<-done
	})
	return c
}

// push sends [join_ref, ref, topic, event, payload] with the next ref and
// returns the ref.
func (c *client) push(joinRef, topic, event string, payload any) string {
	c.t.Helper()
	c.ref++
	ref := strconv.Itoa(c.ref)
	c.send(joinRef, ref, topic, event, payload)
	return ref
}

func (c *client) send(joinRef, ref, topic, event string, payload any) {
	c.t.Helper()
	if payload == nil {
		payload = map[string]any{}
	}
	b, err := json.Marshal([]any{joinRef, ref, topic, event, payload})
	require.NoError(c.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(c.t, c.ws.Write(ctx, websocket.MessageText, b))
}

// next returns the next frame for which match is true, skipping others.
func (c *client) next(what string, match func(f []json.RawMessage) bool) []json.RawMessage {
	c.t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			require.True(c.t, ok, "connection closed while waiting for %s", what)
			if match(f) {
				return f
			}
		case <-timer.C:
			require.FailNow(c.t, "timed out waiting for "+what)
		}
	}
}

// reply waits for the phx_reply to ref and returns its status.
func (c *client) reply(ref string) string {
	c.t.Helper()
	f := c.next("reply to "+ref, func(f []json.RawMessage) bool {
		return str(f[1]) == ref && str(f[3]) == "phx_reply"
	})
	var r struct{ Status string }
	require.NoError(c.t, json.Unmarshal(f[4], &r))
	return r.Status
}

// join joins topic with params and returns the join reply's status; the
// join_ref is the join's ref.
func (c *client) join(topic string, params any) (joinRef, status string) {
	c.t.Helper()
	c.ref++
	ref := strconv.Itoa(c.ref)
	c.send(ref, ref, topic, channel.EventJoin, params) // join_ref == ref, as phoenix.js sends it
	return ref, c.reply(ref)
}

// control waits for a push of event (phx_error, phx_close) on topic.
func (c *client) control(topic, event string) {
	c.t.Helper()
	c.next(event+" on "+topic, func(f []json.RawMessage) bool {
		return str(f[2]) == topic && str(f[3]) == event
	})
}

func str(m json.RawMessage) string {
	var s string
	_ = json.Unmarshal(m, &s)
	return s
}

// lockedBuffer collects log output from the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records whose msg is msg.
func (b *lockedBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal(line, &rec), "log line %s", line)
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// traceparent formats a W3C traceparent header value.
func traceparent(traceID, spanID string) string {
	return fmt.Sprintf("00-%s-%s-01", traceID, spanID)
}
