package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pyre-go/pyre/batcher"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// feed batches "ev" pushes and pushes a fallback-guarded initial state.
type feed struct {
	Base
	batch *PushBatcher[map[string]int]
}

type streamState struct {
	Show     string `json:"current_show"`
	Fallback bool   `json:"fallback_mode"`
}

func (f *feed) Join(_ context.Context, s *Socket, p Payload) (any, error) {
	f.batch = NewPushBatcher[map[string]int](s, &BatchOptions{Batcher: batcher.Options{Size: 3, Interval: time.Hour}})
	mode, _ := p.Map()["provider"].(string)
	PushInitialState(s, "stream_state", "state",
		func(ctx context.Context) (streamState, error) {
			switch mode {
			case "panic":
				panic("state provider exploded")
			case "error":
				return streamState{}, errors.New("state provider down")
			}
			return streamState{Show: "coding"}, nil
		},
		func(context.Context, error) (streamState, error) {
			return streamState{Show: "variety", Fallback: true}, nil
		})
	return nil, nil
}

func (f *feed) HandleIn(_ context.Context, _ *Socket, msg *Message) (Reply, error) {
	if msg.Event == "ev" {
		var n map[string]int
		if err := msg.Payload.Decode(&n); err != nil {
			return ErrorReply(map[string]string{"reason": "bad payload"}), nil
		}
		return NoReply, f.batch.Add(n)
	}
	return NoReply, ErrUnhandled
}

func feedEndpoint(t *testing.T) *testEndpoint {
	r := NewRouter()
	r.Handle("feed:*", func() Channel { return &feed{} })
	return newTestEndpoint(t, &Options{Router: r})
}

func TestPushBatcherThroughRealSocket(t *testing.T) {
	e := feedEndpoint(t)
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "feed:a", "{}")
	c.expectNext(`["1",null,"feed:a","stream_state",{"current_show":"coding","fallback_mode":false}]`)
	for i := 1; i <= 4; i++ {
		c.send(fmt.Sprintf(`["1","%d","feed:a","ev",{"i":%d}]`, i+1, i))
	}
	var got struct {
		Events    []map[string]int `json:"events"`
		Count     int              `json:"count"`
		Timestamp int64            `json:"timestamp"`
	}
	var frame []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(c.read()), &frame))
	assert.JSONEq(t, `["1",null,"feed:a","event_batch"]`, "["+string(frame[0])+","+string(frame[1])+","+string(frame[2])+","+string(frame[3])+"]")
	require.NoError(t, json.Unmarshal(frame[4], &got))
	assert.Equal(t, []map[string]int{{"i": 1}, {"i": 2}, {"i": 3}}, got.Events)
	assert.Equal(t, 3, got.Count)
	assert.InDelta(t, time.Now().UnixMilli(), got.Timestamp, 60_000)

	// The fourth event is pushed when the channel ends (here: the client
	// leaves), before the leave reply and phx_close: nothing is lost.
	c.send(`["1","9","feed:a","phx_leave",{}]`)
	require.NoError(t, json.Unmarshal([]byte(c.read()), &frame))
	require.NoError(t, json.Unmarshal(frame[4], &got))
	assert.Equal(t, []map[string]int{{"i": 4}}, got.Events)
	c.expectNext(`["1","9","feed:a","phx_reply",{"response":{},"status":"ok"}]`)
	c.expectNext(`["1","1","feed:a","phx_close",{}]`)
}

func TestInitialStateFallsBackWhenProviderFails(t *testing.T) {
	e := feedEndpoint(t)
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "feed:a", `{"provider":"panic"}`)
	c.expectNext(`["1",null,"feed:a","stream_state",{"current_show":"variety","fallback_mode":true}]`)
	c.join("2", "feed:b", `{"provider":"error"}`)
	c.expectNext(`["2",null,"feed:b","stream_state",{"current_show":"variety","fallback_mode":true}]`)
	// The channel is healthy afterwards.
	c.send(`["2","3","feed:b","ping",{}]`)
	s := c.read()
	assert.Contains(t, s, `"pong":true`)
	assert.Equal(t, "closed", e.srv.Breakers().Breaker("state").State().String())
}

func TestOnStopRacingTheStopStillRuns(t *testing.T) {
	// OnStop from another goroutine while the channel stops: fn runs either
	// with the others or at once, never never.
	for i := 0; i < 50; i++ {
		ran := make(chan struct{})
		registered := make(chan struct{})
		r := NewRouter()
		r.Handle("x", func() Channel { return &onStopRacer{ran: ran, registered: registered} })
		e := newTestEndpoint(t, &Options{Router: r})
		c := e.dial(t, "vsn=2.0.0", nil)
		c.join("1", "x", "{}")
		c.send(`["1","2","x","phx_leave",{}]`)
		<-registered
		select {
		case <-ran:
		case <-time.After(testTimeout):
			t.Fatal("OnStop function registered during the stop never ran")
		}
	}
}

type onStopRacer struct {
	Base
	ran, registered chan struct{}
}

func (o *onStopRacer) Join(_ context.Context, s *Socket, _ Payload) (any, error) {
	s.OnStop(func(context.Context) {
		go func() {
			s.OnStop(func(context.Context) { close(o.ran) })
			close(o.registered)
		}()
	})
	return nil, nil
}

func (o *onStopRacer) HandleIn(context.Context, *Socket, *Message) (Reply, error) {
	return NoReply, ErrUnhandled
}
