// Package correlation generates request-tracing ids, carries them in a
// [context.Context] and adds them to every log record.
//
// A correlation id ties together the log lines produced on behalf of one
// connection or request. It is for grepping logs, not for security: ids are
// random but carry no authority.
//
// The three entry points are:
//
//   - [New] / [NewN], which make a fresh lowercase-hex id of 16 or n
//     characters (pyre's reference server, examples/landale, gives each
//     WebSocket connection a NewN(8) id);
//   - [WithID] / [FromContext] / [ID], which carry an id in a context;
//   - [NewHandler], a [log/slog.Handler] wrapper that adds
//     correlation_id=<id> to every record logged with such a context, and
//     [Middleware], which gives every HTTP request an id (taken from the
//     X-Correlation-ID request header when it is [Valid]).
//
// NewHandler is built on [NewContextHandler], which adds whatever
// attributes a function reads from the record's context, always at the top
// level; otelchannel.LogHandler uses it for trace and span ids.
//
// Everything in this package is safe for concurrent use.
package correlation
