package channel

import (
	"context"
)

// Channel is one joined topic on one connection: Phoenix's channel module,
// with one value per join. The Router's factory makes a fresh value for every
// join, so fields hold per-join state.
//
// The runtime calls the methods of one Channel value one at a time, never
// concurrently, in the order the events arrived (the channel's mailbox). A
// method may block; while it runs, other events for the same channel wait,
// and other channels of the connection go on. Push, Reply and Broadcast on
// the Socket are safe from any goroutine.
//
// Join and HandleIn are all a channel must write; like Phoenix's optional
// callbacks, the rest are optional interfaces the runtime looks for once per
// join: OutHandler (handle_out/3), InfoHandler (handle_info/2), Terminator
// (terminate/2), Interceptor (intercept/1) and Hooker. Embed Base for the
// default hooks (ping, correlation id, unhandled-event logging) and a
// HandleInfo that logs what the channel does not handle.
type Channel interface {
	// Join is called when a client joins a topic that routes to this channel.
	// It returns the join reply's response (nil for {}), or an error: a
	// *JoinError (see Refuse) refuses the join with its response; any other
	// error or a panic refuses it with {"reason":"join crashed"}.
	// Pushes made during Join are sent after the join reply.
	Join(ctx context.Context, s *Socket, params Payload) (any, error)

	// HandleIn handles an event pushed by the client. The Reply is sent to the
	// client (NoReply sends nothing). A returned error ends the channel: ErrStop
	// (or an error wrapping it) closes it normally with phx_close, ErrUnhandled
	// is ignored after logging, any other error crashes it like a panic: the
	// client gets phx_error and rejoins. A reply returned with an error is sent
	// first.
	HandleIn(ctx context.Context, s *Socket, msg *Message) (Reply, error)
}

// Interceptor is implemented by channels that intercept outgoing
// broadcasts, like Phoenix's intercept/1: broadcasts of the listed events
// leave the fast path and go through the channel's mailbox to its
// OutHandler. Without an OutHandler they are pushed unchanged.
type Interceptor interface {
	// Intercepts lists the broadcast events routed to HandleOut.
	Intercepts() []string
}

// OutHandler is implemented by channels that rewrite or filter the
// broadcasts they intercept (see Interceptor), like Phoenix's handle_out/3.
// HandleOut typically pushes a per-client variant with s.Push, or drops the
// broadcast by returning nil. A returned error ends the channel as for
// HandleIn.
type OutHandler interface {
	HandleOut(ctx context.Context, s *Socket, msg *Message) error
}

// InfoHandler is implemented by channels that receive messages from outside
// the client: Socket.Send, PubSub topics subscribed with Base.SubscribeTopics
// (delivered as *pubsub.Message). Base implements it by logging the message
// as unhandled; without one, the runtime logs it. A returned error ends the
// channel as for HandleIn.
type InfoHandler interface {
	HandleInfo(ctx context.Context, s *Socket, info any) error
}

// Terminator is implemented by channels that clean up when they end, like
// Phoenix's terminate/2. Terminate is called once, for whatever reason the
// channel ended: the client left (ErrLeft), the connection closed
// (ErrConnClosed), a duplicate join (ErrDuplicateJoin), a stop or error
// returned by a handler, or a panic (*PanicError). A join that was refused
// never terminates.
type Terminator interface {
	Terminate(ctx context.Context, s *Socket, reason error)
}

// Hooker is implemented by channels that wrap their handling in hooks.
// Base returns DefaultHooks(); override Hooks to add or replace hooks (see
// ExampleHooker, which adds a quota):
//
//	func (e *Echo) Hooks() []channel.Middleware {
//		return append(e.Base.Hooks(), Quota(1))
//	}
type Hooker interface {
	Hooks() []Middleware
}

// Handler handles one inbound message of a channel: the phx_join (Event
// EventJoin, Reply status "ok" means joined) and every later client push.
// Hooks are written against it.
type Handler interface {
	Handle(ctx context.Context, s *Socket, msg *Message) (Reply, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, s *Socket, msg *Message) (Reply, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, s *Socket, msg *Message) (Reply, error) {
	return f(ctx, s, msg)
}

// Middleware wraps a Handler, as net/http middleware wraps an http.Handler.
// A hook sees joins (msg.Event == EventJoin) and events, and may answer
// without calling next (auth, rate limits), observe the result (metrics,
// logging) or change it. Each joined channel gets a chain of its own: a
// Middleware is called once per join, so the Handler it returns may keep
// state for that channel in its closure.
type Middleware func(next Handler) Handler

// chain wraps h in hooks, the first one outermost.
func chain(h Handler, hooks []Middleware) Handler {
	for i := len(hooks) - 1; i >= 0; i-- {
		if hooks[i] != nil {
			h = hooks[i](h)
		}
	}
	return h
}
