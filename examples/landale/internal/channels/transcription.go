package channels

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/transcript"
	"github.com/pyre-go/pyre/pubsub"
)

// Internal PubSub topics of transcription broadcasts. They differ from the
// channel topics so that the relay is a per-channel push (with join_ref),
// as Landale's handle_info does, not a fastlane broadcast.
const (
	transcriptionLiveTopic   = "transcriptions:live"
	transcriptionSessionPfx  = "transcriptions:session:"
	transcriptionPubSubEvent = "new_transcription"
)

// Transcription is Landale's TranscriptionChannel on "transcription:live"
// and "transcription:session:<id>": submissions (validated with Landale's
// messages), history, and live new_transcription pushes.
type Transcription struct {
	base
	session string
	isLive  bool
}

// errInvalidTranscriptionTopic is the join error text of other
// transcription:* topics.
const errInvalidTranscriptionTopic = "Invalid transcription channel. Use 'transcription:live' or 'transcription:session:{session_id}'"

// ping echoes the payload with pong, an ISO timestamp and the channel type.
func (c *Transcription) ping(msg *channel.Message) channel.Reply {
	r := msg.Payload.Map()
	r["pong"] = true
	r["timestamp"] = isoNow()
	r["channel_type"] = c.channelType()
	return channel.OK(r)
}

func (c *Transcription) channelType() string {
	if c.isLive {
		return "live"
	}
	return "session:" + c.session
}

// Join accepts transcription:live and transcription:session:<id> (any id,
// even empty) and pushes connection_established after the reply.
func (c *Transcription) Join(ctx context.Context, s *channel.Socket, _ channel.Payload) (any, error) {
	topic := s.Topic()
	established := map[string]any{"timestamp": isoNow(), "status": "connected"}
	var sub string
	switch {
	case topic == "transcription:live":
		c.isLive = true
		sub = transcriptionLiveTopic
		established["type"] = "transcription:live"
	case strings.HasPrefix(topic, "transcription:session:"):
		c.session = strings.TrimPrefix(topic, "transcription:session:")
		s.Assign("session_id", c.session)
		sub = transcriptionSessionPfx + c.session
		established["type"] = "transcription:session"
		established["session_id"] = c.session
	default:
		return nil, channel.Refuse(map[string]any{"reason": errInvalidTranscriptionTopic})
	}
	c.AfterJoin(func(context.Context) { _ = s.Push("connection_established", established) })
	return nil, c.SubscribeTopics(ctx, sub)
}

// HandleIn handles get_recent, get_session_transcriptions and
// submit_transcription; anything else is an unknown command.
func (c *Transcription) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	p := msg.Payload.Map()
	switch msg.Event {
	case "ping":
		return c.ping(msg), nil
	case "get_recent":
		minutes := 5.0
		if v, present := p["minutes"]; present {
			n, ok := v.(float64)
			if !ok || n != float64(int64(n)) {
				// Landale crashes the channel here; this port answers.
				return messageReply("Parameter 'minutes' must be an integer"), nil
			}
			minutes = n
		}
		list := c.d.Transcripts.Recent(time.Now().Add(-time.Duration(minutes * float64(time.Minute))))
		return channel.OK(map[string]any{"transcriptions": transcriptionsJSON(list), "count": len(list)}), nil
	case "get_session_transcriptions":
		if c.isLive {
			return messageReply("Session transcriptions only available on session channels"), nil
		}
		limit := 100
		if v, present := p["limit"]; present {
			n, ok := v.(float64)
			if !ok || n != float64(int64(n)) || n < 0 {
				return messageReply("Parameter 'limit' must be a non-negative integer"), nil
			}
			limit = int(n)
		}
		list := c.d.Transcripts.Session(c.session, limit)
		return channel.OK(map[string]any{"session_id": c.session, "transcriptions": transcriptionsJSON(list),
			"count": len(list)}), nil
	case "submit_transcription":
		t, err := transcript.Validate(p)
		var verrs transcript.Errors
		if errors.As(err, &verrs) {
			return channel.ErrorReply(map[string]any{"errors": verrs}), nil
		}
		if err != nil {
			return messageReply(err.Error()), nil
		}
		if err := Submit(ctx, c.d, t, s.CorrelationID()); err != nil {
			return messageReply(err.Error()), nil
		}
		return channel.OK(map[string]any{"transcription_id": t.ID}), nil
	}
	return messageReply("Unknown command: " + msg.Event), nil
}

func transcriptionsJSON(list []*transcript.Transcription) []any {
	out := make([]any, 0, len(list))
	for _, t := range list {
		out = append(out, t.JSON())
	}
	return out
}

// Submit stores a transcription and broadcasts new_transcription to
// transcription:live and, when it has a stream session, to
// transcription:session:<id>. correlationID is the submitter's ("" for
// none).
func Submit(ctx context.Context, d *Deps, t *transcript.Transcription, correlationID string) error {
	d.Transcripts.Add(t)
	payload, err := json.Marshal(t.Broadcast(correlationID))
	if err != nil {
		return err
	}
	topics := []string{transcriptionLiveTopic}
	if t.StreamSessionID != nil {
		topics = append(topics, transcriptionSessionPfx+*t.StreamSessionID)
	}
	for _, topic := range topics {
		msg := &pubsub.Message{Topic: topic, Event: transcriptionPubSubEvent, Payload: payload}
		if err := d.Bus.PubSub().Broadcast(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

// SubmitText stores a transcription of text said now (the demo generator's
// microphone) with a plausible duration and confidence.
func SubmitText(ctx context.Context, d *Deps, text string) error {
	conf := 0.86 + float64(len(text)%13)/100
	session := "stream_" + time.Now().UTC().Format("2006_01_02")
	src := "phononmaser"
	t, err := transcript.Validate(map[string]any{
		"timestamp": events.FormatTime(time.Now()), "duration": 0.4 + float64(len(text))/18,
		"text": text, "confidence": conf, "source_id": src, "stream_session_id": session,
	})
	if err != nil {
		return err
	}
	return Submit(ctx, d, t, "")
}

// HandleInfo pushes new_transcription (and the session_started,
// session_ended and transcription_stats relays Landale keeps, which
// nothing produces).
func (c *Transcription) HandleInfo(ctx context.Context, s *channel.Socket, info any) error {
	msg, ok := info.(*pubsub.Message)
	if !ok {
		return c.Base.HandleInfo(ctx, s, info)
	}
	switch msg.Event {
	case transcriptionPubSubEvent, "session_started", "session_ended", "transcription_stats":
		_ = s.Push(msg.Event, json.RawMessage(msg.Payload))
		return nil
	}
	return c.Base.HandleInfo(ctx, s, info)
}
