package channel

import (
	"context"
	"log/slog"

	"github.com/pyre-go/pyre/pubsub"
)

// Socket is a channel's handle on its join: Phoenix's socket struct inside a
// channel. It names the topic and join_ref, holds the channel's assigns, and
// sends to the client. Push, Reply, Broadcast and Send are safe for
// concurrent use; Assign and Assigns belong to the channel's own callbacks.
type Socket struct {
	p       *proc
	assigns map[string]any
}

// Topic returns the joined topic.
func (s *Socket) Topic() string { return s.p.topic }

// JoinRef returns the join_ref of this join.
func (s *Socket) JoinRef() string { return s.p.joinRef }

// Pattern returns the router pattern that matched the topic.
func (s *Socket) Pattern() string { return s.p.pattern }

// Conn returns the connection the channel is joined on.
func (s *Socket) Conn() *Conn { return s.p.conn }

// ID returns an id unique across nodes for this join, used as the sender
// identity of BroadcastFrom.
func (s *Socket) ID() string { return s.p.id }

// CorrelationID returns the connection's correlation id, shared by all
// channels joined on it.
func (s *Socket) CorrelationID() string { return s.p.conn.info.CorrelationID }

// Context returns a context that ends when the channel terminates. It
// carries the correlation id.
func (s *Socket) Context() context.Context { return s.p.ctx }

// Logger returns a logger whose records carry the correlation id.
func (s *Socket) Logger() *slog.Logger { return s.p.conn.log }

// Assigns returns the channel's assigns, seeded from the connection's at
// join. It may be nil when there are none.
func (s *Socket) Assigns() map[string]any { return s.assigns }

// Assign sets an assign.
func (s *Socket) Assign(key string, value any) {
	if s.assigns == nil {
		s.assigns = make(map[string]any)
	}
	s.assigns[key] = value
}

// Push sends event with payload to this client: [join_ref, null, topic,
// event, payload]. payload is encoded with encoding/json (nil is {}), a
// json.RawMessage or Payload is sent as it is, and a Binary is sent as a
// binary frame. Pushes made during Join are sent after the join reply. Push
// returns ErrClosed after the channel terminated.
func (s *Socket) Push(event string, payload any) error {
	b, bin, err := encodePayload(payload)
	if err != nil {
		return err
	}
	f := &Frame{f: frame{kind: kindPush, binary: bin, joinRef: s.p.joinRef, topic: s.p.topic, event: event, payload: b}}
	p := s.p
	switch p.state.Load() {
	case procDead:
		return ErrClosed
	case procJoining:
		p.mu.Lock()
		if p.state.Load() == procJoining {
			p.pending = append(p.pending, f)
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
	}
	p.conn.send(f)
	return nil
}

// Reply answers the client push with ref. Handlers usually return their
// Reply; Reply is for answering later (asynchronously, from another
// goroutine) or more than once.
func (s *Socket) Reply(ref string, r Reply) error {
	if s.p.state.Load() == procDead {
		return ErrClosed
	}
	s.p.conn.sendReply(s.p.joinRef, ref, s.p.topic, r)
	return nil
}

// Broadcast sends event with payload to every client joined to the topic,
// on every node, including this one. See Push for payload encoding.
func (s *Socket) Broadcast(ctx context.Context, event string, payload any) error {
	return s.p.conn.srv.broadcast(ctx, s.p.topic, event, payload, "")
}

// BroadcastFrom is Broadcast except that this channel's own client does not
// receive it (another connection of the same user does).
func (s *Socket) BroadcastFrom(ctx context.Context, event string, payload any) error {
	return s.p.conn.srv.broadcast(ctx, s.p.topic, event, payload, s.p.id)
}

// BroadcastTo broadcasts on another topic, like Endpoint.broadcast.
func (s *Socket) BroadcastTo(ctx context.Context, topic, event string, payload any) error {
	return s.p.conn.srv.broadcast(ctx, topic, event, payload, "")
}

// Send queues info for the channel's HandleInfo, like send(self(), msg) in
// Elixir. It does not block; it reports false if the channel is gone or its
// mailbox is full (the info is dropped and logged).
func (s *Socket) Send(info any) bool {
	return s.p.enqueueNoWait(mail{kind: mailInfo, info: info}, "info")
}

// AfterJoin runs fn on the channel's mailbox after the join reply has been
// sent: the place for initial-state pushes. Called outside Join, fn is
// queued like any other mail.
func (s *Socket) AfterJoin(fn func(ctx context.Context)) {
	p := s.p
	p.mu.Lock()
	if p.state.Load() == procJoining {
		p.afterJoin = append(p.afterJoin, fn)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.enqueueNoWait(mail{kind: mailFunc, fn: fn}, "after join")
}

// Subscribe subscribes the channel to PubSub topics; their messages arrive
// in HandleInfo as *pubsub.Message. Subscriptions end with the channel.
// Messages broadcast by this channel with BroadcastFrom are skipped.
func (s *Socket) Subscribe(ctx context.Context, topics ...string) error {
	return s.p.subscribe(ctx, topics)
}

// Server returns the server the channel runs on.
func (s *Socket) Server() *Server { return s.p.conn.srv }

// PubSub returns the server's PubSub.
func (s *Socket) PubSub() pubsub.PubSub { return s.p.conn.srv.ps }

// OnStop registers fn to run when the channel terminates, on its mailbox
// goroutine, before the final frames (reply to a leave, phx_close or
// phx_error) and before Terminate; pushes made by fn still reach a client
// that is there. Resources a channel starts (batchers, timers, goroutines)
// stop here. Functions run in reverse order of registration; a panic in one
// is logged and the others still run. Registered once the channel is
// stopping (from another goroutine), fn runs at once on the caller's.
func (s *Socket) OnStop(fn func(ctx context.Context)) {
	p := s.p
	p.mu.Lock()
	if !p.stopping {
		p.onStop = append(p.onStop, fn)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.runStop(fn)
}
