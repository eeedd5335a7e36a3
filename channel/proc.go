package channel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pyre-go/pyre/pubsub"
)

// proc runs one joined channel: Phoenix's channel process, without a
// goroutine of its own while idle. Work for the channel (client events,
// intercepted broadcasts, infos, after-join functions, the final stop) goes
// through a mailbox; a goroutine is started when mail arrives and exits when
// the mailbox is empty, so an idle joined channel costs no goroutine and its
// callbacks never run concurrently.
type proc struct {
	conn       *Conn
	id         string // unique across nodes: broadcast_from identity
	topic      string
	joinRef    string
	pattern    string
	ch         Channel
	sock       *Socket
	handler    Handler
	intercepts []string
	out        OutHandler  // nil: intercepted broadcasts are pushed unchanged
	info       InfoHandler // nil: infos are logged as unhandled
	term       Terminator  // nil: nothing to call when the channel ends
	ctx        *procCtx

	filter atomic.Pointer[Filter] // the client's filter of broadcasts; nil: all pass
	state  atomic.Uint32          // procJoining → procJoined → procDead

	mu        sync.Mutex
	space     sync.Cond // signaled when the mailbox has room or the proc died; L is &mu
	box       []mail
	running   bool
	pending   []*Frame // pushes made while joining, sent after the join reply
	afterJoin []func(context.Context)
	onStop    []func(context.Context)
	stopping  bool // the OnStop list was taken: later OnStop calls run at once
	subs      []*infoSub
}

const (
	procJoining uint32 = iota
	procJoined
	procDead
)

type mailKind uint8

const (
	mailIn mailKind = iota
	mailOut
	mailInfo
	mailFunc
	mailStop
)

type stopMode uint8

const (
	stopSilent stopMode = iota // connection gone: no frames
	stopLeave                  // reply ok to the leave, then phx_close
	stopClose                  // phx_close
	stopError                  // phx_error {"reason":"channel_crash"}
)

type mail struct {
	kind   mailKind
	mode   stopMode
	msg    *Message
	info   any
	fn     func(context.Context)
	reason error
	ref    string
}

func newProc(c *Conn, pattern string, ch Channel, m *Message) *proc {
	p := &proc{
		conn:    c,
		id:      c.srv.nextProcID(),
		topic:   m.Topic,
		joinRef: m.JoinRef,
		pattern: pattern,
		ch:      ch,
	}
	p.space.L = &p.mu
	p.ctx = &procCtx{parent: c.ctx}
	p.sock = &Socket{p: p, assigns: cloneMap(c.info.Assigns)}
	c.addLive(p)
	if b, ok := ch.(interface{ bindBase(*Socket) }); ok {
		b.bindBase(p.sock)
	}
	// The optional callbacks are looked up once per join, not per message.
	if ic, ok := ch.(Interceptor); ok {
		p.intercepts = slices.Clone(ic.Intercepts())
	}
	p.out, _ = ch.(OutHandler)
	p.info, _ = ch.(InfoHandler)
	p.term, _ = ch.(Terminator)
	// Each channel gets its own chain, built now: a Middleware runs once per
	// join and may keep per-channel state in its closure (ratelimit's
	// PerChannel limiter, otelchannel's join span). Only a channel with no
	// hooks at all shares the server's hookless handler.
	hk, isHooker := ch.(Hooker)
	if isHooker || len(c.srv.router.hooks) > 0 {
		var hooks []Middleware
		hooks = append(hooks, c.srv.router.hooks...)
		if isHooker {
			hooks = append(hooks, hk.Hooks()...)
		}
		p.handler = chain(HandlerFunc(p.final), hooks)
	} else {
		p.handler = c.srv.routerChain()
	}
	return p
}

// procChain is the handler of channels without any hook (no Router.Use,
// no Hooker): socketFinal, shared rather than a method value per join.
type procChain struct {
	n int // len(Router.hooks) it was built from: Use appends
	h Handler
}

// routerChain returns the router's hooks around socketFinal.
func (s *Server) routerChain() Handler {
	hooks := s.router.hooks
	if pc := s.chain.Load(); pc != nil && pc.n == len(hooks) {
		return pc.h
	}
	pc := &procChain{n: len(hooks), h: chain(HandlerFunc(socketFinal), hooks)}
	s.chain.Store(pc)
	return pc.h
}

// socketFinal is the innermost Handler of the shared chain: the channel of
// the socket's proc.
func socketFinal(ctx context.Context, s *Socket, msg *Message) (Reply, error) {
	return s.p.final(ctx, s, msg)
}

// final is the innermost Handler: it calls the Channel.
func (p *proc) final(ctx context.Context, s *Socket, msg *Message) (Reply, error) {
	if msg.Event != EventJoin {
		return p.ch.HandleIn(ctx, s, msg)
	}
	if fa, ok := p.ch.(Filterable); ok {
		f, err := FilterFromParams(msg.Payload, fa.FilterLimits())
		if err != nil {
			return ErrorReply(filterRefusal(err)), nil
		}
		p.filter.Store(f)
	}
	resp, err := p.ch.Join(ctx, s, msg.Payload)
	if err != nil {
		var je *JoinError
		if errors.As(err, &je) {
			return ErrorReply(je.Response), nil
		}
		return Reply{}, err
	}
	return OK(resp), nil
}

// join runs the join through the hooks on the caller's goroutine. crashed
// reports a panic or an error other than a JoinError, answered "join
// crashed".
func (p *proc) join(m *Message) (r Reply, crashed bool) {
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Op: opHandler, Value: v, Stack: debug.Stack()}
			p.logErr("join crashed", pe)
			r, crashed = Reply{Status: "error", Response: jsonRaw(respJoinCrashed)}, true
		}
	}()
	r, err := p.handler.Handle(p.ctx, p.sock, m)
	if err != nil {
		p.logErr("join failed", err)
		return Reply{Status: "error", Response: jsonRaw(respJoinCrashed)}, true
	}
	if r.IsZero() {
		r = OK(nil)
	}
	return r, false
}

// abandon releases a proc whose join did not succeed.
func (p *proc) abandon() {
	p.mu.Lock()
	stops := p.onStop
	p.onStop, p.stopping = nil, true
	p.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		p.runStop(stops[i])
	}
	p.state.Store(procDead)
	p.unsubscribeInfos()
	p.cancel()
}

// cancel ends the channel's context and forgets the proc at its connection.
func (p *proc) cancel() {
	p.ctx.cancel()
	p.conn.removeLive(p)
}

// activate follows a successful join reply: pushes made during the join
// are sent, the channel starts receiving broadcasts, after-join functions
// and any mail that arrived during the join are run.
func (p *proc) activate() {
	p.mu.Lock()
	for _, f := range p.pending {
		p.conn.send(f)
	}
	p.pending = nil
	for _, fn := range p.afterJoin {
		p.box = append(p.box, mail{kind: mailFunc, fn: fn})
	}
	p.afterJoin = nil
	p.state.Store(procJoined)
	p.startLocked()
	p.mu.Unlock()
}

// attach subscribes the joining channel to its topic before the join
// reply is sent, so that no broadcast after the reply is missed; until
// activate, broadcasts wait in pending behind the reply.
func (p *proc) attach() {
	if err := p.conn.srv.hub.add(p.ctx, p.topic, p); err != nil {
		p.logErr("subscribe to topic failed", err)
	}
}

// detach stops fastlane delivery to the proc.
func (p *proc) detach() { p.conn.srv.hub.remove(p.ctx, p.topic, p) }

// deliver implements hubSub: offer with a payloadDoc of its own.
func (p *proc) deliver(f *Frame, msg *pubsub.Message) {
	var doc payloadDoc
	if !p.offer(f, msg, &doc) {
		p.conn.srv.hub.filtered.Add(1)
	}
}

// offer hands a broadcast to the channel unless the client's filter drops
// it, which it reports with false. doc is what filters found in the
// broadcast's payload, shared by the receivers of one fan-out.
// hub.deliverLocal has a copy of it inlined.
func (p *proc) offer(f *Frame, msg *pubsub.Message, doc *payloadDoc) bool {
	if flt := p.filter.Load(); flt != nil && !flt.pass(msg.Event, msg.Payload, msg.Binary, doc) {
		return false
	}
	p.queue(f, msg)
	return true
}

// queue routes a broadcast the filter passed: to the mailbox if
// intercepted, else onto the connection (behind the join reply while
// joining).
func (p *proc) queue(f *Frame, msg *pubsub.Message) {
	state := p.state.Load()
	if state == procDead {
		return
	}
	if len(p.intercepts) > 0 && slices.Contains(p.intercepts, msg.Event) {
		m := &Message{Topic: msg.Topic, Event: msg.Event, Payload: Payload{raw: msg.Payload, binary: msg.Binary}}
		p.enqueueNoWait(mail{kind: mailOut, msg: m}, "intercepted broadcast")
		return
	}
	if state == procJoining {
		p.mu.Lock()
		if p.state.Load() == procJoining {
			p.pending = append(p.pending, f)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	p.conn.send(f)
}

func (p *proc) subID() string { return p.id }

// enqueueIn queues a client event, waiting while the mailbox is full.
func (p *proc) enqueueIn(m *Message) {
	limit := p.conn.srv.opts.MailboxSize
	p.mu.Lock()
	for len(p.box) >= limit && p.state.Load() != procDead && !p.conn.isClosing() {
		p.space.Wait()
	}
	if p.state.Load() == procDead || p.conn.isClosing() {
		p.mu.Unlock()
		return
	}
	p.box = append(p.box, mail{kind: mailIn, msg: m})
	p.startLocked()
	p.mu.Unlock()
}

// enqueueNoWait queues mail that must not block its sender (broadcasts,
// infos). When the mailbox is full the mail is dropped and logged.
func (p *proc) enqueueNoWait(m mail, what string) bool {
	p.mu.Lock()
	if p.state.Load() == procDead {
		p.mu.Unlock()
		return false
	}
	if len(p.box) >= p.conn.srv.opts.MailboxSize {
		p.mu.Unlock()
		p.conn.srv.stats.mailboxDrops.Add(1)
		p.conn.log.LogAttrs(p.ctx, slog.LevelWarn, "channel mailbox full, message dropped",
			slog.String("topic", p.topic), slog.String("kind", what))
		return false
	}
	p.box = append(p.box, m)
	p.startLocked()
	p.mu.Unlock()
	return true
}

// wake releases a reader waiting for room in the mailbox.
func (p *proc) wake() {
	p.mu.Lock()
	p.space.Broadcast()
	p.mu.Unlock()
}

// stop queues the end of the channel behind the mail already queued. The
// stop mail bypasses the mailbox bound.
func (p *proc) stop(reason error, mode stopMode, ref string) {
	p.mu.Lock()
	if p.state.Load() == procDead {
		p.mu.Unlock()
		return
	}
	p.box = append(p.box, mail{kind: mailStop, mode: mode, reason: reason, ref: ref})
	p.startLocked()
	p.space.Broadcast()
	p.mu.Unlock()
}

// startLocked starts the mailbox goroutine if there is mail and none runs.
// While the join runs, mail waits for activate.
func (p *proc) startLocked() {
	if p.running || len(p.box) == 0 || p.state.Load() == procJoining {
		return
	}
	p.running = true
	p.conn.wg.Add(1)
	go p.run()
}

func (p *proc) run() {
	defer p.conn.wg.Done()
	for {
		p.mu.Lock()
		if len(p.box) == 0 || p.state.Load() == procDead {
			p.running = false
			p.box = nil
			p.mu.Unlock()
			return
		}
		m := p.box[0]
		p.box[0] = mail{}
		p.box = p.box[1:]
		p.space.Signal()
		p.mu.Unlock()
		p.handle(m)
	}
}

// handle processes one mail, containing panics to this channel.
func (p *proc) handle(m mail) {
	if m.kind == mailStop {
		p.finish(m.reason, m.mode, m.ref)
		return
	}
	var reply Reply
	var err error
	var msg *Message
	var obs *observers
	var start time.Time
	if m.kind == mailIn {
		obs = p.conn.srv.obs.cur.Load()
		start = obs.start()
	}
	func() {
		defer func() {
			if v := recover(); v != nil {
				err = &PanicError{Op: opHandler, Value: v, Stack: debug.Stack()}
			}
		}()
		switch m.kind {
		case mailIn:
			msg = m.msg
			reply, err = p.handler.Handle(p.ctx, p.sock, m.msg)
		case mailOut:
			if p.out != nil {
				err = p.out.HandleOut(p.ctx, p.sock, m.msg)
			} else {
				err = p.sock.Push(m.msg.Event, m.msg.Payload)
			}
		case mailInfo:
			if p.info != nil {
				err = p.info.HandleInfo(p.ctx, p.sock, m.info)
			} else {
				p.conn.log.LogAttrs(p.ctx, slog.LevelWarn, "unhandled info message",
					slog.String("topic", p.topic), slog.String("type", fmt.Sprintf("%T", m.info)))
			}
		case mailFunc:
			m.fn(p.ctx)
		}
	}()
	if msg != nil {
		p.conn.sendReply(p.joinRef, msg.Ref, p.topic, reply)
	}
	// A PanicError also matches its panic value, so a panic(ErrStop) or
	// panic(ErrUnhandled) must not pass for a clean stop or an unknown event.
	var pe *PanicError
	panicked := errors.As(err, &pe)
	if obs != nil && msg != nil {
		obs.event(EventInfo{Pattern: p.pattern, Topic: p.topic, Event: msg.Event,
			Status: eventStatus(msg, reply, err, panicked), Duration: since(start)})
	}
	switch {
	case err == nil:
	case !panicked && isUnhandled(err):
		if msg != nil {
			p.conn.log.LogAttrs(p.ctx, slog.LevelWarn, "unhandled event",
				slog.String("topic", p.topic), slog.String("event", msg.Event))
		}
	case !panicked && errors.Is(err, ErrStop):
		p.conn.unregister(p)
		p.detach()
		p.finish(err, stopClose, "")
	default:
		p.logErr("channel crashed", err)
		p.conn.unregister(p)
		p.detach()
		p.finish(err, stopError, "")
	}
}

var (
	respChannelCrash = []byte(`{"reason":"channel_crash"}`)
)

// finish ends the channel on its mailbox goroutine: the frames of the stop
// mode, then the channel's Terminate, if it has one. Mail queued after this is dropped.
func (p *proc) finish(reason error, mode stopMode, ref string) {
	p.mu.Lock()
	if p.state.Load() == procDead {
		p.mu.Unlock()
		return
	}
	stops := p.onStop
	p.onStop, p.stopping = nil, true
	p.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		p.runStop(stops[i])
	}
	p.mu.Lock()
	p.state.Store(procDead)
	p.box = nil
	p.space.Broadcast()
	p.mu.Unlock()
	p.unsubscribeInfos()

	c := p.conn
	switch mode {
	case stopLeave:
		c.reply(p.joinRef, ref, p.topic, "ok", emptyObject, false)
		c.send(&Frame{f: frame{kind: kindPush, joinRef: p.joinRef, ref: p.joinRef, topic: p.topic, event: EventClose, payload: emptyObject}})
	case stopClose:
		c.send(&Frame{f: frame{kind: kindPush, joinRef: p.joinRef, ref: p.joinRef, topic: p.topic, event: EventClose, payload: emptyObject}})
	case stopError:
		c.send(&Frame{f: frame{kind: kindPush, joinRef: p.joinRef, ref: p.joinRef, topic: p.topic, event: EventError, payload: respChannelCrash}})
	}
	if p.term != nil {
		func() {
			defer func() {
				if v := recover(); v != nil {
					p.logErr("terminate panicked", &PanicError{Op: "channel: Terminate", Value: v, Stack: debug.Stack()})
				}
			}()
			p.term.Terminate(context.WithoutCancel(p.ctx), p.sock, reason)
		}()
	}
	if hook := c.srv.opts.OnTerminate; hook != nil {
		hook(p.sock, reason)
	}
	if obs := c.srv.obs.cur.Load(); obs != nil {
		obs.leave(LeaveInfo{Pattern: p.pattern, Topic: p.topic, Reason: reason})
	}
	p.cancel()
}

// eventStatus is EventInfo.Status for a handler's result.
func eventStatus(msg *Message, reply Reply, err error, panicked bool) string {
	switch {
	case err == nil && msg.unhandled && reply.IsZero():
		return "unhandled"
	case err == nil && reply.IsZero():
		return "noreply"
	case err == nil:
		return reply.Status
	case !panicked && isUnhandled(err):
		return "unhandled"
	case !panicked && errors.Is(err, ErrStop):
		return "stop"
	default:
		return "crash"
	}
}

// runStop runs an OnStop function with a bounded context, containing panics.
func (p *proc) runStop(fn func(context.Context)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), stopTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			p.logErr("OnStop function panicked", &PanicError{Op: "channel: OnStop function", Value: v, Stack: debug.Stack()})
		}
	}()
	fn(ctx)
}

// stopTimeout bounds each OnStop function's context.
const stopTimeout = 5 * time.Second

func (p *proc) logErr(msg string, err error) {
	attrs := []slog.Attr{slog.String("topic", p.topic), slog.String("channel", p.pattern), slog.Any("error", err)}
	var pe *PanicError
	if errors.As(err, &pe) {
		attrs = append(attrs, slog.String("stack", string(pe.Stack)))
	}
	p.conn.log.LogAttrs(p.ctx, slog.LevelError, msg, attrs...)
}

// infoSub delivers a PubSub topic to the channel's HandleInfo.
type infoSub struct {
	p     *proc
	topic string
}

func (s *infoSub) Deliver(msg *pubsub.Message) {
	if msg.From != "" && msg.From == s.p.id {
		return
	}
	s.p.enqueueNoWait(mail{kind: mailInfo, info: msg}, "pubsub info")
}

func (p *proc) subscribe(ctx context.Context, topics []string) error {
	for _, t := range topics {
		p.mu.Lock()
		dup := slices.ContainsFunc(p.subs, func(s *infoSub) bool { return s.topic == t })
		dead := p.state.Load() == procDead
		p.mu.Unlock()
		if dead {
			return ErrClosed
		}
		if dup {
			continue
		}
		s := &infoSub{p: p, topic: t}
		if err := p.conn.srv.ps.Subscribe(ctx, t, s); err != nil {
			return fmt.Errorf("channel: subscribe %q: %w", t, err)
		}
		p.mu.Lock()
		p.subs = append(p.subs, s)
		p.mu.Unlock()
	}
	return nil
}

func (p *proc) unsubscribeInfos() {
	p.mu.Lock()
	subs := p.subs
	p.subs = nil
	p.mu.Unlock()
	for _, s := range subs {
		_ = p.conn.srv.ps.Unsubscribe(context.WithoutCancel(p.ctx), s.topic, s)
	}
}

func cloneMap(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil // allocated by the first Assign
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// jsonRaw marks bytes as pre-encoded JSON for encodePayload.
type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }

func isUnhandled(err error) bool { return errors.Is(err, ErrUnhandled) }
