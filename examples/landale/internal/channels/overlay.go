package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

// Overlay is Landale's OverlayChannel on "overlay:<type>": the overlays'
// "HTTP API parity" commands, answered with the raw service data (no
// envelope) or {"message": "<text>"}, and the events of the overlay's
// source.
type Overlay struct {
	base
	typ string
}

// ping echoes the payload with pong, timestamp and overlay_type.
func (c *Overlay) ping(msg *channel.Message) channel.Reply {
	r := msg.Payload.Map()
	r["pong"] = true
	r["timestamp"] = time.Now().Unix()
	r["overlay_type"] = c.typ
	return channel.OK(r)
}

// Join accepts any overlay type, records it for GET /api/overlays,
// subscribes to events and pushes initial_state after the reply.
func (c *Overlay) Join(ctx context.Context, s *channel.Socket, _ channel.Payload) (any, error) {
	c.typ = strings.TrimPrefix(s.Topic(), "overlay:")
	env, _ := s.Assigns()["environment"].(string)
	if env == "" {
		env = "unknown"
	}
	c.d.Overlays.add(s, OverlayInfo{Topic: s.Topic(), Name: c.typ, CorrelationID: s.CorrelationID(),
		Environment: env, JoinedAt: time.Now().UTC()})
	c.pushInitialState(s)
	return nil, c.SubscribeTopics(ctx, events.TopicEvents)
}

// pushInitialState pushes initial_state {"type": <type>, "data": ...} after
// the join reply: for obs and twitch the service's status, or
// {"connected": false} when the service fails.
func (c *Overlay) pushInitialState(s *channel.Socket) {
	state := func(data map[string]any) map[string]any { return map[string]any{"type": c.typ, "data": data} }
	status := func(service string, fn func(context.Context) (map[string]any, error)) {
		pushInitialState(s, c.d, "initial_state", service, func(ctx context.Context) (map[string]any, error) {
			st, err := fn(ctx)
			return state(map[string]any{"connected": true, "status": st}), err
		}, func() map[string]any { return state(map[string]any{"connected": false}) })
	}
	switch c.typ {
	case "obs":
		status(sim.OBS, c.d.World.OBS.Status)
		return
	case "twitch":
		status(sim.Twitch, c.d.World.Twitch.Status)
		return
	}
	c.AfterJoin(func(context.Context) {
		data := map[string]any{"connected": true}
		if c.typ == "system" {
			data["timestamp"] = time.Now().Unix()
		}
		_ = s.Push("initial_state", state(data))
	})
}

// overlayCommand runs one command and returns its raw result.
type overlayCommand struct {
	service string
	run     func(ctx context.Context) (any, error)
}

// HandleIn runs the command table of the spec (§5.4).
func (c *Overlay) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	p := numberMap(msg.Payload)
	switch msg.Event {
	case "ping":
		return c.ping(msg), nil
	case "system:status":
		return channel.OK(c.systemStatus(ctx)), nil
	case "system:services":
		return channel.OK(c.systemServices(ctx)), nil
	case "get_layer_mappings":
		m, err := c.d.Producer.LayerMappings(ctx)
		if err != nil {
			return messageReply(errorText(err)), nil
		}
		return channel.OK(m), nil
	}
	cmd, errMsg := c.command(msg.Event, p)
	if errMsg != "" {
		return messageReply(errMsg), nil
	}
	if cmd.run == nil {
		return messageReply("Unknown command: " + msg.Event), nil
	}
	out, err := call(ctx, &c.base, cmd.service, cmd.run)
	if err != nil {
		return messageReply(errorText(err)), nil
	}
	return channel.OK(out), nil
}

func messageReply(text string) channel.Reply {
	return channel.ErrorReply(map[string]any{"message": text})
}

// command returns the command for event, or a validation message.
func (c *Overlay) command(event string, p map[string]any) (overlayCommand, string) {
	w := c.d.World
	obs := func(fn func(context.Context) (map[string]any, error)) overlayCommand {
		return overlayCommand{service: sim.OBS, run: func(ctx context.Context) (any, error) { return fn(ctx) }}
	}
	im := func(fn func(context.Context) (any, error)) overlayCommand {
		return overlayCommand{service: sim.Ironmon, run: fn}
	}
	switch event {
	case "obs:status":
		return obs(w.OBS.Status), ""
	case "obs:scenes":
		return obs(w.OBS.SceneList), ""
	case "obs:stream_status":
		return obs(w.OBS.StreamStatus), ""
	case "obs:record_status":
		return obs(w.OBS.RecordStatus), ""
	case "obs:stats":
		return obs(w.OBS.Stats), ""
	case "obs:version":
		return obs(w.OBS.Version), ""
	case "obs:virtual_cam":
		return obs(w.OBS.VirtualCam), ""
	case "obs:outputs":
		return obs(w.OBS.Outputs), ""
	case "twitch:status":
		return overlayCommand{service: sim.Twitch, run: func(ctx context.Context) (any, error) { return w.Twitch.Status(ctx) }}, ""
	case "rainwave:status":
		return overlayCommand{service: sim.Rainwave, run: func(ctx context.Context) (any, error) { return w.Rainwave.Status(ctx) }}, ""
	case "ironmon:status":
		return im(func(ctx context.Context) (any, error) { return w.Ironmon.Status(ctx) }), ""
	case "ironmon:challenges":
		return im(func(ctx context.Context) (any, error) { return w.Ironmon.ListChallenges(ctx) }), ""
	case "ironmon:checkpoints":
		id, msg := positiveParam(p, "challenge_id")
		return im(func(ctx context.Context) (any, error) { return w.Ironmon.ListCheckpoints(ctx, id) }), msg
	case "ironmon:checkpoint_stats":
		id, msg := positiveParam(p, "checkpoint_id")
		return im(func(ctx context.Context) (any, error) { return w.Ironmon.CheckpointStats(ctx, id) }), msg
	case "ironmon:active_challenge":
		id, msg := positiveParam(p, "seed_id")
		return im(func(ctx context.Context) (any, error) { return w.Ironmon.ActiveChallenge(ctx, id) }), msg
	case "ironmon:recent_results":
		limit := 10
		if v, present := p["limit"]; present {
			n, ok := parsePositive(v)
			if !ok || n > 100 {
				return overlayCommand{}, "Parameter 'limit' must be an integer between 1 and 100"
			}
			limit = n
		}
		return im(func(ctx context.Context) (any, error) { return w.Ironmon.RecentResults(ctx, limit) }), ""
	}
	return overlayCommand{}, ""
}

// numberMap decodes an object payload keeping numbers as json.Number, so
// that 7 and 7.0 can be told apart as Elixir does.
func numberMap(p channel.Payload) map[string]any {
	m := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(p.Bytes()))
	dec.UseNumber()
	if p.IsBinary() || dec.Decode(&m) != nil || m == nil {
		return map[string]any{}
	}
	return m
}

// positiveParam reads a required positive integer parameter with Landale's
// messages.
func positiveParam(p map[string]any, key string) (int, string) {
	v, present := p[key]
	if !present {
		return 0, "Missing required parameters: " + key
	}
	n, ok := parsePositive(v)
	if !ok {
		return 0, "Parameter '" + key + "' must be a positive integer"
	}
	return n, ""
}

// parsePositive accepts an integer > 0 or a string that is entirely such
// an integer; floats, null and anything else fail.
func parsePositive(v any) (int, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// HandleInfo pushes the events of the overlay's source.
func (c *Overlay) HandleInfo(ctx context.Context, s *channel.Socket, info any) error {
	msg, h, ok := busEvent(info)
	if !ok {
		return c.Base.HandleInfo(ctx, s, info)
	}
	var name string
	switch {
	case c.typ == "obs" && h.Source == events.SourceOBS:
		name = "obs_event"
	case c.typ == "twitch" && h.Source == events.SourceTwitch:
		name = "twitch_event"
	case c.typ == "ironmon" && h.Source == events.SourceIronmon:
		name = "ironmon_event"
	case c.typ == "music" && h.Source == events.SourceRainwave:
		name = "music_event"
	case c.typ == "system" && h.Source == events.SourceSystem:
		name = "system_event"
	default:
		return nil
	}
	_ = s.Push(name, json.RawMessage(msg.Payload))
	return nil
}
