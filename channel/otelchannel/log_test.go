package otelchannel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"testing/slogtest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/pyre-go/pyre/channel/otelchannel"
)

// Records without a span context pass through unchanged: the wrapper
// behaves as a handler should.
func TestLogHandlerIsAHandler(t *testing.T) {
	var buf bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		buf.Reset()
		return otelchannel.LogHandler(slog.NewJSONHandler(&buf, nil))
	}, func(t *testing.T) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
		return m
	})
}

func spanContext(t *testing.T) context.Context {
	t.Helper()
	tid, err := trace.TraceIDFromHex(clientTrace)
	require.NoError(t, err)
	sid, err := trace.SpanIDFromHex(clientSpan)
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return trace.ContextWithSpanContext(context.Background(), sc)
}

func logJSON(t *testing.T, log func(l *slog.Logger)) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log(slog.New(otelchannel.LogHandler(slog.NewJSONHandler(&buf, nil))))
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m), "%s", buf.Bytes())
	return m
}

func TestLogHandlerAddsTheIDsAtTheTopLevel(t *testing.T) {
	ctx := spanContext(t)

	m := logJSON(t, func(l *slog.Logger) { l.With("a", 1).InfoContext(ctx, "plain", "b", 2) })
	assert.Equal(t, clientTrace, m[otelchannel.TraceIDKey])
	assert.Equal(t, clientSpan, m[otelchannel.SpanIDKey])
	assert.EqualValues(t, 1, m["a"])
	assert.EqualValues(t, 2, m["b"])

	m = logJSON(t, func(l *slog.Logger) { l.With("a", 1).WithGroup("g").With("c", 3).InfoContext(ctx, "grouped", "b", 2) })
	assert.Equal(t, clientTrace, m[otelchannel.TraceIDKey], "outside the group")
	assert.Equal(t, clientSpan, m[otelchannel.SpanIDKey])
	assert.EqualValues(t, 1, m["a"])
	assert.Equal(t, map[string]any{"c": 3.0, "b": 2.0}, m["g"])

	m = logJSON(t, func(l *slog.Logger) { l.WithGroup("g").InfoContext(context.Background(), "untraced", "b", 2) })
	assert.NotContains(t, m, otelchannel.TraceIDKey)
	assert.Equal(t, map[string]any{"b": 2.0}, m["g"])
}

func TestLogHandlerPanicsOnNil(t *testing.T) {
	assert.Panics(t, func() { otelchannel.LogHandler(nil) })
}
