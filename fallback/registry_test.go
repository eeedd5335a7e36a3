package fallback_test

import (
	"context"
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/fallback"
)

func TestRegistry(t *testing.T) {
	t.Parallel()
	var tr transitions
	reg := fallback.NewRegistry(&fallback.BreakerOptions{
		FailureThreshold: 1,
		OnStateChange:    func(name string, from, to fallback.State) { tr.record(name, from, to) },
	})
	obs := reg.Breaker("obs")
	assert.Same(t, obs, reg.Breaker("obs"), "one breaker per name")
	assert.Equal(t, "obs", obs.Name())
	rainwave := reg.Breaker("rainwave")
	assert.NotSame(t, obs, rainwave)

	s := &service{}
	s.set(errDown)
	call(t, obs, s) // threshold 1 from the registry's settings
	assert.Equal(t, map[string]fallback.State{"obs": fallback.Open, "rainwave": fallback.Closed}, reg.States())
	assert.Equal(t, []string{"obs:closed->open"}, tr.list(), "the callback gets the breaker's name")

	b, err := json.Marshal(reg.States())
	require.NoError(t, err)
	assert.JSONEq(t, `{"obs":"open","rainwave":"closed"}`, string(b))

	// The snapshot belongs to the caller.
	st := reg.States()
	delete(st, "obs")
	assert.Len(t, reg.States(), 2)
}

func TestRegistryConcurrentBreaker(t *testing.T) {
	t.Parallel()
	reg := fallback.NewRegistry(nil)
	got := make(chan *fallback.Breaker, 16)
	for range 16 {
		go func() { got <- reg.Breaker("same") }()
	}
	first := <-got
	for range 15 {
		assert.Same(t, first, <-got)
	}
}

func TestRegistryWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := fallback.NewRegistry(&fallback.BreakerOptions{Timeout: time.Second})
		require.NoError(t, reg.Wait(context.Background()), "nothing running")

		release := make(chan struct{})
		res, err := fallback.Call(context.Background(), reg.Breaker("obs"), func(context.Context) (int, error) {
			<-release // ignores its ctx
			return 1, nil
		}, constFallback(0))
		require.NoError(t, err)
		assert.ErrorIs(t, res.Err, fallback.ErrTimeout)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		assert.ErrorIs(t, reg.Wait(ctx), context.DeadlineExceeded, "the abandoned primary still runs")

		close(release)
		require.NoError(t, reg.Wait(context.Background()))
	})
}
