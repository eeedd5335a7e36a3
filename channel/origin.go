package channel

import (
	"net/http"
	"net/url"
	"strings"
)

// originChecker implements the AllowedOrigins and AllowSameOrigin policy
// (see Options.AllowedOrigins): Phoenix's check_origin list semantics, and
// its :conn mode (the request's own scheme, host and port) either as the
// default when no list is given or, with AllowSameOrigin, next to a list.
type originChecker struct {
	any        bool // "*" in the list
	sameOrigin bool // the request's own origin is allowed
	allowed    []allowedOrigin
}

type allowedOrigin struct {
	scheme, host, port string
	wildcard           bool // "*.x": x and its subdomains
}

// webOrigin is a parsed origin: lower-case scheme and host, and the
// effective port (the scheme's default when the origin names none).
type webOrigin struct {
	scheme, host, port string
}

func newOriginChecker(list []string, sameOrigin bool) *originChecker {
	oc := &originChecker{sameOrigin: sameOrigin}
	listed := false
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		listed = true
		if s == "*" {
			oc.any = true
			continue
		}
		if !strings.Contains(s, "//") {
			s = "//" + s
		}
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" {
			continue // matches nothing
		}
		a := allowedOrigin{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port()}
		if strings.HasPrefix(a.host, "*.") {
			a.wildcard, a.host = true, a.host[2:]
		}
		oc.allowed = append(oc.allowed, a)
	}
	if !listed {
		oc.sameOrigin = true // no list: Phoenix's :conn
	}
	return oc
}

// allow reports whether a WebSocket handshake or (longPoll) a LongPoll
// request may go on. A WebSocket handshake without Origin comes from a
// non-browser client and is allowed, as in Phoenix. A LongPoll GET without
// Origin may come from a browser (same-origin GETs and cross-site <img> or
// <script> loads carry none): it is refused when Sec-Fetch-Site says it is
// not same-origin, and otherwise checked as if its Origin were the one the
// request itself implies (its scheme and Host).
func (oc *originChecker) allow(r *http.Request, longPoll bool) bool {
	if oc.any {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		if !longPoll || r.Method != http.MethodGet {
			return true
		}
		switch strings.ToLower(r.Header.Get("Sec-Fetch-Site")) {
		case "cross-site", "same-site":
			return false
		}
		if oc.sameOrigin {
			return true
		}
		host, port, ok := requestHost(r)
		if !ok {
			return false
		}
		for _, scheme := range requestSchemes(r) {
			if oc.listed(webOrigin{scheme: scheme, host: host, port: effectivePort(scheme, port)}) {
				return true
			}
		}
		return false
	}
	o, ok := parseOrigin(origin)
	if !ok {
		return false
	}
	if oc.sameOrigin && isRequestOrigin(o, r) {
		return true
	}
	return oc.listed(o)
}

// listed reports whether o matches an entry of the list: scheme and port
// are compared only when the entry names them.
func (oc *originChecker) listed(o webOrigin) bool {
	for _, a := range oc.allowed {
		if a.scheme != "" && a.scheme != o.scheme {
			continue
		}
		if a.port != "" && a.port != o.port {
			continue
		}
		if a.wildcard {
			if o.host == a.host || strings.HasSuffix(o.host, "."+a.host) {
				return true
			}
			continue
		}
		if a.host == o.host {
			return true
		}
	}
	return false
}

// parseOrigin parses an Origin header; an origin without a host ("null")
// is not ok.
func parseOrigin(s string) (webOrigin, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return webOrigin{}, false
	}
	scheme := strings.ToLower(u.Scheme)
	return webOrigin{scheme: scheme, host: strings.ToLower(u.Hostname()), port: effectivePort(scheme, u.Port())}, true
}

// isRequestOrigin reports whether o is the request's own origin: the host
// and port of its Host header, and its scheme.
func isRequestOrigin(o webOrigin, r *http.Request) bool {
	host, port, ok := requestHost(r)
	if !ok || o.host != host {
		return false
	}
	for _, scheme := range requestSchemes(r) {
		if o.scheme == scheme && o.port == effectivePort(scheme, port) {
			return true
		}
	}
	return false
}

// requestHost returns the lower-case host and the port (empty when not
// given) of the request's Host header.
func requestHost(r *http.Request) (host, port string, ok bool) {
	u, err := url.Parse("//" + r.Host)
	if err != nil || u.Hostname() == "" {
		return "", "", false
	}
	return strings.ToLower(u.Hostname()), u.Port(), true
}

// requestSchemes returns the schemes the request may have been made with:
// https over TLS; http or https over plain HTTP, because a TLS-terminating
// proxy in front of the server is indistinguishable from a plain client.
func requestSchemes(r *http.Request) []string {
	if r.TLS != nil {
		return []string{"https"}
	}
	return []string{"http", "https"}
}

// effectivePort returns port, or the default port of scheme when empty.
func effectivePort(scheme, port string) string {
	if port != "" {
		return port
	}
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}
