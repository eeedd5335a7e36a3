// Package brokertest starts private redis-server and nats-server processes
// for tests, on random free loopback ports, so that tests can kill, freeze
// and restart them without touching shared instances (6379, 4222).
//
// Binaries are looked up on PATH, then in /usr/sbin, /usr/local/bin and
// /usr/local/sbin. When one is missing the test is skipped with a message,
// unless the environment has CI=true, where it fails.
package brokertest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ReadyTimeout bounds the wait for a started broker to report readiness.
const ReadyTimeout = 20 * time.Second

// Broker is one private broker process. Its methods must be called from
// the test goroutine.
type Broker struct {
	kind  string // "redis" or "nats"
	bin   string
	port  int
	dir   string
	ready string // log line that means "accepting connections"
	args  func() []string

	t   testing.TB
	cmd *exec.Cmd
	log *logWriter
}

// StartRedis starts a private redis-server without persistence and stops
// it when the test ends.
func StartRedis(t testing.TB) *Broker {
	t.Helper()
	b := &Broker{kind: "redis", bin: find(t, "redis-server"), dir: t.TempDir(), ready: "Ready to accept connections", t: t}
	b.args = func() []string {
		return []string{"--port", strconv.Itoa(b.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", b.dir, "--logfile", "", "--loglevel", "notice"}
	}
	b.startFresh()
	return b
}

// StartNATS starts a private nats-server with max_payload raised to 4 MiB
// (the suite sends 1 MiB payloads plus an envelope) and stops it when the
// test ends.
func StartNATS(t testing.TB) *Broker {
	t.Helper()
	b := &Broker{kind: "nats", bin: find(t, "nats-server"), dir: t.TempDir(), ready: "Server is ready", t: t}
	b.args = func() []string {
		conf := filepath.Join(b.dir, "nats.conf")
		text := fmt.Sprintf("listen: 127.0.0.1:%d\nmax_payload: 4194304\nmax_pending: 67108864\n", b.port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatalf("brokertest: %v", err)
		}
		return []string{"-c", conf}
	}
	b.startFresh()
	return b
}

// find looks bin up, skipping (or, with CI=true, failing) t when absent.
func find(t testing.TB, bin string) string {
	t.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
		p := filepath.Join(dir, bin)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("brokertest: %s not found on PATH or in /usr/sbin, /usr/local/{bin,sbin}; install it (Debian: apt-get install %s)", bin, bin)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startFresh picks a free port and starts the broker, retrying with a new
// port if another process grabbed it in between.
func (b *Broker) startFresh() {
	b.t.Helper()
	b.t.Cleanup(b.stop)
	var lastErr error
	for range 5 {
		b.port = freePort(b.t)
		if lastErr = b.start(); lastErr == nil {
			return
		}
	}
	b.t.Fatalf("brokertest: start %s: %v", b.kind, lastErr)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (b *Broker) start() error {
	b.log = &logWriter{ready: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{}, 1), marker: b.ready}
	cmd := exec.Command(b.bin, b.args()...)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	cmd.Dir = b.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timer := time.NewTimer(ReadyTimeout)
	defer timer.Stop()
	select {
	case <-b.log.ready:
		b.cmd = cmd
		go func() { <-exited; close(b.log.done) }() // ends when the process does
		return nil
	case err := <-exited:
		return fmt.Errorf("exited before ready (%v): %s", err, b.log.tail())
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("not ready within %v: %s", ReadyTimeout, b.log.tail())
	}
}

// Addr returns "127.0.0.1:port".
func (b *Broker) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

// URL returns the broker's URL: redis://… or nats://….
func (b *Broker) URL() string { return b.kind + "://" + b.Addr() }

// Kill stops the broker with SIGKILL (a crash: no goodbye to clients) and
// waits until it is gone. The port stays reserved for Restart.
func (b *Broker) Kill() {
	b.t.Helper()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill() // SIGKILL also ends a frozen (SIGSTOPped) process
	<-b.log.done
	b.cmd = nil
}

// Restart starts the broker again on the same port after Kill.
func (b *Broker) Restart() {
	b.t.Helper()
	if b.cmd != nil {
		b.t.Fatalf("brokertest: Restart of a running %s", b.kind)
	}
	if err := b.start(); err != nil {
		b.t.Fatalf("brokertest: restart %s on port %d: %v", b.kind, b.port, err)
	}
}

// Freeze stops the broker process with SIGSTOP: connections stay open but
// nothing is answered, like a hung or very slow broker. On Linux it returns
// once the process has stopped, so nothing sent after Freeze returns is
// processed before Thaw. Thaw resumes it.
func (b *Broker) Freeze() {
	if b.cmd != nil {
		b.signal(sigStop)
		waitStopped(b.cmd.Process.Pid)
	}
}

// Thaw resumes a frozen broker.
func (b *Broker) Thaw() {
	if b.cmd != nil {
		b.signal(sigCont)
	}
}

// Log returns the broker's recent output.
func (b *Broker) Log() string { return b.log.tail() }

func (b *Broker) stop() {
	if b.t.Failed() && b.log != nil {
		b.t.Logf("brokertest: %s log:\n%s", b.kind, b.log.tail())
	}
	b.Kill()
}

// logWriter keeps the last 16 KiB of output and signals when marker shows
// up in it.
type logWriter struct {
	marker  string
	ready   chan struct{} // closed when marker was seen
	done    chan struct{} // closed when the process has exited
	changed chan struct{} // poked on every write

	mu      sync.Mutex
	buf     []byte
	isReady bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	if len(w.buf) > 16<<10 {
		w.buf = append([]byte(nil), w.buf[len(w.buf)-16<<10:]...)
	}
	if !w.isReady && bytes.Contains(w.buf, []byte(w.marker)) {
		w.isReady = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *logWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimSpace(string(w.buf))
}
