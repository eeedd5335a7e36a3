package otelchannel

import (
	"bytes"
	"context"
	"encoding/json"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pyre-go/pyre/channel"
)

// AssignKey is the connection assign under which Connect keeps the trace
// context of the connect request, as a propagation.MapCarrier (field name
// to value, e.g. "traceparent"). Every channel joined on the connection
// gets it in its Socket.Assigns; Middleware parents a join on it when the
// join params carry no trace context. A Connect callback of the
// application may set it too.
const AssignKey = "otel.trace_context"

// Connect wraps an Options.Connect callback (nil accepts every
// connection) so that the trace context of the connect request becomes
// the parent of the connection's join spans (see AssignKey). The trace
// context is read with the propagator's fields from the request header
// or, when the header has no valid one, from connect params of the same
// names: browsers cannot set WebSocket headers, so phoenix.js clients send
// new Socket("/socket", {params: {traceparent: "00-…"}}).
//
// next is called with a context carrying the extracted trace context, so
// spans it starts (a user lookup) join the client's trace. The assign is
// added after next returns nil, so next may replace info.Assigns.
func Connect(next func(ctx context.Context, info *channel.ConnectInfo) error, opts *Options) func(ctx context.Context, info *channel.ConnectInfo) error {
	cfg := newConfig(opts)
	return func(ctx context.Context, info *channel.ConnectInfo) error {
		c := connectCarrier(ctx, cfg, info)
		if c != nil {
			ctx = cfg.propagator().Extract(ctx, c)
		}
		if next != nil {
			if err := next(ctx, info); err != nil {
				return err
			}
		}
		if c != nil {
			if info.Assigns == nil {
				info.Assigns = make(map[string]any, 1)
			}
			info.Assigns[AssignKey] = c
		}
		return nil
	}
}

// connectCarrier returns the propagator's fields from the header, or from
// the connect params when the header holds no valid span context; nil
// when neither has any field.
func connectCarrier(ctx context.Context, cfg *config, info *channel.ConnectInfo) propagation.MapCarrier {
	prop, fields := cfg.propagator(), cfg.fields()
	var fromHeader propagation.MapCarrier
	for _, f := range fields {
		if v := info.Header.Get(f); v != "" {
			if fromHeader == nil {
				fromHeader = make(propagation.MapCarrier, len(fields))
			}
			fromHeader[f] = v
		}
	}
	if fromHeader != nil && trace.SpanContextFromContext(prop.Extract(ctx, fromHeader)).IsValid() {
		return fromHeader
	}
	var fromParams propagation.MapCarrier
	for _, f := range fields {
		if v, ok := info.Params[f].(string); ok && v != "" {
			if fromParams == nil {
				fromParams = make(propagation.MapCarrier, len(fields))
			}
			fromParams[f] = v
		}
	}
	if fromParams != nil && trace.SpanContextFromContext(prop.Extract(ctx, fromParams)).IsValid() {
		return fromParams
	}
	if fromHeader != nil {
		return fromHeader // baggage alone, say
	}
	return fromParams
}

// extractPayload returns ctx with the trace context found in the top-level
// string fields of a JSON object payload, or ctx itself when there is
// none. The payload is decoded only when it contains a field name.
func extractPayload(ctx context.Context, cfg *config, p channel.Payload) context.Context {
	raw := p.Bytes()
	if p.IsBinary() || len(raw) == 0 {
		return ctx
	}
	fields := cfg.fields()
	found := false
	for _, f := range fields {
		if bytes.Contains(raw, []byte(f)) {
			found = true
			break
		}
	}
	if !found {
		return ctx
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return ctx
	}
	c := make(propagation.MapCarrier, len(fields))
	for _, f := range fields {
		var v string
		if m, ok := obj[f]; ok && json.Unmarshal(m, &v) == nil && v != "" {
			c[f] = v
		}
	}
	if len(c) == 0 {
		return ctx
	}
	return cfg.propagator().Extract(ctx, c)
}
