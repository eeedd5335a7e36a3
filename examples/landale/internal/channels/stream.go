package channels

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/examples/landale/internal/stream"
)

// Stream is Landale's StreamChannel on "stream:overlays" and
// "stream:queue": the omnibar state, the takeover relay and the dashboard's
// stream commands, answered with envelopes.
//
// Unlike Landale, every validated takeover is broadcast (Landale drops all
// but screen-cover), and the queue channel never crashes: when the state
// producer fails the fallback state is pushed.
type Stream struct {
	base
	queue bool // stream:queue, else stream:overlays
}

// errNoSuchStreamTopic refuses joins of other stream:* topics; pyre
// answers {"reason":"join crashed"} as Phoenix does for a missing clause.
var errNoSuchStreamTopic = errors.New("channels: no StreamChannel clause for this topic")

// Hooks answers ping with the envelope.
func (c *Stream) Hooks() []channel.Middleware { return envelopeHooks() }

// Join accepts stream:overlays (tracked as an overlay named by the join
// param overlay_type, default "Takeover") and stream:queue, and pushes the
// initial stream_state or queue_state after the reply.
func (c *Stream) Join(ctx context.Context, s *channel.Socket, params channel.Payload) (any, error) {
	switch s.Topic() {
	case "stream:overlays":
		name, _ := params.Map()["overlay_type"].(string)
		if name == "" {
			name = "Takeover"
		}
		env, _ := s.Assigns()["environment"].(string)
		if env == "" {
			env = "unknown"
		}
		c.d.Overlays.add(s, OverlayInfo{Topic: s.Topic(), Name: name, CorrelationID: s.CorrelationID(),
			Environment: env, JoinedAt: time.Now().UTC()})
		pushInitialState(s, c.d, "stream_state", sim.Stream, c.d.Producer.State, fallbackLayerState)
	case "stream:queue":
		c.queue = true
		pushInitialState(s, c.d, "queue_state", sim.Stream, c.d.Producer.QueueState, stream.FallbackQueueState)
	default:
		return nil, errNoSuchStreamTopic
	}
	return nil, c.SubscribeTopics(ctx, events.TopicEvents)
}

// state returns the producer's state, or Landale's fallback layer state.
func (c *Stream) state(ctx context.Context) map[string]any {
	return withFallback(ctx, c.Socket(), c.d, sim.Stream, c.d.Producer.State, fallbackLayerState)
}

func fallbackLayerState() map[string]any { return stream.FallbackLayerState(time.Now()) }

func (c *Stream) queueState(ctx context.Context) (map[string]any, error) {
	return call(ctx, &c.base, sim.Stream, c.d.Producer.QueueState)
}

// HandleIn runs the command table of the spec (§5.5).
func (c *Stream) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	p := msg.Payload.Map()
	switch msg.Event {
	case "request_state":
		return channel.NoReply, push(s, "stream_state", c.state(ctx))
	case "request_queue_state":
		q := withFallback(ctx, s, c.d, sim.Stream, c.d.Producer.QueueState, stream.FallbackRequestQueueState)
		return channel.NoReply, push(s, "queue_state", q)
	case "remove_queue_item":
		return c.removeQueueItem(ctx, p), nil
	case "force_content":
		return c.forceContent(ctx, p)
	case "takeover":
		return c.takeover(ctx, p), nil
	case "takeover_clear":
		if _, err := c.d.Bus.Publish(ctx, "stream.takeover_cleared", map[string]any{"timestamp": isoNow()}); err != nil {
			return errEnvelopeReply("publish_failed", err.Error()), nil
		}
		return okEnvelope(map[string]any{"operation": "takeover_cleared"}), nil
	case "update_channel_info":
		return c.updateChannelInfo(ctx, p), nil
	case "get_channel_info":
		return c.getChannelInfo(ctx), nil
	case "search_categories":
		q, ok := p["query"].(string)
		if !ok {
			return channel.NoReply, channel.ErrUnhandled
		}
		list, err := call(ctx, &c.base, sim.Twitch, func(ctx context.Context) ([]any, error) {
			return c.d.World.Twitch.SearchCategories(ctx, q)
		})
		if err != nil {
			return errEnvelopeReply("api_error", errorText(err)), nil
		}
		return okEnvelope(list), nil
	}
	return channel.NoReply, channel.ErrUnhandled
}

// producerError maps a failed producer call to Landale's error envelope.
func producerError(err error) channel.Reply {
	if errors.Is(err, sim.ErrDown) {
		return errEnvelopeReply("stream_producer_not_started", "StreamProducer service is not started")
	}
	return errEnvelopeReply("stream_producer_unavailable", "StreamProducer service is not available")
}

func (c *Stream) removeQueueItem(ctx context.Context, p map[string]any) channel.Reply {
	id, _ := p["id"].(string)
	if id == "" {
		return errEnvelopeReply("validation_failed", "Missing required field: id")
	}
	_, err := call(ctx, &c.base, sim.Stream, errOnly(func(ctx context.Context) error { return c.d.Producer.RemoveItem(ctx, id) }))
	if err != nil {
		return producerError(err)
	}
	return okEnvelope(map[string]any{"operation": "item_removed", "id": id})
}

// forceContent needs type, data and duration; without any of them it falls
// through to the catch-all (no reply), as in Landale.
func (c *Stream) forceContent(ctx context.Context, p map[string]any) (channel.Reply, error) {
	typ, okT := p["type"].(string)
	data, okD := p["data"].(map[string]any)
	dur, okN := p["duration"].(float64)
	if !okT || !okD || !okN || dur != float64(int64(dur)) {
		return channel.NoReply, channel.ErrUnhandled
	}
	if dur <= 0 {
		return errEnvelopeReply("validation_failed", "Field 'duration' must be a positive integer"), nil
	}
	_, err := call(ctx, &c.base, sim.Stream, func(ctx context.Context) (string, error) {
		return c.d.Producer.ForceContent(ctx, typ, data, time.Duration(dur)*time.Millisecond)
	})
	if err != nil {
		return producerError(err), nil
	}
	return okEnvelope(map[string]any{"operation": "override_sent", "type": typ}), nil
}

// takeover validates and publishes stream.takeover_started, which every
// stream:* channel relays as a takeover push.
func (c *Stream) takeover(ctx context.Context, p map[string]any) channel.Reply {
	typ, _ := p["type"].(string)
	if strings.TrimSpace(typ) == "" {
		return errEnvelopeReply("validation_failed", "Missing required field: type")
	}
	message, hasMessage := p["message"].(string)
	if !hasMessage && typ != "screen-cover" {
		return errEnvelopeReply("validation_failed", "Missing required field: message")
	}
	duration := int64(10_000)
	if v, present := p["duration"]; present && v != nil {
		n, ok := v.(float64)
		if !ok || n <= 0 || n != float64(int64(n)) {
			return errEnvelopeReply("validation_failed", "Field 'duration' must be a positive integer")
		}
		duration = int64(n)
	}
	var msg any = message
	if strings.TrimSpace(message) == "" {
		msg = nil // Landale's cast drops blank strings
	}
	_, err := c.d.Bus.Publish(ctx, "stream.takeover_started", map[string]any{
		"takeover_type": typ, "message": msg, "duration": duration, "timestamp": isoNow(),
	})
	if err != nil {
		return errEnvelopeReply("validation_failed", err.Error())
	}
	return okEnvelope(map[string]any{"operation": "takeover_sent", "type": typ})
}

func (c *Stream) updateChannelInfo(ctx context.Context, p map[string]any) channel.Reply {
	fields := map[string]any{}
	for _, k := range sim.ChannelFields {
		if v, ok := p[k]; ok && v != nil {
			fields[k] = v
		}
	}
	if len(fields) == 0 {
		return errEnvelopeReply("validation_failed",
			"At least one valid field must be provided: "+strings.Join(sim.ChannelFields, ", "))
	}
	_, err := call(ctx, &c.base, sim.Twitch, errOnly(func(ctx context.Context) error {
		return c.d.World.Twitch.UpdateChannelInfo(ctx, fields)
	}))
	if err != nil {
		return errEnvelopeReply("api_error", errorText(err))
	}
	return okEnvelope(map[string]any{"operation": "channel_info_updated"})
}

func (c *Stream) getChannelInfo(ctx context.Context) channel.Reply {
	list, err := call(ctx, &c.base, sim.Twitch, c.d.World.Twitch.ChannelInfo)
	switch {
	case err != nil:
		return errEnvelopeReply("api_error", errorText(err))
	case len(list) == 0:
		return errEnvelopeReply("no_data", "No channel information available")
	}
	return okEnvelope(list[0])
}

// HandleInfo relays stream.* events: state updates (as stream_state on
// overlays and queue_state on queue), show changes, emote increments,
// takeovers and removed interrupts.
func (c *Stream) HandleInfo(ctx context.Context, s *channel.Socket, info any) error {
	msg, h, ok := busEvent(info)
	if !ok {
		return c.Base.HandleInfo(ctx, s, info)
	}
	if h.Source != events.SourceStream {
		return nil
	}
	e, ok := events.Decode(msg)
	if !ok {
		return nil
	}
	switch h.Type {
	case "stream.state_updated":
		st := stream.StateFromEvent(e)
		if c.queue {
			return push(s, "queue_state", stream.FormatQueue(st, time.Now()))
		}
		return push(s, "stream_state", st)
	case "stream.interrupt_removed":
		if c.queue {
			if q, err := c.queueState(ctx); err == nil {
				return push(s, "queue_state", q)
			}
			return nil
		}
		st, err := call(ctx, &c.base, sim.Stream, c.d.Producer.State)
		if err == nil {
			return push(s, "stream_state", st)
		}
		return nil
	case "stream.show_changed":
		return push(s, "show_changed", map[string]any{"show": e["show"],
			"game": map[string]any{"id": e["game_id"], "name": e["game_name"]}, "title": e["title"],
			"changed_at": e["changed_at"]})
	case "stream.emote_increment":
		return push(s, "content_update", map[string]any{"type": "emote_increment",
			"data":      map[string]any{"emotes": e["emotes"], "native_emotes": e["native_emotes"], "username": e["user_name"]},
			"timestamp": e["timestamp"]})
	case "stream.takeover_started":
		return push(s, "takeover", map[string]any{"type": e["takeover_type"], "message": e["message"],
			"duration": e["duration"], "timestamp": e["timestamp"]})
	case "stream.takeover_cleared":
		return push(s, "takeover_clear", map[string]any{"timestamp": e["timestamp"]})
	}
	return nil
}

// push pushes and ignores ErrClosed: a push racing the channel's end is
// not an error of the channel.
func push(s *channel.Socket, event string, payload any) error {
	_ = s.Push(event, payload)
	return nil
}
