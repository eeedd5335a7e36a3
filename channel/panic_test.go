package channel

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/fallback"
)

// panicValueRoom panics with the sentinels that mean something else when
// returned.
type panicValueRoom struct{ testRoom }

func (r *panicValueRoom) HandleIn(ctx context.Context, s *Socket, msg *Message) (Reply, error) {
	switch msg.Event {
	case "panic_stop":
		panic(ErrStop)
	case "panic_unhandled":
		panic(ErrUnhandled)
	}
	return r.testRoom.HandleIn(ctx, s, msg)
}

// TestPanicWithSentinelCrashes checks that a handler panicking with ErrStop
// or ErrUnhandled crashes its channel (phx_error, a *PanicError reason)
// rather than passing for a clean stop or an unknown event: PanicError
// unwraps to its panic value, since it is fallback.PanicError.
func TestPanicWithSentinelCrashes(t *testing.T) {
	for _, event := range []string{"panic_stop", "panic_unhandled"} {
		t.Run(event, func(t *testing.T) {
			term := make(chan error, 1)
			r := NewRouter()
			r.Handle("room:*", func() Channel { return &panicValueRoom{testRoom{terminated: term}} })
			e := newTestEndpoint(t, &Options{Router: r})
			c := e.dial(t, "vsn=2.0.0", nil)
			c.join("1", "room:a", "{}")
			c.send(`["1","2","room:a","` + event + `",{}]`)
			c.expectNext(`["1","1","room:a","phx_error",{"reason":"channel_crash"}]`)
			reason := <-term
			var pe *PanicError
			require.ErrorAs(t, reason, &pe)
			assert.ErrorIs(t, reason, ErrPanic)
			assert.Equal(t, "channel: handler", pe.Op)
			assert.Contains(t, reason.Error(), "channel: handler panicked: ")

			// One type and one sentinel across packages.
			var fpe *fallback.PanicError
			assert.ErrorAs(t, reason, &fpe)
			assert.ErrorIs(t, reason, fallback.ErrPanic)
		})
	}
}
