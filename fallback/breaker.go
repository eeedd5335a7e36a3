package fallback

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Defaults of BreakerOptions.
const (
	DefaultFailureThreshold = 5
	DefaultCoolDown         = 30 * time.Second
	DefaultHalfOpenProbes   = 1
)

// BreakerOptions configures a [Breaker] (and, through [NewRegistry], every
// breaker of a [Registry]); [Options] configures a single [Do]. A nil
// *BreakerOptions or a zero field means the default. Constructors copy the
// options; changing them afterwards has no effect.
type BreakerOptions struct {
	// FailureThreshold is the number of consecutive failures that opens a
	// closed breaker. Any success resets the count. (Consecutive failures,
	// rather than a failure ratio over a window, keep the state small and the
	// behaviour easy to predict for the low call rates of a streaming
	// backend.) Defaults to 5.
	FailureThreshold int

	// CoolDown is how long an open breaker rejects calls before it lets
	// probes through (half-open). Defaults to 30 s.
	CoolDown time.Duration

	// HalfOpenProbes is the number of probe calls a half-open breaker lets
	// run at the same time; further calls are rejected with ErrOpen. The
	// first probe that succeeds closes the breaker, the first that fails
	// opens it again. Defaults to 1.
	HalfOpenProbes int

	// Timeout bounds each primary call made through [Call] (see
	// [Options.Timeout]). Zero means no timeout.
	Timeout time.Duration

	// IsFailure decides whether an error returned by the primary counts as
	// a failure of the service. Errors it rejects (say, "not found") still
	// make Call use the fallback but count as successes. It is not consulted
	// for panics, timeouts and ErrOpen. Defaults to counting every error.
	IsFailure func(err error) bool

	// OnStateChange is called after every state change with the breaker's
	// name. Calls are made in the order of the changes, one at a time, by
	// the goroutine that caused the change (or one already delivering an
	// earlier change), with no lock held, so the callback may use the
	// breaker. It should return quickly, because that goroutine is a caller
	// of Call or State. Defaults to none.
	OnStateChange func(name string, from, to State)

	// Logger receives state changes (open at Warn, others at Info) and,
	// through Call, fallback uses. Defaults to discarding.
	Logger *slog.Logger

	// Now returns the current time; tests may inject a fake clock (or use
	// testing/synctest). Defaults to time.Now.
	Now func() time.Time
}

func (opts *BreakerOptions) withDefaults() BreakerOptions {
	var o BreakerOptions
	if opts != nil {
		o = *opts
	}
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = DefaultFailureThreshold
	}
	if o.CoolDown <= 0 {
		o.CoolDown = DefaultCoolDown
	}
	if o.HalfOpenProbes <= 0 {
		o.HalfOpenProbes = DefaultHalfOpenProbes
	}
	if o.Logger == nil {
		o.Logger = discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Breaker is a circuit breaker for one service. Use it with [Call]. Its
// methods are safe for concurrent use.
//
// States and transitions:
//
//	Closed   --FailureThreshold consecutive failures-->  Open
//	Open     --CoolDown elapsed (at the next call)-->    HalfOpen
//	HalfOpen --a probe succeeds-->                       Closed
//	HalfOpen --a probe fails-->                          Open (cool-down restarts)
//
// Outcomes of calls that started before the latest state change are
// ignored, so a slow call from an earlier period cannot reopen a breaker
// that a probe just closed.
type Breaker struct {
	name      string
	threshold int
	coolDown  time.Duration
	probes    int
	timeout   time.Duration
	isFailure func(error) bool
	onChange  func(string, State, State)
	logger    *slog.Logger
	now       func() time.Time

	tracker tracker // primary goroutines started by Call

	errOpen, errBusy error // made once: rejecting a call allocates nothing

	mu       sync.Mutex
	state    State
	gen      uint64    // incremented at every state change
	failures int       // consecutive failures while closed
	inFlight int       // probes running while half-open
	openedAt time.Time // when the breaker last opened
	last     error     // the latest failure counted; nil after Reset

	// State changes waiting to be delivered to onChange, in order.
	pending    []change
	delivering bool
}

type change struct{ from, to State }

// NewBreaker returns a closed breaker for the service called name. opts
// may be nil (all defaults).
func NewBreaker(name string, opts *BreakerOptions) *Breaker {
	o := opts.withDefaults()
	return &Breaker{
		name:      name,
		threshold: o.FailureThreshold,
		coolDown:  o.CoolDown,
		probes:    o.HalfOpenProbes,
		timeout:   o.Timeout,
		isFailure: o.IsFailure,
		onChange:  o.OnStateChange,
		logger:    o.Logger,
		now:       o.Now,
		errOpen:   &openError{msg: "fallback: " + name + ": " + ErrOpen.Error()},
		errBusy:   &openError{msg: "fallback: " + name + ": " + ErrOpen.Error() + " (half-open, probes busy)"},
	}
}

// LastFailure returns the latest error that counted as a failure of the
// service (see BreakerOptions.IsFailure; panics and timeouts count), or nil when
// none did since the breaker was made or last Reset. Calls rejected while
// the breaker is open return an error that matches both [ErrOpen] and this
// failure, so a caller can answer with the service's own error while it
// does not call the service.
func (b *Breaker) LastFailure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// Name returns the service name the breaker was created with.
func (b *Breaker) Name() string { return b.name }

// State returns the current state. An open breaker whose cool-down has
// passed reports (and switches to) HalfOpen.
func (b *Breaker) State() State {
	b.mu.Lock()
	b.advanceLocked()
	s := b.state
	b.mu.Unlock()
	b.deliver()
	return s
}

// Wait waits until every primary goroutine started by [Call] with this
// breaker has returned, including those whose results were discarded after a
// timeout. It returns ctx.Err() if ctx ends first.
func (b *Breaker) Wait(ctx context.Context) error {
	return b.tracker.wait(ctx)
}

// allow decides whether a call may run the primary and returns the
// generation its outcome belongs to.
func (b *Breaker) allow() (uint64, error) {
	b.mu.Lock()
	b.advanceLocked()
	var err error
	switch b.state {
	case Open:
		err = b.errOpen
	case HalfOpen:
		if b.inFlight >= b.probes {
			err = b.errBusy
		} else {
			b.inFlight++
		}
	}
	gen := b.gen
	b.mu.Unlock()
	b.deliver()
	return gen, err
}

// record reports the outcome of a call allowed in generation gen.
func (b *Breaker) record(gen uint64, err error, callerGone bool) {
	failed := err != nil && !callerGone
	if failed && b.isFailure != nil && !errors.Is(err, ErrPanic) && !errors.Is(err, ErrTimeout) {
		failed = b.isFailure(err)
	}
	succeeded := err == nil || (!failed && !callerGone)

	b.mu.Lock()
	if gen != b.gen {
		b.mu.Unlock()
		return // the breaker changed state since this call started
	}
	if failed {
		b.last = err
	}
	switch b.state {
	case Closed:
		switch {
		case failed:
			b.failures++
			if b.failures >= b.threshold {
				b.setLocked(Open)
			}
		case succeeded:
			b.failures = 0
		}
	case HalfOpen:
		b.inFlight--
		switch {
		case failed:
			b.setLocked(Open)
		case succeeded:
			b.setLocked(Closed)
		}
	}
	b.mu.Unlock()
	b.deliver()
}

// Reset closes the breaker and clears its failure count, as an operator
// does after fixing a service (or a test between scenarios). Calls that
// started before Reset no longer count. A closed breaker with no failures
// is left as it is.
func (b *Breaker) Reset() {
	b.mu.Lock()
	b.last = nil
	if b.state == Closed {
		b.failures = 0
		b.mu.Unlock()
		return
	}
	b.setLocked(Closed)
	b.mu.Unlock()
	b.deliver()
}

// advanceLocked moves an open breaker to half-open once its cool-down has
// passed.
func (b *Breaker) advanceLocked() {
	if b.state == Open && !b.now().Before(b.openedAt.Add(b.coolDown)) {
		b.setLocked(HalfOpen)
	}
}

func (b *Breaker) setLocked(to State) {
	from := b.state
	b.state = to
	b.gen++
	b.failures = 0
	b.inFlight = 0
	if to == Open {
		b.openedAt = b.now()
		// Rejections until the next change carry the failure that opened
		// the breaker (made here once: rejecting a call allocates nothing).
		b.errOpen = &openError{msg: "fallback: " + b.name + ": " + ErrOpen.Error(), last: b.last}
		b.errBusy = &openError{msg: "fallback: " + b.name + ": " + ErrOpen.Error() + " (half-open, probes busy)", last: b.last}
	}
	b.pending = append(b.pending, change{from, to})
}

// deliver logs pending state changes and calls onChange for them, in order,
// unless another goroutine is already doing so (it will pick them up).
func (b *Breaker) deliver() {
	b.mu.Lock()
	if b.delivering || len(b.pending) == 0 {
		b.mu.Unlock()
		return
	}
	b.delivering = true
	for len(b.pending) > 0 {
		c := b.pending[0]
		b.pending = b.pending[1:]
		b.mu.Unlock()
		b.notify(c)
		b.mu.Lock()
	}
	b.pending = nil
	b.delivering = false
	b.mu.Unlock()
}

// notify logs one change and calls onChange. A panic in either is
// contained (and logged if the logger still works), so delivery goes on.
func (b *Breaker) notify(c change) {
	defer func() {
		if r := recover(); r != nil {
			defer func() { _ = recover() }()
			b.logger.LogAttrs(context.Background(), slog.LevelError, "fallback: state change notification panicked",
				slog.String("service", b.name), slog.Any("panic", r))
		}
	}()
	level := slog.LevelInfo
	if c.to == Open {
		level = slog.LevelWarn
	}
	b.logger.LogAttrs(context.Background(), level, "fallback: circuit breaker state changed",
		slog.String("service", b.name), slog.String("from", c.from.String()), slog.String("to", c.to.String()))
	if b.onChange != nil {
		b.onChange(b.name, c.from, c.to)
	}
}

// tracker counts running goroutines and lets callers wait for zero.
type tracker struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil while n == 0
}

func (t *tracker) add() {
	t.mu.Lock()
	if t.n == 0 {
		t.zero = make(chan struct{})
	}
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		close(t.zero)
		t.zero = nil
	}
	t.mu.Unlock()
}

func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	ch := t.zero
	t.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
