package main

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/pubsub"
)

// room is the checklist's RoomChannel.
type room struct {
	channel.Base
}

func (r *room) Join(ctx context.Context, s *channel.Socket, params channel.Payload) (any, error) {
	p := params.Map()
	if p["reject"] == true {
		return nil, channel.Refuse(map[string]string{"reason": "unauthorized"})
	}
	if p["crash"] == true {
		panic("join crash requested")
	}
	if err := r.SubscribeTopics(ctx, controlTopic(s.Topic())); err != nil {
		return nil, err
	}
	r.AfterJoin(func(context.Context) {
		_ = s.Push("joined", map[string]string{"status": "connected"})
	})
	return nil, nil
}

func (r *room) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	switch msg.Event {
	case "new_msg":
		if err := s.Broadcast(ctx, "new_msg", msg.Payload); err != nil {
			return channel.ErrorReply(map[string]string{"reason": err.Error()}), nil
		}
		return channel.OK(nil), nil
	case "new_msg_from":
		if err := s.BroadcastFrom(ctx, "new_msg_from", msg.Payload); err != nil {
			return channel.ErrorReply(map[string]string{"reason": err.Error()}), nil
		}
		return channel.OK(nil), nil
	case "boom":
		panic("boom")
	case "stop":
		return channel.NoReply, channel.ErrStop
	case "bin":
		data := append(append([]byte(nil), msg.Payload.Bytes()...), 3, 4)
		if err := s.Push("bin", channel.Binary{0, 1}); err != nil {
			return channel.NoReply, err
		}
		return channel.OK(channel.Binary(data)), nil
	case "async":
		ref := msg.Ref
		go func() {
			t := time.NewTimer(5 * time.Millisecond)
			defer t.Stop()
			for n := 1; n <= 2; n++ {
				select {
				case <-s.Context().Done():
					return
				case <-t.C:
				}
				_ = s.Reply(ref, channel.OK(map[string]int{"n": n}))
				t.Reset(5 * time.Millisecond)
			}
		}()
		return channel.NoReply, nil
	case "bcast_then_push":
		if err := s.Broadcast(ctx, "b", nil); err != nil {
			return channel.NoReply, err
		}
		return channel.NoReply, s.Push("p", nil)
	case "info":
		c := s.Conn()
		return channel.OK(map[string]any{
			"params":     c.Params(),
			"auth_token": nullable(c.AuthToken()),
			"socket_id":  nullable(c.ID()),
		}), nil
	}
	return channel.NoReply, channel.ErrUnhandled
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Intercepts routes "filtered" and "decorated" broadcasts to HandleOut.
func (r *room) Intercepts() []string { return []string{"filtered", "decorated"} }

func (r *room) HandleOut(_ context.Context, s *channel.Socket, msg *channel.Message) error {
	switch msg.Event {
	case "filtered":
		return nil
	case "decorated":
		p := map[string]any{}
		if err := msg.Payload.Decode(&p); err != nil {
			return err
		}
		out := maps.Clone(p)
		out["decorated"] = true
		return s.Push(msg.Event, out)
	}
	return s.Push(msg.Event, msg.Payload)
}

// HandleInfo receives /control/push requests for this topic.
func (r *room) HandleInfo(_ context.Context, s *channel.Socket, info any) error {
	m, ok := info.(*pubsub.Message)
	if !ok || m.Event != "push" {
		return nil
	}
	var req controlRequest
	if err := json.Unmarshal(m.Payload, &req); err != nil {
		return errors.New("bad control push")
	}
	joinRef := ""
	if req.JoinRef != nil {
		joinRef = *req.JoinRef
	}
	return s.Conn().PushRaw(joinRef, req.Topic, req.Event, req.Payload)
}
