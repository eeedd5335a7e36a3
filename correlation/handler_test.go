package correlation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/correlation"
)

// jsonLogger returns a logger writing JSON through correlation.NewHandler
// into buf, and a function that decodes the lines written so far.
func jsonLogger(t *testing.T) (*slog.Logger, func() []map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	l := slog.New(correlation.NewHandler(slog.NewJSONHandler(&buf, nil)))
	return l, func() []map[string]any { return decodeLines(t, buf.Bytes()) }
}

func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range bytes.Lines(b) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(line, &m), "line %q", line)
		out = append(out, m)
	}
	return out
}

func TestHandlerAddsID(t *testing.T) {
	t.Parallel()
	l, lines := jsonLogger(t)
	ctx := correlation.WithID(context.Background(), "a1b2c3d4")

	l.InfoContext(ctx, "with id", "k", "v")
	l.InfoContext(context.Background(), "without id")
	l.Info("no ctx")

	got := lines()
	require.Len(t, got, 3)
	assert.Equal(t, "a1b2c3d4", got[0][correlation.LogKey])
	assert.Equal(t, "v", got[0]["k"])
	assert.NotContains(t, got[1], correlation.LogKey)
	assert.NotContains(t, got[2], correlation.LogKey)
}

func TestHandlerDoesNotDuplicate(t *testing.T) {
	t.Parallel()
	ctx := correlation.WithID(context.Background(), "from-ctx")

	t.Run("record attr", func(t *testing.T) {
		var buf bytes.Buffer
		l := slog.New(correlation.NewHandler(slog.NewJSONHandler(&buf, nil)))
		l.InfoContext(ctx, "m", correlation.LogKey, "explicit")
		assert.Equal(t, 1, strings.Count(buf.String(), correlation.LogKey), buf.String())
		assert.Contains(t, buf.String(), `"correlation_id":"explicit"`)
	})
	t.Run("WithAttrs", func(t *testing.T) {
		var buf bytes.Buffer
		l := slog.New(correlation.NewHandler(slog.NewJSONHandler(&buf, nil))).With(correlation.LogKey, "bound")
		l.InfoContext(ctx, "m")
		l.WithGroup("g").InfoContext(ctx, "m2", "k", 1)
		assert.Equal(t, 2, strings.Count(buf.String(), correlation.LogKey), buf.String())
		assert.NotContains(t, buf.String(), "from-ctx")
	})
	t.Run("wrapped twice", func(t *testing.T) {
		var buf bytes.Buffer
		h := correlation.NewHandler(correlation.NewHandler(slog.NewJSONHandler(&buf, nil)))
		l := slog.New(h)
		l.InfoContext(ctx, "m")
		l.WithGroup("g").InfoContext(ctx, "m", "k", 1)
		assert.Equal(t, 2, strings.Count(buf.String(), correlation.LogKey), buf.String())
	})
}

func TestHandlerIDStaysTopLevelInsideGroups(t *testing.T) {
	t.Parallel()
	l, lines := jsonLogger(t)
	ctx := correlation.WithID(context.Background(), "conn-1")

	l.With("a", 1).WithGroup("g1").With("b", 2).WithGroup("g2").InfoContext(ctx, "deep", "c", 3)
	l.WithGroup("solo").InfoContext(ctx, "solo", "c", 4)

	got := lines()
	require.Len(t, got, 2)

	assert.Equal(t, "conn-1", got[0][correlation.LogKey])
	assert.EqualValues(t, 1, got[0]["a"])
	g1, ok := got[0]["g1"].(map[string]any)
	require.True(t, ok, "%v", got[0])
	assert.EqualValues(t, 2, g1["b"])
	assert.NotContains(t, g1, correlation.LogKey)
	g2, ok := g1["g2"].(map[string]any)
	require.True(t, ok, "%v", g1)
	assert.EqualValues(t, 3, g2["c"])
	assert.NotContains(t, g2, correlation.LogKey)

	assert.Equal(t, "conn-1", got[1][correlation.LogKey])
	assert.Equal(t, map[string]any{"c": 4.0}, got[1]["solo"])
}

func TestHandlerGroupedLoggerSwitchesIDs(t *testing.T) {
	t.Parallel()
	// A grouped logger caches the replayed handler for the last id; make
	// sure a new id is never logged with the previous one.
	l, lines := jsonLogger(t)
	gl := l.WithGroup("g")
	for _, id := range []string{"one", "two", "two", "one", "three"} {
		gl.InfoContext(correlation.WithID(context.Background(), id), "m", "id", id)
	}
	gl.Info("none", "id", "")
	for _, m := range lines() {
		g := m["g"].(map[string]any)
		if g["id"] == "" {
			assert.NotContains(t, m, correlation.LogKey)
			continue
		}
		assert.Equal(t, g["id"], m[correlation.LogKey])
	}
}

func TestHandlerConcurrent(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	base := slog.New(correlation.NewHandler(slog.NewJSONHandler(w, nil)))
	loggers := []*slog.Logger{base, base.With("x", 1), base.WithGroup("g"), base.WithGroup("g").With("y", 2)}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				id := fmt.Sprintf("w%d", i)
				l := loggers[j%len(loggers)]
				l.InfoContext(correlation.WithID(context.Background(), id), "m", "worker", id)
			}
		})
	}
	wg.Wait()

	got := decodeLines(t, buf.Bytes())
	require.Len(t, got, 400)
	for _, m := range got {
		worker, ok := m["worker"]
		if !ok {
			worker = m["g"].(map[string]any)["worker"]
		}
		require.Equal(t, worker, m[correlation.LogKey])
	}
}

func TestHandlerEnabledDelegates(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := correlation.NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := correlation.WithID(context.Background(), "x")
	assert.False(t, h.Enabled(ctx, slog.LevelInfo))
	assert.True(t, h.Enabled(ctx, slog.LevelError))
	assert.False(t, h.WithGroup("g").Enabled(ctx, slog.LevelInfo))
	slog.New(h).InfoContext(ctx, "dropped")
	assert.Zero(t, buf.Len())
}

func TestHandlerDoesNotMutateCallerRecord(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := correlation.NewHandler(slog.NewJSONHandler(&buf, nil))
	ctx := correlation.WithID(context.Background(), "x")
	r := slog.NewRecord(timeZero, slog.LevelInfo, "m", 0)
	// Fill the inline attrs so AddAttrs has to use the shared back array.
	for i := range 8 {
		r.AddAttrs(slog.Int(fmt.Sprint("k", i), i))
	}
	before := r.NumAttrs()
	require.NoError(t, h.Handle(ctx, r))
	require.NoError(t, h.Handle(ctx, r))
	assert.Equal(t, before, r.NumAttrs())
	assert.NotContains(t, buf.String(), "!BUG")
	assert.Equal(t, 2, strings.Count(buf.String(), correlation.LogKey))
}

func TestNewHandlerNilPanics(t *testing.T) {
	t.Parallel()
	assert.Panics(t, func() { correlation.NewHandler(nil) })
}

// TestHandlerSlogtest checks the wrapper is a well-behaved slog.Handler
// when records carry no id.
func TestHandlerSlogtest(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		buf.Reset()
		return correlation.NewHandler(slog.NewJSONHandler(&buf, nil))
	}, func(t *testing.T) map[string]any {
		got := decodeLines(t, buf.Bytes())
		require.Len(t, got, 1)
		assert.NotContains(t, got[0], correlation.LogKey)
		return got[0]
	})
}

// TestHandlerSlogtestWithID runs the slogtest cases again with an id in every
// record's context and checks, on top of slogtest's own checks, that every
// record carries the id at the top level, whatever groups the case opened.
func TestHandlerSlogtestWithID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		buf.Reset()
		return ctxInjector{correlation.NewHandler(slog.NewJSONHandler(&buf, nil)), "slogtest-id"}
	}, func(t *testing.T) map[string]any {
		got := decodeLines(t, buf.Bytes())
		require.Len(t, got, 1)
		assert.Equal(t, "slogtest-id", got[0][correlation.LogKey])
		return got[0]
	})
}

// ctxInjector puts an id into the context of every record, because slogtest
// logs with context.Background().
type ctxInjector struct {
	h  slog.Handler
	id string
}

func (c ctxInjector) Enabled(ctx context.Context, l slog.Level) bool { return c.h.Enabled(ctx, l) }
func (c ctxInjector) Handle(ctx context.Context, r slog.Record) error {
	return c.h.Handle(correlation.WithID(ctx, c.id), r)
}
func (c ctxInjector) WithAttrs(a []slog.Attr) slog.Handler {
	return ctxInjector{c.h.WithAttrs(a), c.id}
}
func (c ctxInjector) WithGroup(n string) slog.Handler { return ctxInjector{c.h.WithGroup(n), c.id} }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func BenchmarkHandler(b *testing.B) {
	ctx := correlation.WithID(context.Background(), correlation.New())
	for _, bc := range []struct {
		name string
		l    *slog.Logger
	}{
		{"plain", slog.New(slog.NewJSONHandler(io.Discard, nil))},
		{"wrapped", slog.New(correlation.NewHandler(slog.NewJSONHandler(io.Discard, nil)))},
		{"wrapped-group", slog.New(correlation.NewHandler(slog.NewJSONHandler(io.Discard, nil))).WithGroup("g").With("k", 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.l.InfoContext(ctx, "m", "a", 1, "b", "two")
			}
		})
	}
}

// tenantKey carries a tenant and a user in a context for the
// NewContextHandler tests.
type tenantKey struct{}

type tenant struct{ name, user string }

func tenantAttrs(ctx context.Context) []slog.Attr {
	t, ok := ctx.Value(tenantKey{}).(tenant)
	if !ok {
		return nil
	}
	return []slog.Attr{slog.String("tenant", t.name), slog.String("user", t.user)}
}

func TestContextHandlerAddsEveryAttrAtTheTopLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := slog.New(correlation.NewContextHandler(slog.NewJSONHandler(&buf, nil), tenantAttrs))
	ctx := context.WithValue(context.Background(), tenantKey{}, tenant{"acme", "ann"})

	l.InfoContext(ctx, "flat", "k", 1)
	l.With("a", 1).WithGroup("g").With("b", 2).InfoContext(ctx, "grouped", "c", 3)
	l.WithGroup("g").InfoContext(context.Background(), "none", "c", 4)

	got := decodeLines(t, buf.Bytes())
	require.Len(t, got, 3)
	assert.Equal(t, "acme", got[0]["tenant"])
	assert.Equal(t, "ann", got[0]["user"])
	assert.Equal(t, "acme", got[1]["tenant"], "outside the group")
	assert.Equal(t, "ann", got[1]["user"])
	assert.Equal(t, map[string]any{"b": 2.0, "c": 3.0}, got[1]["g"])
	assert.NotContains(t, got[2], "tenant")
	assert.Equal(t, map[string]any{"c": 4.0}, got[2]["g"])
}

// Only the keys already at the top level are left out; the others are
// still added.
func TestContextHandlerSkipsOnlyTheKeysAlreadyThere(t *testing.T) {
	t.Parallel()
	ctx := context.WithValue(context.Background(), tenantKey{}, tenant{"acme", "ann"})
	for name, log := range map[string]func(l *slog.Logger){
		"record":    func(l *slog.Logger) { l.InfoContext(ctx, "m", "user", "bob") },
		"WithAttrs": func(l *slog.Logger) { l.With("user", "bob").InfoContext(ctx, "m") },
		"grouped":   func(l *slog.Logger) { l.With("user", "bob").WithGroup("g").InfoContext(ctx, "m", "k", 1) },
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			log(slog.New(correlation.NewContextHandler(slog.NewJSONHandler(&buf, nil), tenantAttrs)))
			assert.Equal(t, 1, strings.Count(buf.String(), `"user"`), buf.String())
			assert.Contains(t, buf.String(), `"user":"bob"`)
			assert.Contains(t, buf.String(), `"tenant":"acme"`)
		})
	}
}

// The replayed handler of a grouped logger is cached for the last
// attributes: a change in any value, not only the first, must miss it.
func TestContextHandlerGroupedCacheComparesEveryAttr(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	gl := slog.New(correlation.NewContextHandler(slog.NewJSONHandler(&buf, nil), tenantAttrs)).WithGroup("g")
	want := []tenant{{"acme", "ann"}, {"acme", "bob"}, {"acme", "bob"}, {"zeta", "bob"}, {"acme", "ann"}}
	for _, tn := range want {
		gl.InfoContext(context.WithValue(context.Background(), tenantKey{}, tn), "m")
	}
	got := decodeLines(t, buf.Bytes())
	require.Len(t, got, len(want))
	for i, tn := range want {
		assert.Equal(t, tn.name, got[i]["tenant"], "line %d", i)
		assert.Equal(t, tn.user, got[i]["user"], "line %d", i)
	}
}

func TestNewContextHandlerNilPanics(t *testing.T) {
	t.Parallel()
	assert.Panics(t, func() { correlation.NewContextHandler(nil, tenantAttrs) })
	assert.Panics(t, func() { correlation.NewContextHandler(slog.NewJSONHandler(io.Discard, nil), nil) })
}

// NewHandler adds its one attribute without allocating (a record without
// groups open, and a grouped logger whose replay is cached). The wrapped
// handler allocates nothing itself (slog's own handlers draw on a
// sync.Pool, which drops items at random under the race detector).
func TestHandlerDoesNotAllocate(t *testing.T) {
	ctx := correlation.WithID(context.Background(), "a1b2c3d4")
	sink := &attrCounter{}
	plain := slog.New(correlation.NewHandler(sink))
	grouped := plain.WithGroup("g").With("k", 1)
	for name, l := range map[string]*slog.Logger{"plain": plain, "grouped": grouped} {
		before := sink.n
		assert.Zero(t, testing.AllocsPerRun(100, func() { l.InfoContext(ctx, "m", "a", 1) }), name)
		assert.Greater(t, sink.n, before, "%s: records reached the handler", name)
	}
}

// attrCounter counts the attributes of the records it handles, and
// allocates nothing.
type attrCounter struct{ n int }

func (c *attrCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *attrCounter) Handle(_ context.Context, r slog.Record) error {
	c.n += r.NumAttrs()
	return nil
}
func (c *attrCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *attrCounter) WithGroup(string) slog.Handler      { return c }
