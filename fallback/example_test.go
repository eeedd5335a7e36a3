package fallback_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/pyre-go/pyre/correlation"
	"github.com/pyre-go/pyre/fallback"
)

func ExampleDo() {
	getState := func(ctx context.Context) (string, error) {
		return "", errors.New("stream producer unavailable")
	}
	fallbackState := func(ctx context.Context, err error) (string, error) {
		return `{"current_show":"variety","fallback_mode":true}`, nil
	}

	res, err := fallback.Do(context.Background(), getState, fallbackState, &fallback.Options{Name: "stream_producer"})
	fmt.Println(res.Value, err)
	fmt.Println("fallback used:", res.Fallback, "because:", res.Err)
	// Output:
	// {"current_show":"variety","fallback_mode":true} <nil>
	// fallback used: true because: stream producer unavailable
}

// The fallback is logged once, with the caller's ctx, so the correlation id
// appears when the logger uses correlation.NewHandler.
func ExampleDo_logging() {
	logger := slog.New(correlation.NewHandler(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	ctx := correlation.WithID(context.Background(), "a1b2c3d4")
	_, _ = fallback.Do(ctx, func(context.Context) (int, error) {
		panic("nil map")
	}, func(context.Context, error) (int, error) {
		return 0, nil
	}, &fallback.Options{Name: "obs", Logger: logger})
	// Output:
	// level=WARN msg="fallback: primary failed, using fallback" service=obs error="fallback: primary panicked: nil map" correlation_id=a1b2c3d4
}

func ExampleCall() {
	reg := fallback.NewRegistry(&fallback.BreakerOptions{
		FailureThreshold: 2,
		OnStateChange: func(name string, from, to fallback.State) {
			fmt.Printf("breaker %s: %s -> %s\n", name, from, to)
		},
	})
	calls := 0
	obsStatus := func(ctx context.Context) (string, error) {
		calls++
		return "", errors.New("connection refused")
	}
	offline := func(ctx context.Context, err error) (string, error) {
		return "offline", nil
	}

	for range 4 {
		res, _ := fallback.Call(context.Background(), reg.Breaker("obs"), obsStatus, offline)
		fmt.Println(res.Value, errors.Is(res.Err, fallback.ErrOpen))
	}
	fmt.Println("primary called", calls, "times")
	states, _ := json.Marshal(reg.States())
	fmt.Println(string(states))
	// Output:
	// offline false
	// breaker obs: closed -> open
	// offline false
	// offline true
	// offline true
	// primary called 2 times
	// {"obs":"open"}
}
