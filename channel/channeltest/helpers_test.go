package channeltest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/channel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// room is the channel under test in this package's tests.
type room struct {
	channel.Base
	release chan struct{} // "block" waits on it
}

func (r *room) Join(_ context.Context, s *channel.Socket, p channel.Payload) (any, error) {
	params := p.Map()
	if params["token"] != "secret" {
		return nil, channel.Refuse(map[string]string{"reason": "unauthorized"})
	}
	if params["crash"] == true {
		panic("join exploded")
	}
	// A push during the join arrives after the join reply.
	if err := s.Push("joining", map[string]any{"step": 1}); err != nil {
		return nil, err
	}
	r.AfterJoin(func(context.Context) { _ = s.Push("presence_state", map[string]any{}) })
	return map[string]any{
		"user_id":        s.Assigns()["user_id"],
		"correlation_id": s.CorrelationID(),
	}, nil
}

func (r *room) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	switch msg.Event {
	case "echo":
		return channel.OK(msg.Payload), nil
	case "refuse":
		return channel.ErrorReply(map[string]string{"reason": "nope"}), nil
	case "silent":
		return channel.NoReply, nil
	case "push_back":
		return channel.NoReply, s.Push("pushed", msg.Payload)
	case "shout":
		body := msg.Payload.Map()["body"]
		err := s.Broadcast(ctx, "shout", map[string]any{"body": body, "user_id": s.Assigns()["user_id"]})
		return channel.OK(nil), err
	case "from":
		return channel.OK(nil), s.BroadcastFrom(ctx, "from_me", msg.Payload)
	case "binary":
		return channel.OK(channel.Binary{1, 2, 3}), nil
	case "push_binary":
		return channel.NoReply, s.Push("bin", channel.Binary{0xff})
	case "crash":
		panic("boom")
	case "fail":
		return channel.NoReply, errors.New("database down")
	case "stop":
		return channel.OK(nil), fmt.Errorf("done: %w", channel.ErrStop)
	case "kick":
		return channel.OK(nil), s.BroadcastTo(ctx, s.Conn().ID(), "disconnect", nil)
	case "flood":
		n := int(msg.Payload.Map()["n"].(float64))
		for i := range n {
			_ = s.Push("item", map[string]any{"i": i})
		}
		return channel.NoReply, nil
	case "block":
		<-r.release
		return channel.OK(nil), nil
	}
	return channel.NoReply, channel.ErrUnhandled
}

// crashyJoin panics in Join.
type crashyJoin struct{ channel.Base }

func (*crashyJoin) Join(context.Context, *channel.Socket, channel.Payload) (any, error) {
	panic("join panic")
}

func (*crashyJoin) HandleIn(context.Context, *channel.Socket, *channel.Message) (channel.Reply, error) {
	return channel.NoReply, channel.ErrUnhandled
}

func newRouter(release chan struct{}) *channel.Router {
	r := channel.NewRouter()
	r.Handle("crashy:join", func() channel.Channel { return &crashyJoin{} })
	r.Handle("room:*", func() channel.Channel { return &room{release: release} })
	return r
}

// fakeTB records failures instead of failing the test, so that tests can
// check that a failing assertion fails and what it says. Fatalf ends the
// body's goroutine like testing.T.FailNow does.
type fakeTB struct {
	testing.TB // the real test, for anything not overridden

	mu       sync.Mutex
	fatals   []string
	errs     []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// fatal returns the single Fatalf message, failing t unless there is
// exactly one.
func (f *fakeTB) fatal(t *testing.T) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.fatals) != 1 {
		t.Fatalf("want exactly one fatal failure, got %d: %q (errors %q)", len(f.fatals), f.fatals, f.errs)
	}
	return f.fatals[0]
}

// runFake runs body like a test function with a fake TB, then its
// cleanups, each on a goroutine of its own as testing does.
func runFake(t *testing.T, body func(ft *fakeTB)) *fakeTB {
	t.Helper()
	ft := &fakeTB{TB: t}
	run := func(fn func()) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			fn()
		}()
		<-done
	}
	run(func() { body(ft) })
	for {
		ft.mu.Lock()
		n := len(ft.cleanups)
		if n == 0 {
			ft.mu.Unlock()
			break
		}
		fn := ft.cleanups[n-1]
		ft.cleanups = ft.cleanups[:n-1]
		ft.mu.Unlock()
		run(fn)
	}
	return ft
}

// contains fails t unless s contains every part.
func contains(t *testing.T, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("message does not contain %q:\n%s", p, s)
		}
	}
}
