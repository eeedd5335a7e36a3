package fallback

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrOpen is the primary error reported when a [Breaker] rejected the call
// without running the primary: it is open, or half-open with all probe slots
// taken. That error also matches the breaker's last failure
// ([Breaker.LastFailure]) when there is one, and its text ends with
// "(last failure: <text>)".
var ErrOpen = errors.New("fallback: circuit breaker open")

// ErrPanic is matched (with errors.Is) by every [*PanicError]. The channel
// package's ErrPanic is this same value.
var ErrPanic = errors.New("panic")

// ErrTimeout is matched by the primary error when the primary did not finish
// within the timeout. That error also matches context.DeadlineExceeded and,
// if the primary returned an error at the deadline, that error.
var ErrTimeout = errors.New("fallback: primary timed out")

// ErrNoFallback is the fallback error in an [*Error] when the fallback
// function was nil.
var ErrNoFallback = errors.New("fallback: no fallback function")

// PanicError is a recovered panic turned into an error: the primary or
// fallback function's panic here, and a channel handler's panic in package
// channel, whose PanicError is this type (an alias), so one errors.As target
// serves both. errors.Is(err, ErrPanic) reports true for it, and so does
// errors.Is(err, v) when the panic value v is itself an error.
type PanicError struct {
	// Op names what panicked, such as "fallback: primary" or
	// "channel: handler"; it may be empty.
	Op string
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine's stack at the time of the panic.
	Stack []byte
}

// Error returns "<Op> panicked: <Value>", or "panic: <Value>" without Op.
func (e *PanicError) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("panic: %v", e.Value)
	}
	return fmt.Sprintf("%s panicked: %v", e.Op, e.Value)
}

// Unwrap returns ErrPanic and, if the panic value is an error, that error.
func (e *PanicError) Unwrap() []error {
	if err, ok := e.Value.(error); ok {
		return []error{ErrPanic, err}
	}
	return []error{ErrPanic}
}

// openError is the primary error of a call a Breaker rejected. It matches
// ErrOpen and the breaker's last failure.
type openError struct {
	msg  string
	last error // Breaker.LastFailure when the breaker opened; may be nil
}

func (e *openError) Error() string {
	if e.last != nil {
		return e.msg + " (last failure: " + e.last.Error() + ")"
	}
	return e.msg
}

// Unwrap returns ErrOpen and the last failure, if any.
func (e *openError) Unwrap() []error {
	if e.last != nil {
		return []error{ErrOpen, e.last}
	}
	return []error{ErrOpen}
}

// timeoutError reports a primary that ran past its timeout.
type timeoutError struct {
	after time.Duration
	cause error // the primary's own error, if it returned one at the deadline
}

func (e *timeoutError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("fallback: primary timed out after %v: %v", e.after, e.cause)
	}
	return fmt.Sprintf("fallback: primary timed out after %v", e.after)
}

// Unwrap returns ErrTimeout, context.DeadlineExceeded and the primary's own
// error if it returned one.
func (e *timeoutError) Unwrap() []error {
	if e.cause != nil {
		return []error{ErrTimeout, context.DeadlineExceeded, e.cause}
	}
	return []error{ErrTimeout, context.DeadlineExceeded}
}

// Error is returned by [Do] and [Call] when both the primary and the
// fallback failed. errors.Is and errors.As look into both errors.
type Error struct {
	// Service is the name of the service (Options.Name or the breaker name).
	Service string
	// Primary is why the primary did not produce a value (as in
	// Result.Err).
	Primary error
	// Fallback is the fallback's error, or ErrNoFallback.
	Fallback error
}

// Error describes both failures.
func (e *Error) Error() string {
	return fmt.Sprintf("fallback: %s: fallback failed: %v (primary: %v)", e.Service, e.Fallback, e.Primary)
}

// Unwrap returns the fallback error and the primary error.
func (e *Error) Unwrap() []error {
	return []error{e.Fallback, e.Primary}
}
