package presence_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/presence"
	"github.com/pyre-go/pyre/pubsub"
)

// roomChannel is the test app: after the join it pushes presence_state
// and tracks params.key (unless params.key is empty) with params.meta on
// params.topic (default: its own). Events drive the rest of the API and
// reply {"ref":…} or an error {"reason": <sentinel name>}.
type roomChannel struct {
	channel.Base
	tr func() *presence.Tracker
}

type trackParams struct {
	Key   string         `json:"key"`
	Topic string         `json:"topic"`
	Meta  map[string]any `json:"meta"`
}

func (c *roomChannel) Join(_ context.Context, s *channel.Socket, p channel.Payload) (any, error) {
	var tp trackParams
	if err := p.Decode(&tp); err != nil {
		return nil, channel.Refuse(map[string]string{"reason": "bad params"})
	}
	c.AfterJoin(func(context.Context) {
		tr := c.tr()
		if err := tr.PushState(s); err != nil {
			panic(err)
		}
		if tp.Key != "" {
			if _, err := tr.TrackTopic(s, topicOr(tp.Topic, s.Topic()), tp.Key, tp.Meta); err != nil {
				panic(err)
			}
		}
	})
	return nil, nil
}

func topicOr(t, def string) string {
	if t == "" {
		return def
	}
	return t
}

func (c *roomChannel) HandleIn(_ context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	var tp trackParams
	if err := msg.Payload.Decode(&tp); err != nil {
		return channel.ErrorReply(map[string]string{"reason": "bad params"}), nil
	}
	tr := c.tr()
	topic := topicOr(tp.Topic, s.Topic())
	var ref string
	var err error
	switch msg.Event {
	case "track":
		ref, err = tr.TrackTopic(s, topic, tp.Key, tp.Meta)
	case "update":
		ref, err = tr.UpdateTopic(s, topic, tp.Key, tp.Meta)
	case "untrack":
		err = tr.UntrackTopic(s, topic, tp.Key)
	case "untrack_all":
		err = tr.UntrackAll(s)
	case "state":
		err = tr.PushStateTopic(s, topic)
	default:
		return channel.NoReply, channel.ErrUnhandled
	}
	if err != nil {
		return channel.ErrorReply(map[string]string{"reason": reason(err)}), nil
	}
	return channel.OK(map[string]string{"ref": ref}), nil
}

func reason(err error) string {
	for name, e := range map[string]error{
		"closed": presence.ErrClosed, "already_tracked": presence.ErrAlreadyTracked,
		"not_tracked": presence.ErrNotTracked, "socket_closed": presence.ErrSocketClosed,
		"invalid_topic": presence.ErrInvalidTopic,
	} {
		if errors.Is(err, e) {
			return name
		}
	}
	return err.Error()
}

// node is one test node: an Endpoint and its Tracker.
type node struct {
	ep *channeltest.Endpoint
	tr *presence.Tracker
}

func (n *node) tracker() *presence.Tracker { return n.tr }

// newNode starts an Endpoint on srvPS (nil: private memory) and a Tracker
// replicating on trPS (nil: the server's PubSub), closed when the test ends.
func newNode(t *testing.T, srvPS, trPS pubsub.PubSub, opts presence.Options) *node {
	t.Helper()
	n := &node{}
	r := channel.NewRouter()
	r.Handle("room:*", func() channel.Channel { return &roomChannel{tr: n.tracker} })
	r.Handle("overlay:*", func() channel.Channel { return &roomChannel{tr: n.tracker} })
	r.Handle("overlays", func() channel.Channel { return &roomChannel{tr: n.tracker} })
	n.ep = channeltest.New(t, r, &channeltest.Options{Server: channel.Options{PubSub: srvPS}, Timeout: 5 * time.Second})
	opts.Server = n.ep.Server()
	opts.PubSub = trPS
	tr, err := presence.New(context.Background(), &opts)
	require.NoError(t, err)
	n.tr = tr
	t.Cleanup(func() { assert.NoError(t, tr.Close()) })
	return n
}

// metaView is a presence list without phx_ref values, for comparisons.
func metaView(list map[string]presence.Presence) map[string][]map[string]any {
	out := make(map[string][]map[string]any, len(list))
	for k, p := range list {
		for _, m := range p.Metas {
			c := make(map[string]any, len(m))
			for mk, v := range m {
				if mk != "phx_ref" && mk != "phx_ref_prev" {
					c[mk] = v
				}
			}
			out[k] = append(out[k], c)
		}
	}
	return out
}

// diffPayload is a decoded presence_diff.
type diffPayload struct {
	Joins  map[string]presence.Presence `json:"joins"`
	Leaves map[string]presence.Presence `json:"leaves"`
}

// wantDiff matches a presence_diff whose joins and leaves, without refs,
// are the given ones (nil: empty).
func wantDiff(joins, leaves map[string][]map[string]any) channeltest.Matcher {
	if joins == nil {
		joins = map[string][]map[string]any{}
	}
	if leaves == nil {
		leaves = map[string][]map[string]any{}
	}
	return channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
		var d diffPayload
		require.NoError(t, p.Decode(&d))
		assert.Equal(t, joins, metaView(d.Joins), "joins")
		assert.Equal(t, leaves, metaView(d.Leaves), "leaves")
	})
}

func wantState(state map[string][]map[string]any) channeltest.Matcher {
	return channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
		var s map[string]presence.Presence
		require.NoError(t, p.Decode(&s))
		assert.Equal(t, state, metaView(s))
	})
}

type metas = map[string][]map[string]any

func meta(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// partition is a PubSub for one node's Tracker over a shared bus that can
// be cut off from the others (both directions) or drop chosen messages.
type partition struct {
	pubsub.PubSub
	cut  atomic.Bool
	mu   sync.Mutex
	drop map[string]int // event → messages to drop on receipt
	subs map[pubsub.Subscriber]*filterSub
}

func newPartition(bus pubsub.PubSub) *partition {
	return &partition{PubSub: bus, drop: make(map[string]int), subs: make(map[pubsub.Subscriber]*filterSub)}
}

// dropNext makes the node lose the next n received messages of event.
func (p *partition) dropNext(event string, n int) {
	p.mu.Lock()
	p.drop[event] += n
	p.mu.Unlock()
}

type filterSub struct {
	p    *partition
	next pubsub.Subscriber
}

func (f *filterSub) Deliver(msg *pubsub.Message) {
	if f.p.cut.Load() {
		return
	}
	f.p.mu.Lock()
	if f.p.drop[msg.Event] > 0 {
		f.p.drop[msg.Event]--
		f.p.mu.Unlock()
		return
	}
	f.p.mu.Unlock()
	f.next.Deliver(msg)
}

func (p *partition) Subscribe(ctx context.Context, topic string, s pubsub.Subscriber) error {
	p.mu.Lock()
	f := p.subs[s]
	if f == nil {
		f = &filterSub{p: p, next: s}
		p.subs[s] = f
	}
	p.mu.Unlock()
	return p.PubSub.Subscribe(ctx, topic, f)
}

func (p *partition) Unsubscribe(ctx context.Context, topic string, s pubsub.Subscriber) error {
	p.mu.Lock()
	f := p.subs[s]
	p.mu.Unlock()
	if f == nil {
		return nil
	}
	return p.PubSub.Unsubscribe(ctx, topic, f)
}

func (p *partition) Broadcast(ctx context.Context, msg *pubsub.Message) error {
	if p.cut.Load() {
		return nil
	}
	return p.PubSub.Broadcast(ctx, msg)
}

func (p *partition) BroadcastFrom(ctx context.Context, from string, msg *pubsub.Message) error {
	if p.cut.Load() {
		return nil
	}
	return p.PubSub.BroadcastFrom(ctx, from, msg)
}
