package fallback

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"
)

// Result says which path produced a value.
type Result[T any] struct {
	// Value is the primary's value, or the fallback's when Fallback is true.
	Value T
	// Fallback reports whether the fallback function was used.
	Fallback bool
	// Err is why the primary did not produce the value: its error, a
	// [*PanicError], an error matching [ErrTimeout], the caller's ctx error,
	// or [ErrOpen]. It is nil when Fallback is false.
	Err error
}

// Options configures [Do]. A nil *Options means the defaults.
type Options struct {
	// Name is the service name used in log records and errors.
	// Defaults to "".
	Name string

	// Timeout bounds the primary: it gets a ctx with this deadline, and Do
	// stops waiting for it when the deadline passes. Zero means no timeout
	// beyond the caller's ctx.
	Timeout time.Duration

	// Logger receives one record per call that used the fallback.
	// Defaults to discarding.
	Logger *slog.Logger
}

// Do calls primary and returns its value. If primary returns an error,
// panics, or does not return within Options.Timeout (or before ctx ends),
// Do calls fallback with ctx and that error and returns fallback's value
// instead, with Result.Fallback set.
//
// The returned error is nil whenever a value was produced by either path. It
// is an [*Error] (holding both errors) when the fallback failed too, or was
// nil. A panic in the fallback becomes a [*PanicError] inside that *Error.
//
// Do logs one record per fallback use: at Warn when the fallback produced
// the value, at Error when it failed as well. The record is logged with ctx,
// so handlers such as correlation.NewHandler see its values; it carries the
// service name and the primary's error.
//
// If ctx ends while the primary runs, Do stops waiting and uses the fallback
// with ctx's error. The fallback still gets that (done) ctx; it is meant to be
// cheap and local, such as returning static content.
//
// When the primary can be interrupted (a timeout, or a cancelable ctx) it
// runs on its own goroutine; if it ignores its ctx, that goroutine keeps
// running after Do returned, until the primary returns, and its result is
// discarded. Use [Call] with a [Breaker] to have such goroutines counted and
// waited for.
func Do[T any](ctx context.Context, primary func(ctx context.Context) (T, error), fallback func(ctx context.Context, err error) (T, error), opts *Options) (Result[T], error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = discard
	}
	return run(ctx, o.Name, o.Timeout, o.Logger, nil, primary, fallback)
}

// Call is [Do] guarded by b: the service name, timeout and logger come from
// b's options. While b is open (or half-open with every probe slot taken)
// the primary is not called and the fallback gets an error matching
// [ErrOpen]; such short-circuited calls are logged at Debug only, so an open
// breaker does not flood the log. The primary's outcome is reported to b:
// errors (filtered by BreakerOptions.IsFailure), panics and timeouts count as
// failures; a primary that fails because the caller's ctx ended counts as
// neither failure nor success. A nil b makes Call the same as Do with nil
// options.
func Call[T any](ctx context.Context, b *Breaker, primary func(ctx context.Context) (T, error), fallback func(ctx context.Context, err error) (T, error)) (Result[T], error) {
	if b == nil {
		return Do(ctx, primary, fallback, nil)
	}
	return run(ctx, b.name, b.timeout, b.logger, b, primary, fallback)
}

var discard = slog.New(slog.DiscardHandler)

func run[T any](ctx context.Context, name string, timeout time.Duration, logger *slog.Logger, b *Breaker,
	primary func(context.Context) (T, error), fallback func(context.Context, error) (T, error),
) (Result[T], error) {
	level := slog.LevelWarn
	var perr error
	var v T
	if b != nil {
		gen, err := b.allow()
		if err != nil {
			perr, level = err, slog.LevelDebug
		} else {
			var callerGone bool
			v, perr, callerGone = runPrimary(ctx, timeout, &b.tracker, primary)
			b.record(gen, perr, callerGone)
		}
	} else {
		v, perr, _ = runPrimary(ctx, timeout, nil, primary)
	}
	if perr == nil {
		return Result[T]{Value: v}, nil
	}

	res := Result[T]{Fallback: true, Err: perr}
	var ferr error
	if fallback == nil {
		ferr = ErrNoFallback
	} else {
		res.Value, ferr = callSafe(ctx, "fallback: fallback", func(ctx context.Context) (T, error) { return fallback(ctx, perr) })
	}
	if ferr != nil {
		var zero T
		res.Value = zero
		logger.LogAttrs(ctx, slog.LevelError, "fallback: primary and fallback failed",
			slog.String("service", name), slog.Any("error", perr), slog.Any("fallback_error", ferr))
		return res, &Error{Service: name, Primary: perr, Fallback: ferr}
	}
	msg := "fallback: primary failed, using fallback"
	if level == slog.LevelDebug {
		msg = "fallback: circuit breaker open, using fallback"
	}
	logger.LogAttrs(ctx, level, msg, slog.String("service", name), slog.Any("error", perr))
	return res, nil
}

// outcome is what the primary's goroutine hands back.
type outcome[T any] struct {
	v   T
	err error
}

// runPrimary calls primary with a ctx bounded by timeout. callerGone reports
// that it failed because the caller's ctx ended (not the service's fault).
func runPrimary[T any](ctx context.Context, timeout time.Duration, tr *tracker, primary func(context.Context) (T, error)) (v T, err error, callerGone bool) {
	pctx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		pctx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()

	if pctx.Done() == nil {
		// Nothing can interrupt the call: run it here, with no goroutine.
		v, err = callSafe(pctx, "fallback: primary", primary)
		return v, err, false
	}

	done := make(chan outcome[T], 1) // buffered: a late primary never blocks
	if tr != nil {
		tr.add()
	}
	go func() {
		if tr != nil {
			defer tr.done()
		}
		// Until callSafe returns normally, the outcome is "exited": that
		// only stays if the primary called runtime.Goexit.
		o := outcome[T]{err: &PanicError{Op: "fallback: primary", Value: "runtime.Goexit called"}}
		defer func() { done <- o }()
		o.v, o.err = callSafe(pctx, "fallback: primary", primary)
	}()

	var o outcome[T]
	select {
	case o = <-done:
	case <-pctx.Done():
		select {
		case o = <-done: // finished at the deadline: use its result
		default:
			o.err = pctx.Err()
		}
	}
	if o.err == nil {
		return o.v, nil, false
	}
	if ctx.Err() != nil {
		// The caller's own ctx ended; report its error unless the primary
		// returned a more specific one.
		if errors.Is(o.err, ctx.Err()) {
			return v, ctx.Err(), true
		}
		return v, o.err, true
	}
	if timeout > 0 && errors.Is(pctx.Err(), context.DeadlineExceeded) {
		var cause error
		if !errors.Is(o.err, context.DeadlineExceeded) {
			cause = o.err
		}
		return v, &timeoutError{after: timeout, cause: cause}, false
	}
	return v, o.err, false
}

// callSafe calls f, turning a panic into a *PanicError whose Op is op.
func callSafe[T any](ctx context.Context, op string, f func(context.Context) (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, &PanicError{Op: op, Value: r, Stack: debug.Stack()}
		}
	}()
	return f(ctx)
}
