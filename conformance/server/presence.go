package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/presence"
)

// registerPresence routes presence:* to the checklist's presence channel:
// the connect param user_id is tracked as the key with meta
// {"status":"online"} after the join, presence_state is pushed after the
// join reply, and the event "away" updates the meta to {"status":"away"}.
//
// The join param "track_first": true tracks before pushing the state, so
// that the client's own join diff arrives before presence_state (phoenix.js
// must buffer it and apply it after the state).
//
// The tracker starts with the first join, on that socket's server and
// PubSub, so presences replicate between servers sharing a -pubsub broker.
// The environment variable PYRE_PRESENCE_HEARTBEAT (a Go duration) sets its
// heartbeat interval; the node timeout is five intervals. The returned
// function shuts the tracker down (a goodbye to the other nodes).
func registerPresence(r *channel.Router, o appOptions) func(context.Context) error {
	pt := &presenceTracker{logger: o.Logger}
	if v := os.Getenv("PYRE_PRESENCE_HEARTBEAT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			pt.heartbeat = d
		}
	}
	r.Handle("presence:*", func() channel.Channel { return &presenceChannel{pt: pt} })
	return pt.shutdown
}

// presenceTracker creates the tracker on first use.
type presenceTracker struct {
	logger    *slog.Logger
	heartbeat time.Duration

	mu  sync.Mutex
	tr  *presence.Tracker
	err error
}

func (p *presenceTracker) get(ctx context.Context, srv *channel.Server) (*presence.Tracker, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tr == nil && p.err == nil {
		p.tr, p.err = presence.New(ctx, &presence.Options{Server: srv, Logger: p.logger, HeartbeatInterval: p.heartbeat})
	}
	return p.tr, p.err
}

func (p *presenceTracker) shutdown(ctx context.Context) error {
	p.mu.Lock()
	tr := p.tr
	p.mu.Unlock()
	if tr == nil {
		return nil
	}
	return tr.Shutdown(ctx)
}

type presenceChannel struct {
	channel.Base
	pt  *presenceTracker
	tr  *presence.Tracker
	key string
}

func (c *presenceChannel) Join(ctx context.Context, s *channel.Socket, params channel.Payload) (any, error) {
	key, _ := s.Conn().Params()["user_id"].(string)
	if key == "" {
		key, _ = params.Map()["user_id"].(string)
	}
	if key == "" {
		return nil, channel.Refuse(map[string]string{"reason": "user_id required"})
	}
	tr, err := c.pt.get(ctx, s.Server())
	if err != nil {
		return nil, err
	}
	c.tr, c.key = tr, key
	trackFirst := params.Map()["track_first"] == true
	c.AfterJoin(func(ctx context.Context) {
		if trackFirst {
			c.track(ctx, s)
			c.pushState(ctx, s)
			return
		}
		c.pushState(ctx, s)
		c.track(ctx, s)
	})
	return nil, nil
}

func (c *presenceChannel) track(ctx context.Context, s *channel.Socket) {
	if _, err := c.tr.Track(s, c.key, map[string]any{"status": "online"}); err != nil {
		s.Logger().LogAttrs(ctx, slog.LevelError, "presence track failed", slog.Any("error", err))
	}
}

func (c *presenceChannel) pushState(ctx context.Context, s *channel.Socket) {
	if err := c.tr.PushState(s); err != nil {
		s.Logger().LogAttrs(ctx, slog.LevelError, "presence_state push failed", slog.Any("error", err))
	}
}

func (c *presenceChannel) HandleIn(_ context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	switch msg.Event {
	case "away":
		_, err := c.tr.Update(s, c.key, map[string]any{"status": "away"})
		if errors.Is(err, presence.ErrNotTracked) {
			return channel.ErrorReply(map[string]string{"reason": "not tracked"}), nil
		}
		if err != nil {
			return channel.ErrorReply(map[string]string{"reason": err.Error()}), nil
		}
		return channel.OK(nil), nil
	}
	return channel.NoReply, channel.ErrUnhandled
}
