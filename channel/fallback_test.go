package channel_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/fallback"
)

var errOBSDown = errors.New("OBS WebSocket not connected")

// statusCaller answers "status" through WithFallback with an OBS that is
// down; the fallback reports why it was used.
type statusCaller struct {
	channel.Base
	calls *atomic.Int64
}

func (*statusCaller) Join(context.Context, *channel.Socket, channel.Payload) (any, error) {
	return nil, nil
}

func (c *statusCaller) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	res, err := channel.WithFallback(ctx, s, "obs",
		func(context.Context) (string, error) {
			c.calls.Add(1)
			return "", errOBSDown
		},
		func(_ context.Context, err error) (string, error) {
			switch {
			case errors.Is(err, fallback.ErrOpen) && errors.Is(err, errOBSDown):
				return "open: " + errOBSDown.Error(), nil
			case errors.Is(err, fallback.ErrOpen):
				return "open", nil
			}
			return "failed: " + err.Error(), nil
		})
	if err != nil {
		return channel.NoReply, err
	}
	return channel.OK(map[string]any{"answer": res.Value}), nil
}

// ownBreakers is a statusCaller with breakers of its own (BreakerSource).
type ownBreakers struct {
	statusCaller
	reg *fallback.Registry // nil: unguarded
}

func (c *ownBreakers) Breaker(service string) *fallback.Breaker {
	if c.reg == nil {
		return nil
	}
	return c.reg.Breaker(service)
}

// A channel that is a BreakerSource guards WithFallback with its own
// breakers (or none), not the server's; an open breaker's rejection
// carries the service's last failure.
func TestWithFallbackUsesTheChannelsBreakers(t *testing.T) {
	once := &fallback.BreakerOptions{FailureThreshold: 1, CoolDown: time.Hour}
	own := fallback.NewRegistry(once)
	var ownCalls, noneCalls, srvCalls atomic.Int64
	r := channel.NewRouter()
	r.Handle("own", func() channel.Channel {
		return &ownBreakers{statusCaller: statusCaller{calls: &ownCalls}, reg: own}
	})
	r.Handle("none", func() channel.Channel { return &ownBreakers{statusCaller: statusCaller{calls: &noneCalls}} })
	r.Handle("server", func() channel.Channel { return &statusCaller{calls: &srvCalls} })
	srvBreakers := fallback.NewRegistry(once)
	ep := channeltest.New(t, r, &channeltest.Options{Server: channel.Options{Breakers: srvBreakers}})
	c := ep.Client(nil)

	ch := c.Join("own", nil)
	ch.Push("status", nil).AssertReply("ok", map[string]any{"answer": "failed: " + errOBSDown.Error()})
	ch.Push("status", nil).AssertReply("ok", map[string]any{"answer": "open: " + errOBSDown.Error()})
	assert.Equal(t, int64(1), ownCalls.Load(), "not called while open")
	assert.Equal(t, map[string]fallback.State{"obs": fallback.Open}, own.States())
	assert.Empty(t, srvBreakers.States(), "the server's breakers are not used")

	ch = c.Join("none", nil)
	for range 3 {
		ch.Push("status", nil).AssertReply("ok", map[string]any{"answer": "failed: " + errOBSDown.Error()})
	}
	assert.Equal(t, int64(3), noneCalls.Load(), "a nil breaker calls the service every time")
	assert.Empty(t, srvBreakers.States())

	ch = c.Join("server", nil)
	ch.Push("status", nil).AssertReply("ok", map[string]any{"answer": "failed: " + errOBSDown.Error()})
	ch.Push("status", nil).AssertReply("ok", map[string]any{"answer": "open: " + errOBSDown.Error()})
	assert.Equal(t, map[string]fallback.State{"obs": fallback.Open}, srvBreakers.States())
	assert.Same(t, srvBreakers, ep.Server().Breakers())
}
