package main

import (
	"testing"

	"go.uber.org/goleak"
)

// centrifuge unsubscribes a node from the broker one second after a
// channel's last client left, in a job of its own that sleeps first; it
// ends on its own after the test, so it is not counted as a leak.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/centrifugal/centrifuge.(*Node).unsubscribeFromBrokerWhenEmpty.func1"))
}
