package channel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/correlation"
	"github.com/pyre-go/pyre/pubsub"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logBuffer collects JSON log records for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records returns the records whose msg equals msg.
func (l *logBuffer) records(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// hooked exercises every Base helper.
type hooked struct {
	channel.Base
	extra []channel.Middleware
}

func (h *hooked) Join(ctx context.Context, s *channel.Socket, p channel.Payload) (any, error) {
	if err := h.SubscribeTopics(ctx, "news", "alerts"); err != nil {
		return nil, err
	}
	h.AfterJoin(func(ctx context.Context) {
		_ = s.Push("initial_state", map[string]any{"correlation_id": s.CorrelationID(), "from_ctx": correlation.ID(ctx)})
	})
	return nil, nil
}

func (h *hooked) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	switch msg.Event {
	case "fail_softly":
		return channel.NoReply, h.PushError("command_error", "service_unavailable", "OBS is not connected")
	case "poke_self":
		s.Send("a plain info")
		return channel.OK(nil), nil
	}
	return channel.NoReply, channel.ErrUnhandled
}

func (h *hooked) Intercepts() []string { return []string{"shout"} }

func (h *hooked) HandleInfo(ctx context.Context, s *channel.Socket, info any) error {
	if m, ok := info.(*pubsub.Message); ok && m.Topic == "news" {
		return s.Push("news", json.RawMessage(m.Payload))
	}
	return h.Base.HandleInfo(ctx, s, info) // log as unhandled
}

func (h *hooked) Hooks() []channel.Middleware { return append(h.Base.Hooks(), h.extra...) }

func newHooked(t *testing.T, logs *logBuffer, extra ...channel.Middleware) (*channeltest.Endpoint, *channel.Router) {
	r := channel.NewRouter()
	r.Handle("hooked:*", func() channel.Channel { return &hooked{extra: extra} })
	ep := channeltest.New(t, r, &channeltest.Options{Server: channel.Options{Logger: logs.logger()}})
	return ep, r
}

func TestBaseCorrelationHookAndAfterJoin(t *testing.T) {
	logs := &logBuffer{}
	ep, _ := newHooked(t, logs)
	sock := ep.Client(&channel.ConnectInfo{CorrelationID: "a1b2c3d4"})
	ch := sock.Join("hooked:1", nil)
	ch.AssertPush("initial_state", map[string]any{"correlation_id": "a1b2c3d4", "from_ctx": "a1b2c3d4"})
	joined := logs.records("Channel joined")
	require.Len(t, joined, 1)
	assert.Equal(t, "a1b2c3d4", joined[0]["correlation_id"])
	assert.Equal(t, "hooked:*", joined[0]["channel"])
	assert.Equal(t, "hooked:1", joined[0]["topic"])

	// A second channel of the same connection shares the id.
	sock.Join("hooked:2", nil).AssertPush("initial_state", map[string]any{"correlation_id": "a1b2c3d4", "from_ctx": "a1b2c3d4"})
}

func TestBasePingHook(t *testing.T) {
	ep, _ := newHooked(t, &logBuffer{})
	ch := ep.Client(nil).Join("hooked:1", nil)
	ch.Push("ping", map[string]any{"hello": "there"}).AssertReply("ok", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
		m := p.Map()
		assert.Equal(t, true, m["pong"])
		assert.IsType(t, float64(0), m["timestamp"])
		assert.NotContains(t, m, "hello", "the payload is not echoed")
	}))
}

// echoPing is written like mix phx.gen.channel: its own "ping" case
// answers, and everything else is left unhandled.
type echoPing struct{ channel.Base }

func (*echoPing) Join(context.Context, *channel.Socket, channel.Payload) (any, error) {
	return nil, nil
}

func (*echoPing) HandleIn(_ context.Context, _ *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	if msg.Event == "ping" {
		return channel.OK(map[string]any{"custom": true}), nil
	}
	return channel.NoReply, channel.ErrUnhandled
}

func TestBasePingHookLetsTheChannelsOwnPingWin(t *testing.T) {
	logs := &logBuffer{}
	r := channel.NewRouter()
	r.Handle("*", func() channel.Channel { return &echoPing{} })
	ep := channeltest.New(t, r, &channeltest.Options{Server: channel.Options{Logger: logs.logger()}})
	ch := ep.Client(nil).Join("x", nil)
	ch.Push("ping", map[string]any{"hello": "there"}).AssertReply("ok", channeltest.JSON(`{"custom":true}`))
	assert.Empty(t, logs.records("Unhandled channel message"))
}

// A ping the channel leaves unhandled is answered, and not logged as
// unhandled: Ping sits inside LogUnhandled.
func TestBasePingHookAnswersAnUnhandledPingWithoutWarning(t *testing.T) {
	logs := &logBuffer{}
	ep, _ := newHooked(t, logs)
	ep.Client(nil).Join("hooked:1", nil).Push("ping", nil).AssertReply("ok", channeltest.Subset(map[string]any{"pong": true}))
	assert.Empty(t, logs.records("Unhandled channel message"))
}

func TestCustomPingResponder(t *testing.T) {
	respond := func(_ context.Context, s *channel.Socket, _ *channel.Message) channel.Reply {
		return channel.OK(map[string]any{"pong": true, "topic": s.Topic()})
	}
	r := channel.NewRouter()
	// A channel replaces Base's ping answer by overriding Hooks.
	r.Handle("own:*", func() channel.Channel {
		return &hooked{extra: []channel.Middleware{channel.Ping(respond)}} // inside Base's Ping: answers first
	})
	// A router-wide Ping answers for channels without Base's hooks.
	r.Use(channel.Ping(respond))
	r.Handle("*", func() channel.Channel { return &bare{} })
	ep := channeltest.New(t, r, nil)
	ep.Client(nil).Join("own:1", nil).Push("ping", nil).AssertReply("ok", channeltest.JSON(`{"pong":true,"topic":"own:1"}`))
	ep.Client(nil).Join("x", nil).Push("ping", nil).AssertReply("ok", channeltest.JSON(`{"pong":true,"topic":"x"}`))
}

// bare implements only the required methods of Channel: no Base, no
// HandleOut, no HandleInfo, no Terminate.
type bare struct{}

func (*bare) Join(context.Context, *channel.Socket, channel.Payload) (any, error) { return nil, nil }

func (*bare) HandleIn(context.Context, *channel.Socket, *channel.Message) (channel.Reply, error) {
	return channel.NoReply, channel.ErrUnhandled
}

func (*bare) Intercepts() []string { return []string{"shout"} }

// The optional callbacks are optional: a channel with only Join and
// HandleIn gets intercepted broadcasts pushed unchanged, its infos logged,
// and ends without a Terminate.
func TestChannelWithOnlyJoinAndHandleIn(t *testing.T) {
	logs := &logBuffer{}
	r := channel.NewRouter()
	r.Handle("*", func() channel.Channel { return &bare{} })
	ep := channeltest.New(t, r, &channeltest.Options{Server: channel.Options{Logger: logs.logger()}})
	ch := ep.Client(nil).Join("bare:1", nil)
	ep.Broadcast("bare:1", "shout", map[string]int{"n": 1})
	f := ch.AssertPush("shout", map[string]int{"n": 1})
	assert.Equal(t, channel.FramePush, f.Kind(), "intercepted: re-pushed with the join_ref")
	ch.Send("an info")
	ch.Leave().AssertReply("ok", nil) // the leave is handled after the info
	ch.AssertTerminated(channel.ErrLeft)
	assert.Len(t, logs.records("unhandled info message"), 1)
}

func TestBaseLogUnhandledHook(t *testing.T) {
	logs := &logBuffer{}
	ep, _ := newHooked(t, logs)
	sock := ep.Client(&channel.ConnectInfo{CorrelationID: "feedbeef"})
	ch := sock.Join("hooked:1", nil)
	ch.Push("nope", map[string]int{"a": 1}).RefuteReply(0)
	recs := logs.records("Unhandled channel message")
	require.Len(t, recs, 1)
	assert.Equal(t, "nope", recs[0]["event"])
	assert.Equal(t, `{"a":1}`, recs[0]["payload"])
	assert.Equal(t, "feedbeef", recs[0]["correlation_id"])
	assert.Equal(t, "WARN", recs[0]["level"])
	// The channel is unharmed.
	ch.Push("ping", nil).AssertReply("ok", nil)
}

func TestBasePushError(t *testing.T) {
	logs := &logBuffer{}
	ep, _ := newHooked(t, logs)
	ch := ep.Client(nil).Join("hooked:1", nil)
	ch.Push("fail_softly", nil).RefuteReply(0)
	ch.AssertPush("command_error", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
		var body struct {
			Success bool
			Error   struct{ Code, Message, Timestamp string }
		}
		require.NoError(t, p.Decode(&body))
		assert.False(t, body.Success)
		assert.Equal(t, "service_unavailable", body.Error.Code)
		assert.Equal(t, "OBS is not connected", body.Error.Message)
		assert.NotEmpty(t, body.Error.Timestamp)
	}))
	assert.Len(t, logs.records("channel error pushed"), 1)
}

func TestBaseSubscribeTopicsAndHandleInfo(t *testing.T) {
	logs := &logBuffer{}
	ep, _ := newHooked(t, logs)
	ch := ep.Client(nil).Join("hooked:1", nil)
	ctx := context.Background()
	require.NoError(t, ep.Server().PubSub().Broadcast(ctx, &pubsub.Message{Topic: "news", Event: "item", Payload: []byte(`{"headline":"pyre ships"}`)}))
	ch.AssertPush("news", map[string]any{"headline": "pyre ships"})

	// Infos the channel does not handle are logged by Base.HandleInfo.
	require.NoError(t, ep.Server().PubSub().Broadcast(ctx, &pubsub.Message{Topic: "alerts", Event: "x", Payload: []byte(`{}`)}))
	ch.Push("poke_self", nil).AssertReply("ok", nil)
	ch.RefutePush("news", nil, 0)
	assert.Len(t, logs.records("Unhandled channel message"), 2)

	// Subscriptions end with the channel.
	ch.Leave().AssertReply("ok", nil)
	ch.AssertTerminated(channel.ErrLeft)
	require.NoError(t, ep.Server().PubSub().Broadcast(ctx, &pubsub.Message{Topic: "news", Event: "item", Payload: []byte(`{}`)}))
	ch.RefutePush("news", nil, 0)
}

func TestInterceptWithoutHandleOutPushesUnchanged(t *testing.T) {
	ep, _ := newHooked(t, &logBuffer{})
	ch := ep.Client(nil).Join("hooked:1", nil)
	ep.Broadcast("hooked:1", "shout", map[string]int{"n": 1})
	f := ch.AssertPush("shout", map[string]int{"n": 1})
	assert.Equal(t, channel.FramePush, f.Kind(), "intercepted: re-pushed with the join_ref")
	assert.Equal(t, ch.JoinRef(), f.JoinRef())
}

func TestRouterAndChannelHooksCompose(t *testing.T) {
	var order []string
	var mu sync.Mutex
	trace := func(name string) channel.Middleware {
		return func(next channel.Handler) channel.Handler {
			return channel.HandlerFunc(func(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
				mu.Lock()
				order = append(order, name+":"+msg.Event)
				mu.Unlock()
				return next.Handle(ctx, s, msg)
			})
		}
	}
	var joins atomic.Int32
	auth := func(next channel.Handler) channel.Handler {
		return channel.HandlerFunc(func(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
			if msg.Event == channel.EventJoin {
				joins.Add(1)
				if s.Conn().Assigns()["user"] == nil {
					return channel.ErrorReply(map[string]string{"reason": "unauthorized"}), nil
				}
			}
			return next.Handle(ctx, s, msg)
		})
	}
	r := channel.NewRouter()
	r.Use(trace("router"), auth)
	r.Handle("hooked:*", func() channel.Channel { return &hooked{extra: []channel.Middleware{trace("channel")}} })
	ep := channeltest.New(t, r, nil)

	ep.Client(nil).AssertJoinError("hooked:1", nil, map[string]string{"reason": "unauthorized"})
	ch := ep.Client(&channel.ConnectInfo{Assigns: map[string]any{"user": 7}}).Join("hooked:1", nil)
	ch.Push("nope", nil).RefuteReply(0)
	assert.EqualValues(t, 2, joins.Load())
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"router:phx_join", "router:phx_join", "channel:phx_join", "router:nope", "channel:nope"}, order)
}

func TestHookErrorCrashesOnlyThatChannel(t *testing.T) {
	boom := func(next channel.Handler) channel.Handler {
		return channel.HandlerFunc(func(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
			if msg.Event == "explode" {
				return channel.NoReply, errors.New("hook failed")
			}
			return next.Handle(ctx, s, msg)
		})
	}
	ep, _ := newHooked(t, &logBuffer{}, boom)
	sock := ep.Client(nil)
	a := sock.Join("hooked:a", nil)
	b := sock.Join("hooked:b", nil)
	a.Push("explode", nil)
	a.AssertError()
	a.AssertTerminated(nil)
	b.Push("ping", nil).AssertReply("ok", nil)
}

// Without Options.Logger the server logs to slog.Default(), and an event
// no channel handles is a warning there: the client's push times out, the
// log says why.
func TestDefaultLoggerIsSlogDefaultAndUnhandledEventsWarn(t *testing.T) {
	logs := &logBuffer{}
	prev, out, flags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(logs.logger())
	t.Cleanup(func() {
		// SetDefault also sent package log's output to logs; restoring the
		// default slog handler does not undo that.
		slog.SetDefault(prev)
		log.SetOutput(out)
		log.SetFlags(flags)
	})

	r := channel.NewRouter()
	r.Handle("*", func() channel.Channel { return &bare{} })
	ep := channeltest.New(t, r, nil)
	ch := ep.Client(nil).Join("bare:1", nil)
	ch.Push("nope", nil)
	ch.Leave().AssertReply("ok", nil) // the leave is handled after "nope"
	recs := logs.records("unhandled event")
	require.Len(t, recs, 1)
	assert.Equal(t, "WARN", recs[0]["level"])
	assert.Equal(t, "nope", recs[0]["event"])
}
