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
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/otelchannel"
	"github.com/pyre-go/pyre/internal/phxtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

// dial connects with the query (vsn=2.0.0 added) and header.
func (e *endpoint) dial(t *testing.T, query string, header http.Header) *phxtest.Client {
	t.Helper()
	return phxtest.Dial(t, phxtest.URL(e.hs.URL, "", query), header)
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
