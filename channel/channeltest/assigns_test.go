package channeltest_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/stretchr/testify/assert"
)

// greeter assigns in Join and pushes what HandleInfo receives.
type greeter struct{ channel.Base }

func (g *greeter) Join(_ context.Context, s *channel.Socket, p channel.Payload) (any, error) {
	s.Assign("name", p.Map()["name"])
	return nil, nil
}

func (g *greeter) HandleIn(context.Context, *channel.Socket, *channel.Message) (channel.Reply, error) {
	return channel.NoReply, channel.ErrUnhandled
}

func (g *greeter) HandleInfo(_ context.Context, s *channel.Socket, info any) error {
	s.Assign("last", info)
	return s.Push("info", map[string]any{"got": info, "name": s.Assigns()["name"]})
}

func greeterRouter() *channel.Router {
	r := channel.NewRouter()
	r.Handle("greet:*", func() channel.Channel { return &greeter{} })
	return r
}

func TestChannelAssignsAndSend(t *testing.T) {
	ep := channeltest.New(t, greeterRouter(), nil)
	ch := ep.Client(&channel.ConnectInfo{Assigns: map[string]any{"user_id": 7}}).Join("greet:1", map[string]any{"name": "ada"})
	assert.Equal(t, map[string]any{"user_id": 7, "name": "ada"}, ch.Assigns())
	ch.Send("hello")
	ch.AssertPush("info", map[string]any{"got": "hello", "name": "ada"})
	assert.NotContains(t, ch.Assigns(), "last", "a snapshot taken at the join")
}

func TestFailSendAfterTheChannelEnded(t *testing.T) {
	msg := failing(t, func(ft *fakeTB, after func()) {
		ep := channeltest.New(ft, greeterRouter(), nil)
		ch := ep.Client(nil).Join("greet:1", nil)
		ch.Leave().AssertReply("ok", nil)
		ch.AssertTerminated(channel.ErrLeft)
		ch.Send("too late")
		after()
	})
	contains(t, msg, `Send to greet:1 failed: the channel ended or its mailbox is full`)
}

// The server records a join (OnJoin) just after it queued the join reply,
// so the test can see the reply first. Assigns and Send wait for the
// record (up to Options.Timeout, 1 s) instead of failing. Here a user
// OnJoin hook holds the record back for half a second of the bubble's fake
// time.
func TestAssignsWaitsForTheJoinRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		go func() {
			time.Sleep(500 * time.Millisecond)
			close(release)
		}()
		opts := &channeltest.Options{}
		opts.Server.OnJoin = func(*channel.Socket) { <-release }
		ep := channeltest.New(t, greeterRouter(), opts)
		ch := ep.Client(nil).Join("greet:1", map[string]any{"name": "ada"})
		start := time.Now()
		assert.Equal(t, map[string]any{"name": "ada"}, ch.Assigns())
		assert.Equal(t, 500*time.Millisecond, time.Since(start), "Assigns waited for the record")
		ep.Close()
	})
}
