// Package fallback runs a call to a service with a fallback for when the
// service fails, and guards services with circuit breakers.
//
// [Do] calls a primary function and, when it fails, a fallback that
// produces a substitute value (for instance static content while a service
// is down). It treats an error, a panic and a timeout of the primary alike,
// logs once (with the caller's ctx, so a correlation id added by
// correlation.NewHandler appears), and returns the fallback's value together
// with a [Result] that says which path produced it.
//
// A [Breaker] stops calling a service that keeps failing: after
// [BreakerOptions.FailureThreshold] consecutive failures it opens and [Call]
// goes straight to the fallback (with [ErrOpen]) without calling the
// primary; after [BreakerOptions.CoolDown] it lets a limited number of probe
// calls through (half-open) and closes on the first success or opens again
// on a failure. [Options] configures one [Do]; [BreakerOptions] configures a
// breaker, or every breaker of a Registry.
// A [Registry] holds one breaker per service name, created on first use with
// the same options, and reports all their states for dashboards.
// pyre's reference server (examples/landale) calls each of its services
// through a breaker of its own.
//
// A call through a registry's breaker, from the example of Call (obsStatus always
// fails, offline is the fallback; the breaker opens after two failures):
//
//	for range 4 {
//		res, _ := fallback.Call(context.Background(), reg.Breaker("obs"), obsStatus, offline)
//		fmt.Println(res.Value, errors.Is(res.Err, fallback.ErrOpen))
//	}
//
// # Goroutines
//
// The primary runs on the caller's goroutine unless it can be interrupted
// (a timeout is set or ctx can be canceled). Then it runs on a goroutine of
// its own, so that Do can return at the deadline even if the primary ignores
// its ctx. That goroutine exits as soon as the primary returns, and its late
// result is discarded; it never outlives the primary. Calls through a
// [Breaker] count these goroutines, and [Breaker.Wait] and [Registry.Wait]
// wait for them, so an owner can make sure none is left at shutdown.
//
// Breakers start no goroutines and use no timers: the switch from open to
// half-open happens at the first call (or [Breaker.State]) after the
// cool-down.
package fallback
