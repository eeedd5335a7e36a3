package activity

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/pubsub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ev(id, typ, login string, at time.Time) events.Event {
	e := events.Event{"id": id, "type": typ, "timestamp": events.FormatTime(at), "correlation_id": "abcd1234",
		"source": events.SourceOf(typ)}
	if login != "" {
		e["user_id"], e["user_login"], e["user_name"] = "id-"+login, login, login
	}
	return e
}

func TestLogKeepsLandalesTypesFromTheBus(t *testing.T) {
	ps := pubsub.NewMemory(nil)
	defer ps.Close()
	l := New(ps, 0)
	require.NoError(t, l.Start(context.Background()))
	defer l.Close()
	bus := events.NewBus(ps, nil)
	t0 := time.Date(2025, 8, 25, 16, 0, 0, 0, time.UTC)
	for i, e := range []events.Event{
		ev("1", "channel.chat.message", "ana", t0),
		ev("2", "system.health_check", "", t0.Add(time.Second)),    // not kept
		ev("3", "stream.state_updated", "", t0.Add(2*time.Second)), // not kept
		ev("4", "channel.follow", "bo", t0.Add(3*time.Second)),
		ev("5", "channel.chat.message", "ana", t0.Add(4*time.Second)),
		ev("6", "channel.chat.message", "bo", t0.Add(5*time.Second)),
		ev("4", "channel.follow", "bo", t0.Add(3*time.Second)), // same id again
	} {
		require.NoError(t, bus.PublishEvent(context.Background(), e), i)
	}
	all := l.List(Query{})
	require.Len(t, all, 4)
	assert.Equal(t, []string{"6", "5", "4", "1"}, []string{all[0].ID, all[1].ID, all[2].ID, all[3].ID}, "newest first")
	b, err := json.Marshal(all[2])
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"4","timestamp":"2025-08-25T16:00:03.000000Z","event_type":"channel.follow","user_id":"id-bo",
		"user_login":"bo","user_name":"bo","correlation_id":"abcd1234","data":{"id":"4","type":"channel.follow",
		"timestamp":"2025-08-25T16:00:03.000000Z","correlation_id":"abcd1234","source":"twitch","user_id":"id-bo",
		"user_login":"bo","user_name":"bo"}}`, string(b))

	assert.Len(t, l.List(Query{Limit: 2}), 2)
	assert.Len(t, l.List(Query{EventType: "channel.chat.message"}), 3)
	assert.Len(t, l.List(Query{UserID: "id-bo"}), 2)
	assert.Len(t, l.List(Query{Since: t0.Add(4 * time.Second)}), 2)

	assert.Equal(t, map[string]any{"total_events": 4, "unique_users": 2, "chat_messages": 3, "follows": 1,
		"subscriptions": 0, "cheers": 0}, l.Stats(t0))
	assert.Equal(t, []map[string]any{{"user_login": "ana", "message_count": 2}, {"user_login": "bo", "message_count": 1}},
		l.MostActive(t0, 10))
	assert.Len(t, l.MostActive(t0, 1), 1)
}

func TestLogIsBounded(t *testing.T) {
	l := New(pubsub.NewMemory(nil), 3)
	t0 := time.Now()
	for i := range 10 {
		assert.True(t, l.Add(ev(fmt.Sprint(i), "channel.follow", "x", t0.Add(time.Duration(i)*time.Second))))
	}
	list := l.List(Query{})
	require.Len(t, list, 3)
	assert.Equal(t, "9", list[0].ID)
	assert.Equal(t, "7", list[2].ID)
	assert.True(t, l.Add(ev("0", "channel.follow", "x", t0)), "an id that fell out may come back")
}
