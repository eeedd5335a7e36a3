package channel

import (
	"fmt"
	"strings"
)

// Router maps topics to channel implementations. Patterns are exact topics
// ("dashboard:services") or prefixes ending in "*" ("dashboard:*", or "*"
// for every topic). Routes are tried in the order they were added and the
// first match wins, as in a Phoenix socket module, so specific routes go
// before the wildcards that would also match them.
//
// A Router is configured before the Server starts and must not be changed
// afterwards.
type Router struct {
	routes []route
	hooks  []Middleware
}

type route struct {
	pattern string
	prefix  string // pattern without "*" for wildcard routes
	wild    bool
	factory func() Channel
}

// NewRouter returns an empty router.
func NewRouter() *Router { return &Router{} }

// Handle routes topics matching pattern to channels made by factory, which
// is called once per join and returns a fresh Channel whose fields hold that
// join's state. It panics on an empty pattern, a "*" anywhere but at the end,
// or a nil factory: these are programming errors.
func (r *Router) Handle(pattern string, factory func() Channel) {
	if factory == nil {
		panic("channel: Router.Handle with nil factory for " + pattern)
	}
	if pattern == "" {
		panic("channel: Router.Handle with empty pattern")
	}
	rt := route{pattern: pattern, factory: factory}
	if i := strings.IndexByte(pattern, '*'); i >= 0 {
		if i != len(pattern)-1 {
			panic(fmt.Sprintf("channel: pattern %q: '*' is only allowed at the end", pattern))
		}
		rt.wild, rt.prefix = true, pattern[:i]
	}
	r.routes = append(r.routes, rt)
}

// Use appends hooks that wrap the handler of every channel the router
// creates, outside the channel's own hooks. The first hook added is the
// outermost.
func (r *Router) Use(hooks ...Middleware) { r.hooks = append(r.hooks, hooks...) }

// Match returns the pattern and factory of the first route matching topic.
func (r *Router) Match(topic string) (pattern string, factory func() Channel, ok bool) {
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.wild {
			if strings.HasPrefix(topic, rt.prefix) {
				return rt.pattern, rt.factory, true
			}
		} else if topic == rt.pattern {
			return rt.pattern, rt.factory, true
		}
	}
	return "", nil, false
}
