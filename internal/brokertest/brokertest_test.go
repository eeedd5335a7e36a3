package brokertest

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ping sends one inline command and returns the first reply line.
func ping(t *testing.T, addr, cmd string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestRedisKillRestart(t *testing.T) {
	b := StartRedis(t)
	got, err := ping(t, b.Addr(), "PING\r\n")
	if err != nil || got != "+PONG" {
		t.Fatalf("PING: %q %v", got, err)
	}
	if b.Addr() == "127.0.0.1:6379" {
		t.Fatal("used the shared port")
	}
	b.Kill()
	if _, err := ping(t, b.Addr(), "PING\r\n"); err == nil {
		t.Fatal("still answering after Kill")
	}
	b.Restart()
	if got, err := ping(t, b.Addr(), "PING\r\n"); err != nil || got != "+PONG" {
		t.Fatalf("after Restart: %q %v", got, err)
	}
}

// TestFreezeThaw checks that Freeze returns with the process stopped (on
// Linux) and that Thaw lets it answer again.
func TestFreezeThaw(t *testing.T) {
	b := StartRedis(t)
	b.Freeze()
	if runtime.GOOS == "linux" {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(b.cmd.Process.Pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ...; comm has no ')' here.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if fields[0] != "T" {
			t.Fatalf("state after Freeze: %q, want T (stopped)", fields[0])
		}
	}
	b.Thaw()
	if got, err := ping(t, b.Addr(), "PING\r\n"); err != nil || got != "+PONG" {
		t.Fatalf("after Thaw: %q %v", got, err)
	}
	b.Freeze() // Kill ends a frozen broker too
}

func TestNATSStarts(t *testing.T) {
	b := StartNATS(t)
	got, err := ping(t, b.Addr(), "")
	if err != nil || !strings.HasPrefix(got, "INFO ") || !strings.Contains(got, `"max_payload":4194304`) {
		t.Fatalf("greeting: %q %v", got, err)
	}
	if !strings.HasPrefix(b.URL(), "nats://127.0.0.1:") {
		t.Fatalf("URL %q", b.URL())
	}
}

func TestRedisCluster(t *testing.T) {
	nodes := StartRedisCluster(t, 3)
	for _, b := range nodes {
		got, err := ping(t, b.Addr(), "CLUSTER INFO\r\n")
		if err != nil || !strings.HasPrefix(got, "$") {
			t.Fatalf("CLUSTER INFO: %q %v", got, err)
		}
	}
}
