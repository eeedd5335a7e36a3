package otelchannel_test

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/otelchannel"
)

const (
	clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan  = "00f067aa0ba902b7"
	headerTrace = "0af7651916cd43dd8448eb211c80319c"
	headerSpan  = "b7ad6b7169203331"
)

// attrs returns a span's attributes by key.
func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// assertParent checks that span is a child of the remote span traceID/spanID.
func assertParent(t *testing.T, s sdktrace.ReadOnlySpan, traceID, spanID string) {
	t.Helper()
	assert.Equal(t, traceID, s.SpanContext().TraceID().String(), "trace id")
	assert.Equal(t, spanID, s.Parent().SpanID().String(), "parent span id")
	assert.True(t, s.Parent().IsRemote(), "the parent came from the client")
}

func TestJoinSpanAttributesAndParentFromJoinParams(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "correlation_id=corr-42", nil)
	_, status := c.Join("room:lobby", map[string]any{"traceparent": traceparent(clientTrace, clientSpan)})
	require.Equal(t, "ok", status)

	s := e.span(t, "phx_join room:*")
	assertParent(t, s, clientTrace, clientSpan)
	assert.Equal(t, trace.SpanKindServer, s.SpanKind())
	assert.Equal(t, codes.Unset, s.Status().Code)
	assert.Equal(t, otelchannel.ScopeName, s.InstrumentationScope().Name)
	a := attrs(s)
	assert.Equal(t, "phoenix", a[otelchannel.SystemKey].AsString())
	assert.Equal(t, "process", a[otelchannel.OperationTypeKey].AsString())
	assert.Equal(t, "phx_join", a[otelchannel.OperationNameKey].AsString())
	assert.Equal(t, "room:*", a[otelchannel.DestinationTemplateKey].AsString())
	assert.Equal(t, "room:lobby", a[otelchannel.DestinationNameKey].AsString())
	assert.Equal(t, "corr-42", a[otelchannel.CorrelationIDKey].AsString())
	assert.Equal(t, "ok", a[otelchannel.ReplyStatusKey].AsString())
	assert.NotContains(t, a, otelchannel.ErrorTypeKey)
}

func TestJoinSpanParentFromConnectHeader(t *testing.T) {
	e := newEndpoint(t, nil)
	h := http.Header{"Traceparent": {traceparent(headerTrace, headerSpan)}}
	c := e.dial(t, "", h)
	_, status := c.Join("room:a", nil)
	require.Equal(t, "ok", status)
	assertParent(t, e.span(t, "phx_join room:*"), headerTrace, headerSpan)

	// Join params win over the connection's trace context.
	e.spans.Reset()
	_, status = c.Join("room:b", map[string]any{"traceparent": traceparent(clientTrace, clientSpan)})
	require.Equal(t, "ok", status)
	assertParent(t, e.span(t, "phx_join room:*"), clientTrace, clientSpan)
}

func TestJoinSpanParentFromConnectParams(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "traceparent="+traceparent(headerTrace, headerSpan), nil)
	_, status := c.Join("room:a", nil)
	require.Equal(t, "ok", status)
	assertParent(t, e.span(t, "phx_join room:*"), headerTrace, headerSpan)
}

func TestConnectKeepsTheTraceContextInAssigns(t *testing.T) {
	var parent trace.SpanContext
	connect := otelchannel.Connect(func(ctx context.Context, info *channel.ConnectInfo) error {
		parent = trace.SpanContextFromContext(ctx)
		info.Assigns = map[string]any{"user_id": 7} // replacing Assigns keeps the trace context
		return nil
	}, &otelchannel.Options{Propagators: propagation.TraceContext{}})
	info := &channel.ConnectInfo{Header: http.Header{"Traceparent": {traceparent(headerTrace, headerSpan)}}}
	require.NoError(t, connect(context.Background(), info))
	assert.Equal(t, headerTrace, parent.TraceID().String(), "Connect's callback runs in the client's trace")
	assert.True(t, parent.IsRemote())
	assert.Equal(t, 7, info.Assigns["user_id"])
	assert.Equal(t, propagation.MapCarrier{"traceparent": traceparent(headerTrace, headerSpan)}, info.Assigns[otelchannel.AssignKey])

	// Without trace context nothing is assigned.
	info = &channel.ConnectInfo{Header: http.Header{}}
	require.NoError(t, connect(context.Background(), info))
	assert.NotContains(t, info.Assigns, otelchannel.AssignKey)
}

func TestConnectRefusalIsPassedOn(t *testing.T) {
	refused := &channel.HTTPError{Status: http.StatusUnauthorized}
	connect := otelchannel.Connect(func(context.Context, *channel.ConnectInfo) error { return refused }, nil)
	info := &channel.ConnectInfo{Header: http.Header{"Traceparent": {traceparent(headerTrace, headerSpan)}}}
	assert.Same(t, refused, connect(context.Background(), info))
	assert.Nil(t, info.Assigns, "nothing assigned to a refused connection")
}

// By default the global propagator is used as it is when a message
// arrives, not as it was when the hook was made.
func TestGlobalPropagatorSetLater(t *testing.T) {
	e := serve(t, &otelchannel.Options{})
	c := e.dial(t, "", nil)
	joinRef, _ := c.Join("room:a", map[string]any{"traceparent": traceparent(clientTrace, clientSpan)})
	assert.False(t, e.span(t, "phx_join room:*").Parent().IsValid(), "otel's default propagator reads nothing")

	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator()) })
	require.Equal(t, "ok", c.Reply(c.Push(joinRef, "room:a", "ok", map[string]any{"traceparent": traceparent(headerTrace, headerSpan)})))
	assertParent(t, e.span(t, "ok room:*"), headerTrace, headerSpan)
}

func TestJoinWithoutTraceContextStartsATrace(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "", nil)
	_, status := c.Join("room:a", map[string]any{"traceparent": "not a traceparent"})
	require.Equal(t, "ok", status)
	s := e.span(t, "phx_join room:*")
	assert.False(t, s.Parent().IsValid(), "a root span")
	assert.True(t, s.SpanContext().IsValid())
}

func TestRefusedJoinIsAnErrorReplyNotAFailure(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "", nil)
	_, status := c.Join("room:a", map[string]any{"refuse": true})
	require.Equal(t, "error", status)
	s := e.span(t, "phx_join room:*")
	assert.Equal(t, "error", attrs(s)[otelchannel.ReplyStatusKey].AsString())
	assert.Equal(t, codes.Unset, s.Status().Code)
}

func TestCrashedJoinIsAFailure(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "", nil)
	_, status := c.Join("crash:a", nil)
	require.Equal(t, "error", status)
	s := e.span(t, "phx_join crash:*")
	a := attrs(s)
	assert.Equal(t, "error", a[otelchannel.ReplyStatusKey].AsString())
	assert.Equal(t, "panic", a[otelchannel.ErrorTypeKey].AsString())
	assert.Equal(t, codes.Error, s.Status().Code)
	assert.Contains(t, s.Status().Description, "join exploded")
}

func TestEventSpans(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "correlation_id=corr-7", nil)
	joinRef, status := c.Join("room:lobby", nil)
	require.Equal(t, "ok", status)
	join := e.span(t, "phx_join room:*")

	for _, tc := range []struct {
		event       string
		reply       string // "" for none
		code        codes.Code
		errorType   string
		description string
	}{
		{event: "ok", reply: "ok", code: codes.Unset},
		{event: "error", reply: "error", code: codes.Unset},
		{event: "quiet", code: codes.Unset},
		{event: "crash", code: codes.Error, errorType: "panic", description: "room exploded"},
	} {
		t.Run(tc.event, func(t *testing.T) {
			ref := c.Push(joinRef, "room:lobby", tc.event, nil)
			if tc.reply != "" {
				require.Equal(t, tc.reply, c.Reply(ref))
			}
			if tc.event == "crash" {
				c.Await("room:lobby", "phx_error") // the runtime crashed the channel as ever
			}
			if tc.event == "quiet" {
				require.Equal(t, "ok", c.Reply(c.Push(joinRef, "room:lobby", "ok", nil)), "the next event went through")
			}
			s := e.span(t, tc.event+" room:*")
			a := attrs(s)
			assert.Equal(t, tc.event, a[otelchannel.OperationNameKey].AsString())
			assert.Equal(t, "room:lobby", a[otelchannel.DestinationNameKey].AsString())
			assert.Equal(t, "corr-7", a[otelchannel.CorrelationIDKey].AsString())
			if tc.reply != "" {
				assert.Equal(t, tc.reply, a[otelchannel.ReplyStatusKey].AsString())
			} else {
				assert.NotContains(t, a, otelchannel.ReplyStatusKey)
			}
			assert.Equal(t, tc.code, s.Status().Code)
			assert.Contains(t, s.Status().Description, tc.description)
			if tc.errorType != "" {
				assert.Equal(t, tc.errorType, a[otelchannel.ErrorTypeKey].AsString())
				require.Len(t, s.Events(), 1)
				ev := s.Events()[0]
				assert.Equal(t, "exception", ev.Name)
				evAttrs := map[attribute.Key]string{}
				for _, kv := range ev.Attributes {
					evAttrs[kv.Key] = kv.Value.Emit()
				}
				assert.Contains(t, evAttrs["exception.message"], "room exploded")
				assert.Contains(t, evAttrs["exception.stacktrace"], "HandleIn", "the stack reaches the panicking handler")
			}
			// Each event starts its own trace, linked to the join.
			assert.False(t, s.Parent().IsValid())
			assert.NotEqual(t, join.SpanContext().TraceID(), s.SpanContext().TraceID())
			require.Len(t, s.Links(), 1)
			assert.Equal(t, join.SpanContext(), s.Links()[0].SpanContext)
		})
	}
}

func TestEventErrorsAsTheRuntimeTreatsThem(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "", nil)

	joinRef, _ := c.Join("room:fail", nil)
	c.Push(joinRef, "room:fail", "fail", nil)
	c.Await("room:fail", "phx_error")
	s := e.span(t, "fail room:*")
	assert.Equal(t, codes.Error, s.Status().Code)
	assert.Equal(t, errFail.Error(), s.Status().Description)
	assert.Equal(t, "*errors.errorString", attrs(s)[otelchannel.ErrorTypeKey].AsString())

	joinRef, _ = c.Join("room:stop", nil)
	require.Equal(t, "ok", c.Reply(c.Push(joinRef, "room:stop", "stop", nil)))
	c.Await("room:stop", "phx_close")
	s = e.span(t, "stop room:*")
	assert.Equal(t, codes.Unset, s.Status().Code, "a stop is no failure")
	assert.NotContains(t, attrs(s), otelchannel.ErrorTypeKey)
}

func TestUnhandledEventIsMarked(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "", nil)
	joinRef, _ := c.Join("bare:a", nil)
	c.Push(joinRef, "bare:a", "unknown", nil)
	// Nothing is replied; a later leave is answered after the event was handled.
	require.Equal(t, "ok", c.Reply(c.Push(joinRef, "bare:a", channel.EventLeave, nil)))
	s := e.span(t, "unknown bare:*")
	a := attrs(s)
	assert.True(t, a[otelchannel.UnhandledKey].AsBool())
	assert.NotContains(t, a, otelchannel.ReplyStatusKey)
	assert.Equal(t, codes.Unset, s.Status().Code, "the runtime only logs it")
}

func TestEventParentFromPayload(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "", nil)
	joinRef, _ := c.Join("room:a", nil)
	ref := c.Push(joinRef, "room:a", "ok", map[string]any{"traceparent": traceparent(clientTrace, clientSpan), "body": "hi"})
	require.Equal(t, "ok", c.Reply(ref))
	s := e.span(t, "ok room:*")
	assertParent(t, s, clientTrace, clientSpan)
	require.Len(t, s.Links(), 1, "still linked to the join")
}

func TestLogsCarryTheTraceID(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "", nil)
	joinRef, _ := c.Join("room:a", map[string]any{"traceparent": traceparent(clientTrace, clientSpan)})
	require.Equal(t, "ok", c.Reply(c.Push(joinRef, "room:a", "log", nil)))

	s := e.span(t, "log room:*")
	recs := e.logs.records(t, "handled in a span")
	require.Len(t, recs, 1)
	assert.Equal(t, s.SpanContext().TraceID().String(), recs[0][otelchannel.TraceIDKey])
	assert.Equal(t, s.SpanContext().SpanID().String(), recs[0][otelchannel.SpanIDKey])
	assert.NotEmpty(t, recs[0]["correlation_id"])

	// Base's Correlation hook logs the join inside the join span.
	joined := e.logs.records(t, "Channel joined")
	require.Len(t, joined, 1)
	assert.Equal(t, clientTrace, joined[0][otelchannel.TraceIDKey])
	assert.Equal(t, e.span(t, "phx_join room:*").SpanContext().SpanID().String(), joined[0][otelchannel.SpanIDKey])
}

func TestFilterSkipsEvents(t *testing.T) {
	e := newEndpoint(t, &otelchannel.Options{
		Filter: func(_ context.Context, _ *channel.Socket, msg *channel.Message) bool { return msg.Event != "ok" },
	})
	c := e.dial(t, "", nil)
	joinRef, _ := c.Join("room:a", nil)
	require.Equal(t, "ok", c.Reply(c.Push(joinRef, "room:a", "ok", nil)))
	require.Equal(t, "error", c.Reply(c.Push(joinRef, "room:a", "error", nil)))
	assert.ElementsMatch(t, []string{"phx_join room:*", "error room:*"}, e.spanNames())
}

// Package channel must not compile OpenTelemetry in: only importers of
// otelchannel pay for it.
func TestChannelDoesNotDependOnOpenTelemetry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go command runs this test and must be on PATH")
	out, err := exec.Command(goTool, "list", "-deps", "github.com/pyre-go/pyre/channel").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "github.com/pyre-go/pyre/correlation", "the list is complete")
	for _, dep := range strings.Fields(string(out)) {
		assert.False(t, strings.HasPrefix(dep, "go.opentelemetry.io/"), "channel imports %s", dep)
	}
}

// Channels without hooks of their own share the router's hook chain (the
// runtime builds it once per server), so the join span an event links to
// must be kept per channel, not in the hook: with two such channels joined,
// each event links to its own channel's join.
func TestEventLinksToItsOwnJoinWithASharedChain(t *testing.T) {
	e := newEndpoint(t, nil)
	c := e.dial(t, "", nil)
	refA, status := c.Join("bare:a", nil)
	require.Equal(t, "ok", status)
	refB, status := c.Join("bare:b", nil)
	require.Equal(t, "ok", status)
	c.Push(refA, "bare:a", "x", nil)
	c.Push(refB, "bare:b", "x", nil)

	byTopic := func(name string) map[string]sdktrace.ReadOnlySpan {
		out := map[string]sdktrace.ReadOnlySpan{}
		for _, s := range e.spans.Ended() {
			if s.Name() != name {
				continue
			}
			for _, a := range s.Attributes() {
				if a.Key == otelchannel.DestinationNameKey {
					out[a.Value.AsString()] = s
				}
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(byTopic("x bare:*")) == 2 }, 5e9, 1e6)
	joins, events := byTopic("phx_join bare:*"), byTopic("x bare:*")
	for _, topic := range []string{"bare:a", "bare:b"} {
		links := events[topic].Links()
		require.Len(t, links, 1, topic)
		assert.Equal(t, joins[topic].SpanContext().SpanID(), links[0].SpanContext.SpanID(), topic)
	}
}
