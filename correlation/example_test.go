package correlation_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/pyre-go/pyre/correlation"
)

var timeZero time.Time

// noTime drops the time attribute so example output is deterministic.
func noTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func ExampleNewN() {
	id := correlation.NewN(8) // a short id, e.g. one per connection
	fmt.Println(len(id), correlation.Valid(id))
	fmt.Println(len(correlation.New()))
	// Output:
	// 8 true
	// 16
}

func ExampleValid() {
	fmt.Println(correlation.Valid("req-42_A"))
	fmt.Println(correlation.Valid("no spaces"))
	fmt.Println(correlation.Valid(""))
	// Output:
	// true
	// false
	// false
}

func ExampleNewHandler() {
	h := correlation.NewHandler(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime}))
	logger := slog.New(h)

	ctx := correlation.WithID(context.Background(), "a1b2c3d4")
	logger.InfoContext(ctx, "channel joined", "topic", "stream:overlays")
	// Inside groups the id still goes to the top level.
	logger.WithGroup("push").InfoContext(ctx, "sent", "event", "stream_state")
	// Without an id in the context nothing is added.
	logger.Info("startup")
	// Output:
	// level=INFO msg="channel joined" topic=stream:overlays correlation_id=a1b2c3d4
	// level=INFO msg=sent correlation_id=a1b2c3d4 push.event=stream_state
	// level=INFO msg=startup
}

func ExampleMiddleware() {
	h := correlation.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("handler sees", correlation.ID(r.Context()))
	}))

	req := httptest.NewRequest(http.MethodGet, "/api/overlays", nil)
	req.Header.Set(correlation.Header, "trace-7")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println("response header", rec.Header().Get(correlation.Header))

	// An unusable offered id is replaced by a fresh one.
	req = httptest.NewRequest(http.MethodGet, "/api/overlays", nil)
	req.Header.Set(correlation.Header, "bad id!")
	rec = httptest.NewRecorder()
	correlation.Middleware(http.NotFoundHandler()).ServeHTTP(rec, req)
	fmt.Println(len(rec.Header().Get(correlation.Header)))
	// Output:
	// handler sees trace-7
	// response header trace-7
	// 16
}

func ExampleNewContextHandler() {
	type userKey struct{}
	h := correlation.NewContextHandler(
		slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime}),
		func(ctx context.Context) []slog.Attr {
			if u, ok := ctx.Value(userKey{}).(string); ok {
				return []slog.Attr{slog.String("user", u)}
			}
			return nil
		})
	logger := slog.New(h)

	ctx := context.WithValue(context.Background(), userKey{}, "ann")
	logger.WithGroup("push").InfoContext(ctx, "sent", "event", "stream_state")
	logger.Info("startup")
	// Output:
	// level=INFO msg=sent user=ann push.event=stream_state
	// level=INFO msg=startup
}
