package fallback

import (
	"context"
	"maps"
	"sync"
)

// Registry holds one [Breaker] per service name, all made with the same
// options, so one registry serves every service of an application. Its
// methods are safe for concurrent use.
type Registry struct {
	opts BreakerOptions

	mu       sync.Mutex
	breakers map[string]*Breaker
}

// NewRegistry returns an empty registry whose breakers use opts (nil means
// the defaults; see [BreakerOptions]). BreakerOptions.OnStateChange receives
// the name of the breaker that changed, so one callback can serve all of
// them.
func NewRegistry(opts *BreakerOptions) *Registry {
	return &Registry{opts: opts.withDefaults(), breakers: make(map[string]*Breaker)}
}

// Breaker returns the breaker for name, creating it (closed) on first use.
func (r *Registry) Breaker(name string) *Breaker {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.breakers[name]
	if !ok {
		b = NewBreaker(name, &r.opts)
		r.breakers[name] = b
	}
	return b
}

// Reset resets the breaker of the named service (see Breaker.Reset); an
// unknown name is a no-op.
func (r *Registry) Reset(name string) {
	r.mu.Lock()
	b := r.breakers[name]
	r.mu.Unlock()
	if b != nil {
		b.Reset()
	}
}

// States returns a snapshot of every breaker's state, keyed by name. The map
// is the caller's.
func (r *Registry) States() map[string]State {
	r.mu.Lock()
	bs := maps.Clone(r.breakers)
	r.mu.Unlock()
	out := make(map[string]State, len(bs))
	for name, b := range bs {
		out[name] = b.State()
	}
	return out
}

// Wait waits until no primary goroutine started through any of the
// registry's breakers is running (see [Breaker.Wait]). It returns ctx.Err()
// if ctx ends first.
func (r *Registry) Wait(ctx context.Context) error {
	r.mu.Lock()
	bs := make([]*Breaker, 0, len(r.breakers))
	for _, b := range r.breakers {
		bs = append(bs, b)
	}
	r.mu.Unlock()
	for _, b := range bs {
		if err := b.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}
