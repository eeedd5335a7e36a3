package brokertest

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartRedisCluster starts n (at least 1) cluster-enabled redis-server
// processes, splits the 16384 hash slots evenly among them (no replicas),
// joins them and waits until every node reports the cluster healthy. They
// stop when the test ends. Use the Addr of each as a seed address.
func StartRedisCluster(t testing.TB, n int) []*Broker {
	t.Helper()
	nodes := make([]*Broker, n)
	busPorts := make([]int, n)
	for i := range nodes {
		b := &Broker{kind: "redis", bin: find(t, "redis-server"), dir: t.TempDir(), ready: "Ready to accept connections", t: t}
		busPort := freePort(t)
		b.args = func() []string {
			return []string{"--port", strconv.Itoa(b.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
				"--dir", b.dir, "--logfile", "", "--loglevel", "notice",
				"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(busPort),
				"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"}
		}
		b.startFresh()
		nodes[i], busPorts[i] = b, busPort
	}
	per := 16384 / n
	for i, b := range nodes {
		first, last := i*per, (i+1)*per-1
		if i == n-1 {
			last = 16383
		}
		command(t, b.Addr(), fmt.Sprintf("CLUSTER ADDSLOTSRANGE %d %d", first, last))
	}
	for i, b := range nodes[1:] {
		command(t, nodes[0].Addr(), fmt.Sprintf("CLUSTER MEET 127.0.0.1 %d %d", b.port, busPorts[i+1]))
	}
	for _, b := range nodes {
		b.waitLog("Cluster state changed: ok")
	}
	return nodes
}

// command sends one inline command and fails t unless the reply is +OK.
func command(t testing.TB, addr, cmd string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatalf("brokertest: %s: %v", cmd, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "+OK" {
		t.Fatalf("brokertest: %s: %q %v", cmd, line, err)
	}
}

// waitLog waits until the broker's output contains s.
func (b *Broker) waitLog(s string) {
	b.t.Helper()
	timer := time.NewTimer(ReadyTimeout)
	defer timer.Stop()
	for !strings.Contains(b.log.tail(), s) {
		select {
		case <-b.log.changed:
		case <-timer.C:
			b.t.Fatalf("brokertest: %s never logged %q:\n%s", b.kind, s, b.log.tail())
		}
	}
}
