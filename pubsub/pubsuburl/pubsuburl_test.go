package pubsuburl

import (
	"context"
	"testing"

	"github.com/pyre-go/pyre/internal/brokertest"
	"github.com/pyre-go/pyre/pubsub"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOpenMemory(t *testing.T) {
	for _, spec := range []string{"", "memory"} {
		ps, err := Open(context.Background(), spec, nil)
		require.NoError(t, err)
		_, ok := ps.(*pubsub.Memory)
		assert.True(t, ok)
		require.NoError(t, ps.Close())
	}
}

func TestOpenUnknown(t *testing.T) {
	_, err := Open(context.Background(), "kafka://x", nil)
	assert.ErrorIs(t, err, ErrUnknownScheme)
}

func TestOpenBrokers(t *testing.T) {
	for name, start := range map[string]func(testing.TB) *brokertest.Broker{
		"redis": brokertest.StartRedis,
		"nats":  brokertest.StartNATS,
	} {
		t.Run(name, func(t *testing.T) {
			b := start(t)
			ps, err := Open(context.Background(), b.URL(), nil)
			require.NoError(t, err)
			defer ps.Close()
			got := make(chan *pubsub.Message, 1)
			sub := pubsub.SubscriberFunc(func(m *pubsub.Message) { got <- m })
			require.NoError(t, ps.Subscribe(context.Background(), "room:1", &sub))
			require.NoError(t, ps.Broadcast(context.Background(), &pubsub.Message{Topic: "room:1", Event: "e", Payload: []byte(`{}`)}))
			assert.Equal(t, "e", (<-got).Event)
		})
	}
}
