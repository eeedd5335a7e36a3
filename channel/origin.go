package channel

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// originChecker implements Phoenix's check_origin list semantics.
type originChecker struct {
	any     bool
	allowed []allowedOrigin
}

type allowedOrigin struct {
	scheme, host, port string
	wildcard           bool // "*.x": x and its subdomains
}

func newOriginChecker(list []string) *originChecker {
	oc := &originChecker{}
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if s == "*" {
			oc.any = true
			continue
		}
		if !strings.Contains(s, "//") {
			s = "//" + s
		}
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		a := allowedOrigin{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port()}
		if strings.HasPrefix(a.host, "*.") {
			a.wildcard, a.host = true, a.host[2:]
		}
		oc.allowed = append(oc.allowed, a)
	}
	return oc
}

// allow reports whether the request's Origin may connect: no Origin
// header, a same-host origin, or an origin in the list.
func (oc *originChecker) allow(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || oc.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	reqHost := r.Host
	if h, _, err := net.SplitHostPort(reqHost); err == nil {
		reqHost = h
	}
	if strings.EqualFold(host, reqHost) {
		return true
	}
	scheme, port := strings.ToLower(u.Scheme), u.Port()
	for _, a := range oc.allowed {
		if a.scheme != "" && a.scheme != scheme {
			continue
		}
		if a.port != "" && a.port != port {
			continue
		}
		if a.wildcard {
			if host == a.host || strings.HasSuffix(host, "."+a.host) {
				return true
			}
			continue
		}
		if a.host == host {
			return true
		}
	}
	return false
}
