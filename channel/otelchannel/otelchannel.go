package otelchannel

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pyre-go/pyre/channel"
)

// ScopeName is the instrumentation scope of the tracer the spans come from.
const ScopeName = "github.com/pyre-go/pyre/channel/otelchannel"

// Attribute keys of the spans (see the package doc).
const (
	SystemKey              = attribute.Key("messaging.system")
	OperationTypeKey       = attribute.Key("messaging.operation.type")
	OperationNameKey       = attribute.Key("messaging.operation.name")
	DestinationTemplateKey = attribute.Key("messaging.destination.template")
	DestinationNameKey     = attribute.Key("messaging.destination.name")
	CorrelationIDKey       = attribute.Key("pyre.correlation_id")
	ReplyStatusKey         = attribute.Key("pyre.reply.status")
	UnhandledKey           = attribute.Key("pyre.unhandled")
	ErrorTypeKey           = attribute.Key("error.type")
)

// System is the value of messaging.system on every span.
const System = "phoenix"

// Options configure Middleware and Connect. The zero value of every field
// means its default; a nil *Options is all defaults.
type Options struct {
	// TracerProvider makes the tracer. Defaults to otel.GetTracerProvider()
	// as it is when Middleware is called; until the program first calls
	// otel.SetTracerProvider that is otel's default, which forwards to the
	// first provider set.
	TracerProvider trace.TracerProvider
	// Propagators read the trace context from join params, event payloads
	// and the connect request. Defaults to otel.GetTextMapPropagator() as
	// it is when each message arrives, which reads nothing until the
	// program sets one with otel.SetTextMapPropagator.
	Propagators propagation.TextMapPropagator
	// Filter, if set, is asked before each join and event: false handles it
	// without a span (a keep-alive "ping", say). The context it is given
	// is the handler's. Defaults to tracing everything.
	Filter func(ctx context.Context, s *channel.Socket, msg *channel.Message) bool
}

// config is Options with defaults applied.
type config struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator // nil: the global one, looked up at each use
	filter func(ctx context.Context, s *channel.Socket, msg *channel.Message) bool
	fixed  []string // the fields of prop, asked once
}

// propagator returns the propagator to use now.
func (c *config) propagator() propagation.TextMapPropagator {
	if c.prop != nil {
		return c.prop
	}
	return otel.GetTextMapPropagator()
}

// fields returns the propagator's carrier keys.
func (c *config) fields() []string {
	if c.prop != nil {
		return c.fixed
	}
	return otel.GetTextMapPropagator().Fields()
}

func newConfig(opts *Options) *config {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	var fixed []string
	if o.Propagators != nil {
		fixed = o.Propagators.Fields()
	}
	return &config{
		tracer: o.TracerProvider.Tracer(ScopeName),
		prop:   o.Propagators,
		filter: o.Filter,
		fixed:  fixed,
	}
}

// Middleware returns a router hook that traces every join and client event
// of the router's channels (install it with Router.Use; as a channel's own
// hook it traces that channel only). See the package doc for the spans.
func Middleware(opts *Options) channel.Middleware {
	cfg := newConfig(opts)
	return func(next channel.Handler) channel.Handler {
		return &handler{next: next, cfg: cfg}
	}
}

// handler traces the channels whose hook chain it is in. The runtime may
// share one chain between channels (it does for channels without hooks of
// their own), so the join span an event links to is kept in the channel's
// assigns under joinSpanKey, not here; a channel runs its join and then its
// events one at a time, so that needs no lock.
type handler struct {
	next channel.Handler
	cfg  *config
}

// joinSpanKey is the assign holding the span context of the channel's
// join span (a trace.SpanContext), linked from its event spans.
const joinSpanKey = "otelchannel.join_span"

// Handle implements channel.Handler.
func (h *handler) Handle(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	if h.cfg.filter != nil && !h.cfg.filter(ctx, s, msg) {
		return h.next.Handle(ctx, s, msg)
	}
	isJoin := msg.Event == channel.EventJoin
	parent := extractPayload(ctx, h.cfg, msg.Payload)
	if isJoin && !trace.SpanContextFromContext(parent).IsValid() {
		if c, ok := s.Assigns()[AssignKey].(propagation.MapCarrier); ok {
			parent = h.cfg.propagator().Extract(ctx, c)
		}
	}
	start := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			SystemKey.String(System),
			OperationTypeKey.String("process"),
			OperationNameKey.String(msg.Event),
			DestinationTemplateKey.String(s.Pattern()),
			DestinationNameKey.String(s.Topic()),
			CorrelationIDKey.String(s.CorrelationID()),
		),
	}
	if join, ok := s.Assigns()[joinSpanKey].(trace.SpanContext); ok && !isJoin && join.IsValid() {
		start = append(start, trace.WithLinks(trace.Link{SpanContext: join}))
	}
	ctx, span := h.cfg.tracer.Start(parent, msg.Event+" "+s.Pattern(), start...)
	if isJoin {
		s.Assign(joinSpanKey, span.SpanContext())
	}
	returned := false
	defer func() {
		if returned {
			return
		}
		// The handler panicked (or called runtime.Goexit): end the span
		// and let the panic go on to the runtime, which recovers it.
		v := recover()
		if isJoin {
			span.SetAttributes(ReplyStatusKey.String("error")) // "join crashed"
		}
		span.SetAttributes(ErrorTypeKey.String("panic"))
		if v != nil {
			pe := &channel.PanicError{Op: "channel: handler", Value: v}
			span.RecordError(pe, trace.WithStackTrace(true))
			span.SetStatus(codes.Error, pe.Error())
		} else {
			span.SetStatus(codes.Error, "handler did not return")
		}
		span.End()
		if v != nil {
			panic(v)
		}
	}()
	r, err := h.next.Handle(ctx, s, msg)
	returned = true
	record(span, isJoin, r, err)
	span.End()
	return r, err
}

// record sets the outcome of a handler that returned on its span, as the
// runtime will treat it (see channel.Channel).
func record(span trace.Span, isJoin bool, r channel.Reply, err error) {
	status := r.Status
	if isJoin {
		switch {
		case err != nil:
			status = "error" // "join crashed"
		case r.IsZero():
			status = "ok"
		}
	}
	if status != "" {
		span.SetAttributes(ReplyStatusKey.String(status))
	}
	if err == nil {
		return
	}
	var pe *channel.PanicError
	panicked := errors.As(err, &pe)
	switch {
	case !isJoin && !panicked && errors.Is(err, channel.ErrStop):
		// A normal stop: phx_close, no failure.
	case !isJoin && !panicked && errors.Is(err, channel.ErrUnhandled):
		span.SetAttributes(UnhandledKey.Bool(true))
	default:
		typ := fmt.Sprintf("%T", err)
		if panicked {
			typ = "panic"
		}
		span.SetAttributes(ErrorTypeKey.String(typ))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}
