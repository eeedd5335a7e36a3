package wstransport

import (
	"encoding/base64"
	"net/http"
	"strings"
)

const authTokenPrefix = "base64url.bearer.phx."

// AuthToken extracts the Phoenix 1.8 auth token from Sec-WebSocket-Protocol:
// the single entry "base64url.bearer.phx.<standard base64, unpadded>".
func AuthToken(h http.Header) string {
	var found []string
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if strings.HasPrefix(p, authTokenPrefix) {
				found = append(found, p[len(authTokenPrefix):])
			}
		}
	}
	if len(found) != 1 {
		return ""
	}
	enc := strings.TrimRight(found[0], "=")
	b, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		if b, err = base64.RawURLEncoding.DecodeString(enc); err != nil {
			return ""
		}
	}
	return string(b)
}

// AcceptableSubprotocols applies Phoenix's subprotocol check with auth tokens
// on: a client that offers protocols (besides the auth token) must offer
// "phoenix", the one this server speaks and echoes.
func AcceptableSubprotocols(h http.Header) bool {
	offered := false
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			switch {
			case p == "" || strings.HasPrefix(p, authTokenPrefix):
			case p == "phoenix":
				return true
			default:
				offered = true
			}
		}
	}
	return !offered
}
