package ratelimit

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo replies ok with its payload to every event; its hooks are the test's.
type echo struct {
	channel.Base
	hooks []channel.Middleware
}

func (*echo) Join(context.Context, *channel.Socket, channel.Payload) (any, error) { return nil, nil }

func (*echo) HandleIn(_ context.Context, _ *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	return channel.OK(msg.Payload), nil
}

func (e *echo) Hooks() []channel.Middleware { return append(e.Base.Hooks(), e.hooks...) }

// endpoint serves "room:*" with echo channels wrapped in mw.
func endpoint(t *testing.T, mw channel.Middleware) *channeltest.Endpoint {
	r := channel.NewRouter()
	r.Handle("room:*", func() channel.Channel { return &echo{hooks: []channel.Middleware{mw}} })
	return channeltest.New(t, r, &channeltest.Options{Wire: true, Timeout: time.Minute})
}

func limitedErr(code, message string) any {
	return channeltest.Subset(map[string]any{
		"success": false,
		"error":   channeltest.Subset(map[string]any{"code": code, "message": message}),
	})
}

var rateLimited = limitedErr(DefaultCode, DefaultMessage)

func TestOverTheLimitIsAnsweredWithTheErrorEnvelope(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := endpoint(t, New(&Options{Limit: rate.Every(time.Second), Burst: 2}))
		ch := ep.Client(nil).Join("room:a", nil)
		ch.Push("say", map[string]any{"n": 1}).AssertReply("ok", map[string]any{"n": 1})
		ch.Push("say", map[string]any{"n": 2}).AssertReply("ok", map[string]any{"n": 2})
		ch.Push("say", map[string]any{"n": 3}).AssertReply("error", rateLimited)
		time.Sleep(time.Second) // one token back
		ch.Push("say", map[string]any{"n": 4}).AssertReply("ok", map[string]any{"n": 4})
		ch.Push("say", map[string]any{"n": 5}).AssertReply("error", rateLimited)
	})
}

func TestDefaultsServeFiftyAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := endpoint(t, New(nil))
		ch := ep.Client(nil).Join("room:a", nil)
		for i := 0; i < DefaultBurst; i++ {
			ch.Push("say", nil).AssertReply("ok", nil)
		}
		ch.Push("say", nil).AssertReply("error", rateLimited)
		time.Sleep(200 * time.Millisecond) // 5 per second
		ch.Push("say", nil).AssertReply("ok", nil)
	})
}

func TestOnlyTheListedEventsAreLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := endpoint(t, New(&Options{Limit: rate.Every(time.Hour), Burst: 1, Events: []string{"costly"}}))
		ch := ep.Client(nil).Join("room:a", nil)
		ch.Push("costly", nil).AssertReply("ok", nil)
		ch.Push("costly", nil).AssertReply("error", rateLimited)
		for i := 0; i < 5; i++ {
			ch.Push("cheap", nil).AssertReply("ok", nil)
		}
		ch.Push("ping", nil).AssertReply("ok", nil) // not listed: reaches the channel
	})
}

func TestMatchDecidesInsteadOfEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := endpoint(t, New(&Options{Limit: rate.Every(time.Hour), Burst: 1, Events: []string{"a"},
			Match: func(m *channel.Message) bool { return m.Payload.Map()["costly"] == true }}))
		ch := ep.Client(nil).Join("room:a", nil)
		ch.Push("a", map[string]any{"costly": true}).AssertReply("ok", nil)
		ch.Push("b", map[string]any{"costly": true}).AssertReply("error", rateLimited)
		ch.Push("a", nil).AssertReply("ok", nil)
	})
}

func TestPerChannelGivesEachJoinItsOwnBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := endpoint(t, New(&Options{Limit: rate.Every(time.Hour), Burst: 1}))
		c := ep.Client(nil)
		a, b := c.Join("room:a", nil), c.Join("room:b", nil)
		a.Push("say", nil).AssertReply("ok", nil)
		a.Push("say", nil).AssertReply("error", rateLimited)
		b.Push("say", nil).AssertReply("ok", nil)
		b.Push("say", nil).AssertReply("error", rateLimited)

		a.Leave().AssertReply("ok", nil) // leaving is never limited
		a = c.Join("room:a", nil)        // nor joining; a new join starts full
		a.Push("say", nil).AssertReply("ok", nil)
	})
}

func TestPerConnectionSharesOneBudgetAcrossChannels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHook(&Options{Limit: rate.Every(time.Hour), Burst: 2, Scope: PerConnection})
		ep := endpoint(t, h.wrap)
		c := ep.Client(nil)
		a, b := c.Join("room:a", nil), c.Join("room:b", nil)
		a.Push("say", nil).AssertReply("ok", nil)
		b.Push("say", nil).AssertReply("ok", nil)
		a.Push("say", nil).AssertReply("error", rateLimited)
		b.Push("say", nil).AssertReply("error", rateLimited)
		c.Heartbeat().AssertReply("ok", nil) // heartbeats are never limited
		c.Join("room:c", nil)                // nor joins

		other := ep.Client(nil) // another connection has its own budget
		other.Join("room:a", nil).Push("say", nil).AssertReply("ok", nil)
		assert.Equal(t, 2, h.connCount())

		c.Close()
		other.Close()
		synctest.Wait() // the connections' contexts end; their limiters go
		assert.Equal(t, 0, h.connCount(), "limiters are released with their connections")
	})
}

// Landale's Dashboard: at most 50 commands in any trailing 10 s, the 51st
// answered with "backpressure"/"rate_limit_exceeded"; rejected commands do
// not count.
func TestLandaleConfiguration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := endpoint(t, New(&Options{
			Burst:  50,
			Window: 10 * time.Second,
			Match:  func(m *channel.Message) bool { return m.Event != "ping" },
			Reject: func(context.Context, *channel.Socket, *channel.Message) channel.Reply {
				return channel.ErrorReply(channel.ErrorEnvelope("backpressure", "rate_limit_exceeded"))
			},
		}))
		c := ep.Client(nil)
		d := c.Join("room:main", nil)
		backpressure := limitedErr("backpressure", "rate_limit_exceeded")
		for i := 0; i < 49; i++ {
			d.Push("cmd", nil).AssertReply("ok", nil)
		}
		time.Sleep(5 * time.Second)
		d.Push("cmd", nil).AssertReply("ok", nil) // the 50th, 5 s later
		d.Push("cmd", nil).AssertReply("error", backpressure)
		d.Push("ping", nil).AssertReply("ok", nil) // not limited

		time.Sleep(5*time.Second - time.Millisecond) // a token bucket would have refilled by now
		d.Push("cmd", nil).AssertReply("error", backpressure)
		time.Sleep(time.Millisecond) // the first 49 leave the window
		for i := 0; i < 49; i++ {
			d.Push("cmd", nil).AssertReply("ok", nil)
		}
		d.Push("cmd", nil).AssertReply("error", backpressure) // the one at 5 s still counts
		time.Sleep(5 * time.Second)
		d.Push("cmd", nil).AssertReply("ok", nil)
	})
}
