// Package sim simulates the services Landale's server talks to (OBS, Twitch,
// Rainwave, IronMON, the Nurvus process manager) with realistic in-memory
// state, a demo generator that emits a plausible stream of events, and a
// Controller that makes any service (and the stream state producer) slow,
// failing or down at run time.
//
// Simulations start deterministic and quiet: OBS connected and idle on scene
// "Coding", every service up, IronMON challenges 1 to 10 with checkpoints.
package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Service names, as used by POST /api/simulate and -simulate.
const (
	OBS      = "obs"
	Twitch   = "twitch"
	Rainwave = "rainwave"
	Ironmon  = "ironmon"
	Nurvus   = "nurvus"
	Stream   = "stream"
)

// Services lists every simulated service name.
var Services = []string{OBS, Twitch, Rainwave, Ironmon, Nurvus, Stream}

// Mode is how a simulated service behaves.
type Mode string

// Modes.
const (
	// Up answers normally.
	Up Mode = "up"
	// Down refuses every call at once, like a stopped process.
	Down Mode = "down"
	// Slow answers normally after Controller's slow delay (6 s by default,
	// past the 5 s service timeout of the channels).
	Slow Mode = "slow"
	// Failing answers every call with an error.
	Failing Mode = "failing"
)

// Valid reports whether m is one of the four modes.
func (m Mode) Valid() bool { return m == Up || m == Down || m == Slow || m == Failing }

// Errors a simulated call returns; they wrap into *ServiceError.
var (
	// ErrDown is wrapped by errors of a service in Down mode.
	ErrDown = errors.New("sim: service down")
	// ErrFailing is wrapped by errors of a service in Failing mode.
	ErrFailing = errors.New("sim: service failing")
	// ErrUnknownService is returned for a name not in Services.
	ErrUnknownService = errors.New("sim: unknown service")
	// ErrInvalidMode is returned for a mode that is not up, down, slow or failing.
	ErrInvalidMode = errors.New("sim: invalid mode")
)

// ServiceError is the error of a simulated service call, Landale's
// Server.ServiceError: Message is what channels show to clients.
type ServiceError struct {
	Service string // service name
	Reason  string // "service_unavailable", "request_failed", "not_found", ...
	Message string // human-readable text sent to clients
	Err     error  // ErrDown, ErrFailing or nil
}

// Error returns Message.
func (e *ServiceError) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *ServiceError) Unwrap() error { return e.Err }

// DefaultSlowDelay is how long a call to a Slow service takes.
const DefaultSlowDelay = 6 * time.Second

// Controller holds the mode of every simulated service. It is safe for
// concurrent use.
type Controller struct {
	mu        sync.Mutex
	modes     map[string]Mode
	slowDelay time.Duration
	watchers  []func(service string, from, to Mode)
}

// NewController returns a Controller with every service Up. slowDelay is
// the duration of a Slow call; zero means DefaultSlowDelay.
func NewController(slowDelay time.Duration) *Controller {
	if slowDelay <= 0 {
		slowDelay = DefaultSlowDelay
	}
	c := &Controller{modes: make(map[string]Mode, len(Services)), slowDelay: slowDelay}
	for _, s := range Services {
		c.modes[s] = Up
	}
	return c
}

// SlowDelay returns the duration of a Slow call.
func (c *Controller) SlowDelay() time.Duration { return c.slowDelay }

// Mode returns the mode of service (Up for unknown names).
func (c *Controller) Mode(service string) Mode {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.modes[service]; ok {
		return m
	}
	return Up
}

// Set changes the mode of service and tells the watchers when it changed.
func (c *Controller) Set(service string, mode Mode) error {
	if !slices.Contains(Services, service) {
		return fmt.Errorf("%w: %q (want one of %s)", ErrUnknownService, service, strings.Join(Services, ", "))
	}
	if !mode.Valid() {
		return fmt.Errorf("%w: %q (want up, down, slow or failing)", ErrInvalidMode, mode)
	}
	c.mu.Lock()
	from := c.modes[service]
	c.modes[service] = mode
	watchers := slices.Clone(c.watchers)
	c.mu.Unlock()
	if from != mode {
		for _, w := range watchers {
			w(service, from, mode)
		}
	}
	return nil
}

// Watch registers fn to be called after every mode change, on the goroutine
// that changed it.
func (c *Controller) Watch(fn func(service string, from, to Mode)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watchers = append(c.watchers, fn)
}

// Snapshot returns the mode of every service.
func (c *Controller) Snapshot() map[string]Mode {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Mode, len(c.modes))
	for k, v := range c.modes {
		out[k] = v
	}
	return out
}

// Gate applies the mode of service to a call: nil when Up, a
// *ServiceError wrapping ErrDown or ErrFailing, or after the slow delay nil
// (or ctx's error if ctx ends first). Every simulated service calls it
// first.
func (c *Controller) Gate(ctx context.Context, service string) error {
	switch c.Mode(service) {
	case Down:
		return &ServiceError{Service: service, Reason: "service_unavailable", Message: downMessage(service), Err: ErrDown}
	case Failing:
		return &ServiceError{Service: service, Reason: "request_failed", Message: failMessage(service), Err: ErrFailing}
	case Slow:
		t := time.NewTimer(c.slowDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}

func downMessage(service string) string {
	switch service {
	case OBS:
		return "OBS WebSocket not connected"
	case Twitch:
		return "Twitch EventSub not connected"
	case Rainwave:
		return "Rainwave service unavailable"
	case Ironmon:
		return "IronMON TCP server not running"
	case Stream:
		return "StreamProducer service is not available"
	}
	return service + " unavailable"
}

func failMessage(service string) string {
	switch service {
	case OBS:
		return "OBS request failed: simulated failure"
	case Twitch:
		return "Twitch API request failed: simulated failure"
	case Rainwave:
		return "Rainwave API request failed: simulated failure"
	case Ironmon:
		return "IronMON query failed: simulated failure"
	case Stream:
		return "StreamProducer failed: simulated failure"
	}
	return service + " failed: simulated failure"
}

// ParseSpec parses a -simulate flag value: "obs=down,twitch=slow". An empty
// spec yields an empty map.
func ParseSpec(spec string) (map[string]Mode, error) {
	out := map[string]Mode{}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, mode, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("sim: %q: want service=mode", part)
		}
		name, m := strings.TrimSpace(name), Mode(strings.TrimSpace(mode))
		if !slices.Contains(Services, name) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownService, name)
		}
		if !m.Valid() {
			return nil, fmt.Errorf("%w: %q for %s", ErrInvalidMode, mode, name)
		}
		out[name] = m
	}
	return out, nil
}

// Apply sets every mode of a parsed spec, in name order.
func (c *Controller) Apply(modes map[string]Mode) error {
	names := make([]string, 0, len(modes))
	for n := range modes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := c.Set(n, modes[n]); err != nil {
			return err
		}
	}
	return nil
}
