package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pyre-go/pyre/batcher"
	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
)

// Events is Landale's EventsChannel on "events:<filter>": the normalized
// event stream, filtered by the topic suffix and pushed under an event
// name chosen by source and type.
//
// Beyond Landale (its planned "selective event filtering"), a client may
// narrow the stream with a filter of sources, types and type prefixes, in
// the join params or later with the "filter" event, and may ask for
// {"batch": true} to receive it as event_batch pushes.
type Events struct {
	base
	topic  string // the suffix of the topic: all, chat, goals, ...
	filter ClientFilter
	batch  *channel.PushBatcher[json.RawMessage]
}

// Hooks answers ping with the envelope.
func (c *Events) Hooks() []channel.Middleware { return envelopeHooks() }

// Join accepts any suffix. Join params may carry a client filter
// (sources, types, type_prefixes, at the top level or under "filter") and
// batching (batch, batch_size, batch_interval_ms). A malformed filter
// refuses the join with {"reason": "invalid filter: ..."}.
func (c *Events) Join(ctx context.Context, s *channel.Socket, params channel.Payload) (any, error) {
	c.topic = strings.TrimPrefix(s.Topic(), "events:")
	p := params.Map()
	fp := p
	if nested, ok := p["filter"].(map[string]any); ok {
		fp = nested
	}
	f, err := ParseClientFilter(fp)
	if err != nil {
		return nil, channel.Refuse(map[string]any{"reason": "invalid filter: " + err.Error()})
	}
	c.filter = f
	if p["batch"] == true {
		opts, err := batchOptions(p)
		if err != nil {
			return nil, channel.Refuse(map[string]any{"reason": "invalid batch options: " + err.Error()})
		}
		// Pushes {"events":[...],"count":N,"timestamp":<unix ms>} as
		// event_batch; what is buffered when the channel ends is pushed
		// before phx_close.
		c.batch = channel.NewPushBatcher[json.RawMessage](s, &channel.BatchOptions{Batcher: *opts})
	}
	return nil, c.SubscribeTopics(ctx, events.TopicEvents)
}

func batchOptions(p map[string]any) (*batcher.Options, error) {
	o := &batcher.Options{}
	if v, ok := p["batch_size"]; ok {
		n, isNum := v.(float64)
		if !isNum || n != float64(int(n)) || n < 1 || n > 500 {
			return nil, fmt.Errorf("batch_size must be an integer between 1 and 500")
		}
		o.Size = int(n)
	}
	if v, ok := p["batch_interval_ms"]; ok {
		n, isNum := v.(float64)
		if !isNum || n != float64(int(n)) || n < 10 || n > 10_000 {
			return nil, fmt.Errorf("batch_interval_ms must be an integer between 10 and 10000")
		}
		o.Interval = time.Duration(n) * time.Millisecond
	}
	return o, nil
}

// HandleIn answers "filter" (the client filter); everything else but ping
// gets no reply.
func (c *Events) HandleIn(_ context.Context, _ *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	if msg.Event != "filter" {
		return channel.NoReply, channel.ErrUnhandled
	}
	f, err := ParseClientFilter(msg.Payload.Map())
	if err != nil {
		return errEnvelopeReply("invalid_filter", err.Error()), nil
	}
	c.filter = f
	return okEnvelope(map[string]any{"topic_filter": c.topic, "filter": f.JSON(), "batch": c.batch != nil}), nil
}

// HandleInfo forwards the events that pass the topic and client filters.
func (c *Events) HandleInfo(ctx context.Context, s *channel.Socket, info any) error {
	msg, h, ok := busEvent(info)
	if !ok {
		return c.Base.HandleInfo(ctx, s, info)
	}
	if !TopicFilterAllows(c.topic, h) || !c.filter.Match(h) {
		return nil
	}
	raw := json.RawMessage(msg.Payload)
	if c.batch != nil {
		_ = c.batch.Add(raw)
		return nil
	}
	_ = s.Push(EventName(h), raw)
	return nil
}

// EventName is the EventsChannel push name of an event (forward_event).
func EventName(h events.Header) string {
	switch h.Source {
	case events.SourceTwitch:
		switch h.Type {
		case "channel.chat.message":
			return "chat_message"
		case "channel.chat.clear":
			return "chat_clear"
		case "channel.chat.message_delete":
			return "message_delete"
		case "channel.follow":
			return "follower"
		case "channel.subscribe":
			return "subscription"
		case "channel.subscription.gift":
			return "gift_subscription"
		case "channel.cheer":
			return "cheer"
		case "channel.update":
			return "channel_update"
		}
		return "twitch_event"
	case events.SourceOBS:
		return "obs_event"
	case events.SourceIronmon:
		return "ironmon_event"
	case events.SourceSystem:
		return "system_event"
	case events.SourceRainwave:
		return "rainwave_event"
	case events.SourceStream:
		return "stream_event"
	}
	return "unknown_event"
}

var interactions = map[string]bool{
	"channel.follow": true, "channel.subscribe": true, "channel.subscription.gift": true, "channel.cheer": true,
}

// TopicFilterAllows is Landale's should_forward_event?(filter, source, type).
func TopicFilterAllows(filter string, h events.Header) bool {
	src, typ := h.Source, h.Type
	switch filter {
	case "all":
		return true
	case "twitch", "obs", "ironmon", "system", "stream":
		return src == filter
	case "rainwave", "music":
		return src == events.SourceRainwave
	case "chat":
		return src == events.SourceTwitch && strings.HasPrefix(typ, "channel.chat.")
	case "goals":
		return src == events.SourceTwitch && strings.HasPrefix(typ, "channel.goal.")
	case "interactions":
		return src == events.SourceTwitch && interactions[typ]
	case "dashboard":
		switch src {
		case events.SourceTwitch:
			return typ == "stream.online" || typ == "stream.offline" || typ == "channel.update"
		case events.SourceOBS, events.SourceSystem, events.SourceRainwave, events.SourceIronmon:
			return typ != ""
		}
	}
	return false
}

// ClientFilter is a client-specified event filter, applied on the server
// after the topic filter. An empty dimension matches everything; an event
// passes when its source is in Sources and its type is in Types or starts
// with one of TypePrefixes.
type ClientFilter struct {
	Sources      []string
	Types        []string
	TypePrefixes []string
}

// MaxFilterItems bounds each list of a ClientFilter.
const MaxFilterItems = 100

// ParseClientFilter reads sources, types and type_prefixes from p (other
// keys are ignored). Each must be a list of non-empty strings; sources
// must name known sources.
func ParseClientFilter(p map[string]any) (ClientFilter, error) {
	var f ClientFilter
	var err error
	if f.Sources, err = stringList(p, "sources"); err != nil {
		return f, err
	}
	for _, s := range f.Sources {
		if !events.IsSource(s) {
			return f, fmt.Errorf("sources: unknown source %q (want %s)", s, strings.Join(events.Sources, ", "))
		}
	}
	if f.Types, err = stringList(p, "types"); err != nil {
		return f, err
	}
	if f.TypePrefixes, err = stringList(p, "type_prefixes"); err != nil {
		return f, err
	}
	return f, nil
}

func stringList(p map[string]any, key string) ([]string, error) {
	v, present := p[key]
	if !present || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a list of strings", key)
	}
	if len(list) > MaxFilterItems {
		return nil, fmt.Errorf("%s has more than %d items", key, MaxFilterItems)
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("%s must be a list of non-empty strings", key)
		}
		out = append(out, s)
	}
	return out, nil
}

// Match reports whether the event passes the filter.
func (f ClientFilter) Match(h events.Header) bool {
	if len(f.Sources) > 0 && !contains(f.Sources, h.Source) {
		return false
	}
	if len(f.Types) == 0 && len(f.TypePrefixes) == 0 {
		return true
	}
	if contains(f.Types, h.Type) {
		return true
	}
	for _, p := range f.TypePrefixes {
		if strings.HasPrefix(h.Type, p) {
			return true
		}
	}
	return false
}

// JSON returns the filter as the "filter" reply shows it.
func (f ClientFilter) JSON() map[string]any {
	list := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	return map[string]any{"sources": list(f.Sources), "types": list(f.Types), "type_prefixes": list(f.TypePrefixes)}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
