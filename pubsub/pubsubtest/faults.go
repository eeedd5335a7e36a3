package pubsubtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pyre-go/pyre/pubsub"
)

// Broker is the broker two nodes share in [RunFaults], under the test's
// control. Its methods are called from the test goroutine.
type Broker interface {
	// Freeze makes the broker stop processing anything while its
	// connections stay open (a hung broker, SIGSTOP), and returns once it
	// is frozen: nothing sent after Freeze returns reaches a subscriber
	// before Thaw.
	Freeze()
	// Thaw undoes Freeze.
	Thaw()
	// Kill stops the broker abruptly (connections are reset, nothing is
	// saved) and returns once it is gone.
	Kill()
	// Restart starts a killed broker again at the same address.
	Restart()
}

// FaultBroadcasts is how many concurrent Broadcasts [RunFaults] makes
// while the broker is down or frozen.
const FaultBroadcasts = 8

// RunFaults runs the fault suite: two nodes share a broker that the suite
// freezes or kills. It checks the contract of Broadcast's nil error: while
// the broker cannot take a message, Broadcast (on several goroutines at
// once, and with a context that has no deadline) returns an error wrapping
// pubsub.ErrUnavailable within [WaitTimeout] instead of reporting success
// for a message that the broker never got; a Broadcast whose ctx ends
// first also fails; local subscribers get every message either way; and
// once the broker is back, both nodes recover and broadcasts flow again.
//
// newCluster is called once per subtest and must return two fresh nodes
// on a fresh broker, like [RunCluster]'s, and the broker. The nodes should
// use their adapter's default timeouts (or ones well below WaitTimeout).
func RunFaults(t *testing.T, newCluster func(t *testing.T) (a, b pubsub.PubSub, broker Broker)) {
	tests := []struct {
		name string
		down func(Broker)
		up   func(Broker)
	}{
		{"Frozen", Broker.Freeze, Broker.Thaw},
		{"Killed", Broker.Kill, Broker.Restart},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b, broker := newCluster(t)
			faultCase(t, a, b, func() { tc.down(broker) }, func() { tc.up(broker) }, runPrefix())
		})
	}
}

// faultCase checks a's broadcasts to b while down() has taken the broker
// away, and recovery after up().
func faultCase(t *testing.T, a, b pubsub.PubSub, down, up func(), prefix string) {
	topic := prefix + "room:fault"
	f := newFence(prefix)
	onA := NewCollector("a", 4*FaultBroadcasts)
	onB := NewCollector("b", 4*FaultBroadcasts)
	mustSubscribe(t, a, topic, onA)
	mustSubscribe(t, b, topic, onB)
	f.join(t, b, onB)
	Sync(t, a)
	Sync(t, b)
	mustBroadcast(t, a, &pubsub.Message{Topic: topic, Event: "before"})
	if got := onB.Next(t); got.Event != "before" {
		t.Fatalf("b got %q, want before", got.Event)
	}
	if got := onA.Next(t); got.Event != "before" {
		t.Fatalf("a got %q, want before", got.Event)
	}

	down()
	isUp := false
	defer func() {
		if !isUp {
			up() // a failed check must not leave the broker down
		}
	}()

	// Concurrent callers, no deadline: the adapter's own bound applies.
	errs := make(chan error, FaultBroadcasts+1)
	for i := range FaultBroadcasts {
		go func() {
			errs <- a.Broadcast(context.Background(), &pubsub.Message{Topic: topic, Event: fmt.Sprintf("down-%d", i)})
		}()
	}
	// A caller whose ctx ends first.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		errs <- a.Broadcast(ctx, &pubsub.Message{Topic: topic, Event: "down-ctx"})
	}()
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	var claimed int
	for range FaultBroadcasts + 1 {
		select {
		case err := <-errs:
			switch {
			case err == nil:
				claimed++
			case !errors.Is(err, pubsub.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded):
				t.Errorf("Broadcast with the broker down: %v, want an error wrapping pubsub.ErrUnavailable", err)
			}
		case <-timer.C:
			t.Fatalf("Broadcast with the broker down did not return within %v", WaitTimeout)
		}
	}
	if claimed > 0 {
		t.Errorf("%d of %d Broadcasts returned nil while the broker could not have received them: "+
			"a nil error must mean the broker took the message", claimed, FaultBroadcasts+1)
	}
	// Local delivery happens whatever the broker does.
	want := map[string]bool{"down-ctx": true}
	for i := range FaultBroadcasts {
		want[fmt.Sprintf("down-%d", i)] = true
	}
	for range FaultBroadcasts + 1 {
		got := onA.Next(t)
		if !want[got.Event] {
			t.Fatalf("a got %q twice or unexpectedly", got.Event)
		}
		delete(want, got.Event)
	}

	up()
	isUp = true
	Sync(t, a)
	Sync(t, b)
	mustBroadcast(t, a, &pubsub.Message{Topic: topic, Event: "after"})
	// Messages that failed may or may not arrive (the broker may process
	// them late); "after" must.
	var seen bool
	for _, m := range onB.Until(t, f.send(t, a)) {
		seen = seen || m.Event == "after"
	}
	if !seen {
		t.Fatalf("b did not get the broadcast made after the broker came back")
	}
}
