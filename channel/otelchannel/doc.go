// Package otelchannel traces Phoenix channels with OpenTelemetry: a span
// for every join and every client event a channel handles, parented on
// the trace context the client sends, and log records that carry the
// trace and span ids.
//
// It is opt-in: package channel does not import OpenTelemetry; only
// programs that import this package compile it in. The name follows the
// OpenTelemetry contrib instrumentation packages (otelhttp, otelgrpc):
// "otel" plus the instrumented package.
//
// # Wiring
//
// Three pieces, each optional:
//
//	opts := &otelchannel.Options{} // global TracerProvider and propagator
//	router.Use(otelchannel.Middleware(opts))           // spans
//	srv := channel.NewServer(&channel.Options{
//		Router:  router,
//		Connect: otelchannel.Connect(authorize, opts),        // traceparent of the connect request
//		Logger:  slog.New(otelchannel.LogHandler(handler)), // trace_id, span_id in logs
//	})
//
// Middleware is a router hook, so it wraps every channel the router makes,
// outside the channel's own hooks (Base's correlation, unhandled-event
// and ping hooks run inside the span). The context it passes on carries
// the span: a channel's Join and HandleIn get it, spans they start are
// children of it, and records they log with it carry its ids when the
// server's logger goes through LogHandler.
//
// # Spans
//
// A join makes a span named "phx_join <pattern>", an event "<event>
// <pattern>", where pattern is the router pattern that matched the topic
// ("room:*"), so span names stay few however many topics there are. The
// span kind is server: the client asked and the server answers. Spans
// carry these attributes (the messaging.* names are OpenTelemetry's
// messaging semantic conventions; the pyre.* names are this package's):
//
//	messaging.system                "phoenix"
//	messaging.operation.type        "process"
//	messaging.operation.name        the event: "phx_join", "new_msg"
//	messaging.destination.template  the router pattern: "room:*"
//	messaging.destination.name      the topic: "room:lobby"
//	pyre.correlation_id             the connection's correlation id
//	pyre.reply.status               the reply status the client gets:
//	                                "ok", "error" or another word; absent
//	                                when nothing is replied (no reply, a
//	                                crash of an event)
//	pyre.unhandled                  true when the handler left the event
//	                                unhandled (channel.ErrUnhandled)
//	error.type                      on failures: "panic", or the Go type
//	                                of the error
//
// A handler that returns an error the runtime treats as a crash (any
// error but channel.ErrStop and channel.ErrUnhandled, and any error from a
// join) or that panics sets the span status to Error and records the error
// as an exception event; a panic is recorded with its stack, the span is
// ended and the panic goes on to the runtime, which handles it as it would
// without tracing. An error reply (a refused join, an event answered with
// channel.ErrorReply) is an answer, not a server failure: the span status
// stays unset and pyre.reply.status says "error", as an HTTP server span
// does for a 4xx response.
//
// # Parents
//
// The parent of a join span is the trace context in the join params
// (phoenix.js: socket.channel(topic, {traceparent: "00-…"})); failing
// that, the one Connect kept from the connect request (its header, or a
// connect param when the client cannot set headers, as browsers cannot
// for WebSockets); failing that, the span starts a new trace. The parent of
// an event span is the trace context in the event's payload, if there is
// one; otherwise the event starts a new trace. Event spans link to the
// span of their channel's join, so that a trace viewer leads from an event
// to the join without putting a long-lived channel's events in one trace.
//
// Trace contexts are read with Options.Propagators (by default the global
// propagator, otel.GetTextMapPropagator, which reads nothing until the
// program sets one, as for otelhttp: otel.SetTextMapPropagator(
// propagation.TraceContext{}) or a composite with propagation.Baggage{})
// from top-level string fields of
// the params or payload named as the propagator's fields ("traceparent",
// "tracestate", "baggage" for the W3C propagators). A payload is decoded
// for this only when its bytes contain one of those names, so events
// without trace context cost no decoding.
package otelchannel
