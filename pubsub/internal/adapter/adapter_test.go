package adapter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/internal/envelope"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type inbox struct{ got []*pubsub.Message }

func (i *inbox) Deliver(m *pubsub.Message) { i.got = append(i.got, m) }

func TestReceive(t *testing.T) {
	n := New("test", nil)
	in := &inbox{}
	_, err := n.Local.Subscribe("room:1", in)
	require.NoError(t, err)
	carrier := func(topic string) string { return "p:" + topic }
	msg := &pubsub.Message{Topic: "room:1", Event: "e", Payload: []byte(`{}`), From: "x"}
	other := envelope.NewNodeID()

	n.Receive("channel", "p:room:1", []byte("not an envelope"), carrier)
	n.Receive("channel", "p:room:1", envelope.Encode(n.ID, msg), carrier)  // own echo
	n.Receive("channel", "p:room:2", envelope.Encode(other, msg), carrier) // misrouted
	assert.Empty(t, in.got)

	n.Receive("channel", "p:room:1", envelope.Encode(other, msg), carrier)
	require.Len(t, in.got, 1)
	assert.Equal(t, msg, in.got[0])
}

func TestChecksAndClose(t *testing.T) {
	n := New("test", nil)
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, n.CheckSubscribe(ctx, ""), pubsub.ErrInvalidTopic)
	assert.ErrorIs(t, n.CheckSubscribe(canceled, "t"), context.Canceled)
	assert.NoError(t, n.CheckUnsubscribe("t"))
	assert.ErrorIs(t, n.Broadcast(ctx, nil), pubsub.ErrInvalidTopic)
	assert.ErrorIs(t, n.Broadcast(canceled, &pubsub.Message{Topic: "t"}), context.Canceled)

	msg := &pubsub.Message{Topic: "t", From: "a"}
	cp, err := From(msg, "b")
	require.NoError(t, err)
	assert.Equal(t, "b", cp.From)
	assert.Equal(t, "a", msg.From, "the caller's message is not modified")
	_, err = From(nil, "b")
	assert.ErrorIs(t, err, pubsub.ErrInvalidTopic)

	assert.True(t, n.Close())
	assert.False(t, n.Close(), "only the first Close releases")
	assert.True(t, n.Closed())
	assert.ErrorIs(t, n.CheckSubscribe(ctx, "t"), pubsub.ErrClosed)
	assert.ErrorIs(t, n.CheckUnsubscribe("t"), pubsub.ErrClosed)
	assert.ErrorIs(t, n.Broadcast(ctx, msg), pubsub.ErrClosed)
}

func TestDefaults(t *testing.T) {
	var d time.Duration
	Default(&d, time.Second)
	assert.Equal(t, time.Second, d)
	Default(&d, time.Hour)
	assert.Equal(t, time.Second, d, "a set value stays")

	var lo, hi time.Duration
	Backoff(&lo, &hi)
	assert.Equal(t, []time.Duration{50 * time.Millisecond, 5 * time.Second}, []time.Duration{lo, hi})
	lo, hi = time.Minute, time.Second
	Backoff(&lo, &hi)
	assert.Equal(t, time.Minute, hi, "max is raised to min")
}
