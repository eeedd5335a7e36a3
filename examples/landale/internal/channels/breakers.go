package channels

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/pyre-go/pyre/examples/landale/internal/sim"
	"github.com/pyre-go/pyre/fallback"
)

// Breakers holds one fallback.Breaker per service name (obs, twitch,
// rainwave, ironmon, nurvus, stream). The channels guard their calls with
// them (their Breaker method makes them a channel.BreakerSource), and so
// does the HTTP API. A call rejected by an open breaker fails fast with an
// error that carries the service's last failure (fallback.Breaker), so
// replies keep the text the service last gave. It is safe for concurrent
// use.
//
// It is a fallback.Registry whose Reset replaces a breaker rather than
// closing it, so that a scenario started by a mode change reports no
// breaker until the service is called again.
type Breakers struct {
	settings fallback.BreakerOptions

	mu      sync.Mutex
	m       map[string]*fallback.Breaker
	retired []*fallback.Breaker // replaced by Reset; still waited for
}

// NewBreakers returns an empty set of breakers made with s. When
// s.IsFailure is nil, IsServiceFailure decides what counts as a failure.
func NewBreakers(s *fallback.BreakerOptions) *Breakers {
	var o fallback.BreakerOptions
	if s != nil {
		o = *s
	}
	if o.IsFailure == nil {
		o.IsFailure = IsServiceFailure
	}
	return &Breakers{settings: o, m: map[string]*fallback.Breaker{}}
}

// IsServiceFailure reports whether err means the service is unwell (down,
// failing, timed out, crashed, refusing connections, 5xx) rather than that the
// request was wrong (unknown scene, bad station, not found), which does not
// count against the breaker.
func IsServiceFailure(err error) bool {
	var ne *sim.NurvusError
	switch {
	case errors.Is(err, sim.ErrDown), errors.Is(err, sim.ErrFailing), errors.Is(err, ErrServiceTimeout),
		errors.Is(err, ErrServiceCrashed):
		return true
	case errors.As(err, &ne):
		return ne.Kind != sim.NurvusHTTP || ne.Status >= 500
	}
	return false
}

// Breaker returns the breaker of service, creating it closed on first use;
// nil for a nil *Breakers (calls unguarded).
func (b *Breakers) Breaker(service string) *fallback.Breaker {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	br, ok := b.m[service]
	if !ok {
		br = fallback.NewBreaker(service, &b.settings)
		b.m[service] = br
	}
	return br
}

// Reset replaces the breaker of service with a closed one. The simulation
// calls it when a service's mode changes, so that every scenario starts
// from a closed breaker.
func (b *Breakers) Reset(service string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.m[service]; ok {
		b.retired = append(b.retired, old)
		delete(b.m, service)
	}
}

// States returns the state of every breaker in use ("closed", "open",
// "half-open"), by service name.
func (b *Breakers) States() map[string]string {
	out := make(map[string]string)
	for name, s := range b.StateValues() {
		out[name] = s.String()
	}
	return out
}

// StateValues returns the state of every breaker in use, by service name,
// as fallback.Registry.States does (the metrics read it).
func (b *Breakers) StateValues() map[string]fallback.State {
	b.mu.Lock()
	list := make([]*fallback.Breaker, 0, len(b.m))
	for _, br := range b.m {
		list = append(list, br)
	}
	b.mu.Unlock()
	out := make(map[string]fallback.State, len(list))
	for _, br := range list {
		out[br.Name()] = br.State()
	}
	return out
}

// Wait waits for every primary goroutine the breakers started, or ctx.
func (b *Breakers) Wait(ctx context.Context) error {
	b.mu.Lock()
	list := append([]*fallback.Breaker{}, b.retired...)
	for _, br := range b.m {
		list = append(list, br)
	}
	b.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Name() < list[j].Name() })
	for _, br := range list {
		if err := br.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}
