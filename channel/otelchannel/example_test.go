package otelchannel_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/coder/websocket"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/otelchannel"
)

// Chat replies to "shout" and logs it with the handler's context, which
// carries the span.
type Chat struct{ channel.Base }

func (*Chat) Join(context.Context, *channel.Socket, channel.Payload) (any, error) { return nil, nil }

func (*Chat) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	if msg.Event != "shout" {
		return channel.NoReply, channel.ErrUnhandled
	}
	s.Logger().InfoContext(ctx, "shouted")
	return channel.OK(nil), nil
}

// A server whose channels are traced. The client (phoenix.js would do the
// same with socket.channel("room:lobby", {traceparent}) and
// channel.push("shout", {traceparent})) joins in one trace of its own and
// shouts in another; each span continues the client's trace, the event's
// span links to the join's, and the log records carry the trace ids. The spans go to an
// in-memory recorder here; a program registers an exporter (OTLP, say)
// with its TracerProvider instead.
func Example() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	opts := &otelchannel.Options{TracerProvider: tp, Propagators: propagation.TraceContext{}}

	r := channel.NewRouter()
	r.Use(otelchannel.Middleware(opts))
	r.Handle("room:*", func() channel.Channel { return &Chat{} })
	logs := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == otelchannel.SpanIDKey {
				return slog.Attr{} // not the same from run to run
			}
			return a
		},
	})
	srv := channel.NewServer(&channel.Options{
		Router:  r,
		Connect: otelchannel.Connect(nil, opts),
		Logger:  slog.New(otelchannel.LogHandler(logs)),
	})
	mux := http.NewServeMux()
	mux.Handle("/socket/", srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer func() { _ = srv.Close() }()

	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/socket/websocket?vsn=2.0.0&correlation_id=conn-1", nil)
	if err != nil {
		panic(err)
	}
	defer func() { _ = ws.CloseNow() }()
	for _, frame := range []string{
		`["1","1","room:lobby","phx_join",{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}]`,
		`["1","2","room:lobby","shout",{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}]`,
	} {
		_ = ws.Write(ctx, websocket.MessageText, []byte(frame))
		_, _, _ = ws.Read(ctx) // the reply
	}

	ended := spans.Ended()
	for _, s := range ended {
		fmt.Printf("span %q: trace %s, parent %s, %d link(s)\n", s.Name(), s.SpanContext().TraceID(), s.Parent().SpanID(), len(s.Links()))
	}
	fmt.Println("the event links to the join:", ended[1].Links()[0].SpanContext.Equal(ended[0].SpanContext()))
	// Output:
	// level=INFO msg="Channel joined" correlation_id=conn-1 channel=room:* topic=room:lobby trace_id=4bf92f3577b34da6a3ce929d0e0e4736
	// level=INFO msg=shouted correlation_id=conn-1 trace_id=0af7651916cd43dd8448eb211c80319c
	// span "phx_join room:*": trace 4bf92f3577b34da6a3ce929d0e0e4736, parent 00f067aa0ba902b7, 0 link(s)
	// span "shout room:*": trace 0af7651916cd43dd8448eb211c80319c, parent b7ad6b7169203331, 1 link(s)
	// the event links to the join: true
}
