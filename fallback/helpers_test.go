package fallback_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var errDown = errors.New("service down")

func ok[T any](v T) func(context.Context) (T, error) {
	return func(context.Context) (T, error) { return v, nil }
}

func fail[T any](err error) func(context.Context) (T, error) {
	return func(context.Context) (T, error) {
		var zero T
		return zero, err
	}
}

func constFallback[T any](v T) func(context.Context, error) (T, error) {
	return func(context.Context, error) (T, error) { return v, nil }
}

// logBuffer is a concurrency-safe JSON log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range bytes.Lines(l.buf.Bytes()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(line, &m))
		out = append(out, m)
	}
	return out
}

// transitions records OnStateChange calls.
type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) record(name string, from, to interface{ String() string }) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.got = append(tr.got, name+":"+from.String()+"->"+to.String())
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.got...)
}
