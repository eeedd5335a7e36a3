package brokertest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogBuffer collects an adapter's log records for assertions. It is safe
// for concurrent use.
type LogBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{} // poked on every write
}

// NewLogger returns a debug-level text logger writing to a new LogBuffer,
// whose content is printed when t fails.
func NewLogger(t testing.TB) (*slog.Logger, *LogBuffer) {
	lb := &LogBuffer{notify: make(chan struct{}, 1)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("adapter log:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// WaitFor waits until the log contains s, failing t after ReadyTimeout.
func (l *LogBuffer) WaitFor(t testing.TB, s string) {
	t.Helper()
	timer := time.NewTimer(ReadyTimeout)
	defer timer.Stop()
	for !strings.Contains(l.String(), s) {
		select {
		case <-l.notify:
		case <-timer.C:
			t.Fatalf("log never said %q", s)
		}
	}
}
