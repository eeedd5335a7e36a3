package channels

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/ratelimit"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

// Dashboard is Landale's DashboardChannel on "dashboard:<room>": OBS and
// Rainwave commands with a per-join rate limit (the ratelimit hook) and a
// service timeout,
// answered with ResponseBuilder envelopes, and the event stream pushed by
// source.
//
// Unlike Landale it subscribes to the "dashboard" PubSub topic only, so
// each event is pushed once (Landale pushes every event twice).
type Dashboard struct {
	base
}

// Hooks answers ping with the envelope and limits the commands: Landale's
// rule, at most RateLimit commands accepted in any trailing RateWindow per
// join, the next answered with envelope-err("backpressure",
// "rate_limit_exceeded"). Only events that are commands count (ping, shout
// and events that fall through to the catch-all do not), and rejected
// commands do not count.
func (c *Dashboard) Hooks() []channel.Middleware {
	return append(envelopeHooks(), ratelimit.New(&ratelimit.Options{
		Burst:  c.d.RateLimit,
		Window: c.d.RateWindow,
		Scope:  ratelimit.PerChannel,
		Match: func(msg *channel.Message) bool {
			_, ok := c.command(msg)
			return ok
		},
		Reject: func(context.Context, *channel.Socket, *channel.Message) channel.Reply {
			return errEnvelopeReply("backpressure", "rate_limit_exceeded")
		},
	}))
}

// Join subscribes to the dashboard event topic and pushes initial_state
// after the reply.
func (c *Dashboard) Join(ctx context.Context, s *channel.Socket, _ channel.Payload) (any, error) {
	c.AfterJoin(func(context.Context) {
		_ = s.Push("initial_state", map[string]any{"connected": true, "timestamp": time.Now().Unix()})
		if s.Topic() == PresenceTopic {
			_ = c.d.Overlays.PushState(s) // then presence_diff on every change
		}
	})
	return nil, c.SubscribeTopics(ctx, events.TopicDashboard)
}

// dashboardCommand is one rate-limited OBS or Rainwave command.
type dashboardCommand struct {
	service string
	// run calls the service and returns the reply data on success.
	run func(ctx context.Context) (any, error)
	// status commands answer errors with service_error, actions with
	// operation_failed.
	status bool
}

// HandleIn handles the commands of the table in the spec (§5.1).
func (c *Dashboard) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	if msg.Event == "shout" {
		// Landale's "test event handler": broadcast the payload as it came.
		return channel.NoReply, s.Broadcast(ctx, "shout", msg.Payload)
	}
	if msg.Event == "connection:info" {
		// pyre addition: lets a page show its connection's correlation id.
		return okEnvelope(map[string]any{
			"correlation_id": s.CorrelationID(),
			"socket_id":      s.Conn().ID(),
			"environment":    s.Assigns()["environment"],
		}), nil
	}
	cmd, ok := c.command(msg)
	if !ok {
		return channel.NoReply, channel.ErrUnhandled
	}
	data, err := call(ctx, &c.base, cmd.service, cmd.run)
	switch {
	case err == nil:
		return okEnvelope(data), nil
	case errors.Is(err, ErrServiceTimeout):
		return errEnvelopeReply("service_timeout", "Service call timed out"), nil
	case cmd.status:
		return errEnvelopeReply("service_error", errorText(err)), nil
	default:
		return errEnvelopeReply("operation_failed", errorText(err)), nil
	}
}

// command maps an event to its command; ok is false for events that fall
// through to Landale's catch-all (unknown events, missing parameters).
func (c *Dashboard) command(msg *channel.Message) (dashboardCommand, bool) {
	w := c.d.World
	p := msg.Payload.Map()
	action := func(name string, fn func(context.Context) (map[string]any, error)) dashboardCommand {
		return dashboardCommand{service: sim.OBS, run: func(ctx context.Context) (any, error) {
			// {:ok, _} is success whatever the data (Landale matches :ok only and crashes).
			if _, err := fn(ctx); err != nil {
				return nil, err
			}
			return map[string]any{"operation": name}, nil
		}}
	}
	switch msg.Event {
	case "obs:get_status":
		return dashboardCommand{service: sim.OBS, status: true, run: func(ctx context.Context) (any, error) {
			return w.OBS.Status(ctx)
		}}, true
	case "obs:start_streaming":
		return action("start_streaming", w.OBS.StartStreaming), true
	case "obs:stop_streaming":
		return action("stop_streaming", w.OBS.StopStreaming), true
	case "obs:start_recording":
		return action("start_recording", w.OBS.StartRecording), true
	case "obs:stop_recording":
		return action("stop_recording", w.OBS.StopRecording), true
	case "obs:set_current_scene":
		v, present := p["scene_name"]
		if !present {
			return dashboardCommand{}, false
		}
		name, _ := v.(string)
		return action("set_current_scene", func(ctx context.Context) (map[string]any, error) {
			return w.OBS.SetCurrentScene(ctx, name)
		}), true
	case "rainwave:get_status":
		return dashboardCommand{service: sim.Rainwave, status: true, run: func(ctx context.Context) (any, error) {
			return w.Rainwave.Status(ctx)
		}}, true
	case "rainwave:set_enabled":
		enabled, ok := p["enabled"].(bool)
		if !ok {
			return dashboardCommand{}, false
		}
		return dashboardCommand{service: sim.Rainwave, run: func(ctx context.Context) (any, error) {
			if err := w.Rainwave.SetEnabled(ctx, enabled); err != nil {
				return nil, err
			}
			return map[string]any{"operation": "set_enabled", "enabled": enabled}, nil
		}}, true
	case "rainwave:set_station":
		id, present := p["station_id"]
		if !present {
			return dashboardCommand{}, false
		}
		return dashboardCommand{service: sim.Rainwave, run: func(ctx context.Context) (any, error) {
			if err := w.Rainwave.SetStation(ctx, id); err != nil {
				return nil, err
			}
			return map[string]any{"operation": "set_station", "station_id": id}, nil
		}}, true
	}
	return dashboardCommand{}, false
}

// HandleInfo pushes events by source: obs_event, twitch_event (or the
// twitch_connected family), ironmon_event, rainwave_event, health_update,
// performance_update and system_event. Stream events are not pushed.
func (c *Dashboard) HandleInfo(ctx context.Context, s *channel.Socket, info any) error {
	msg, h, ok := busEvent(info)
	if !ok {
		return c.Base.HandleInfo(ctx, s, info)
	}
	if name := dashboardEventName(h); name != "" {
		_ = s.Push(name, json.RawMessage(msg.Payload))
	}
	return nil
}

func dashboardEventName(h events.Header) string {
	switch h.Source {
	case events.SourceOBS:
		return "obs_event"
	case events.SourceTwitch:
		switch h.Type {
		case "twitch.connection_established":
			return "twitch_connected"
		case "twitch.connection_lost":
			return "twitch_disconnected"
		case "twitch.connection_changed":
			return "twitch_connection_changed"
		}
		return "twitch_event"
	case events.SourceIronmon:
		return "ironmon_event"
	case events.SourceRainwave:
		return "rainwave_event"
	case events.SourceSystem:
		switch h.Type {
		case "system.health_check":
			return "health_update"
		case "system.performance_metric":
			return "performance_update"
		}
		return "system_event"
	}
	return ""
}
