package wstransport

import (
	"bytes"
	"crypto/sha1"
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

// handshakeError is a refused WebSocket handshake: the HTTP status answered.
type handshakeError struct {
	status int
	msg    string
}

func (e *handshakeError) Error() string { return "wstransport: " + e.msg }

// checkHandshake checks the client's opening handshake (RFC 6455 4.2.1;
// the method and origin are the owner's). A refusal sets the headers the
// refusal answers with on h.
func checkHandshake(r *http.Request, h http.Header) error {
	if !r.ProtoAtLeast(1, 1) {
		return &handshakeError{http.StatusUpgradeRequired, "handshake request must be at least HTTP/1.1"}
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
		return &handshakeError{http.StatusUpgradeRequired, "not a WebSocket upgrade (Connection, Upgrade headers)"}
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		h.Set("Sec-WebSocket-Version", "13")
		return &handshakeError{http.StatusBadRequest, "unsupported WebSocket version (only 13 is)"}
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return &handshakeError{http.StatusBadRequest, "one Sec-WebSocket-Key header required"}
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return &handshakeError{http.StatusBadRequest, "invalid Sec-WebSocket-Key"}
	}
	return nil
}

// headerHasToken reports whether a comma-separated header has token
// (case-insensitive).
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptKey is Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(strings.TrimSpace(key)))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// offeredSubprotocol returns the client's spelling of "phoenix" if it
// offered it, else "".
func offeredSubprotocol(h http.Header) string {
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); strings.EqualFold(p, "phoenix") {
				return p
			}
		}
	}
	return ""
}

// acceptDeflate reports whether the client offers permessage-deflate in a
// form the server takes without context takeover: the answer is
// "permessage-deflate; client_no_context_takeover;
// server_no_context_takeover", so that each message is compressed on its
// own in both directions. An offer with a parameter the server cannot
// honour (server_max_window_bits below 15, unknown ones) is skipped.
func acceptDeflate(h http.Header) bool {
	for _, v := range h.Values("Sec-WebSocket-Extensions") {
	offers:
		for _, ext := range strings.Split(v, ",") {
			params := strings.Split(ext, ";")
			if strings.TrimSpace(params[0]) != "permessage-deflate" {
				continue
			}
			for _, p := range params[1:] {
				switch p = strings.TrimSpace(p); {
				case p == "client_no_context_takeover", p == "server_no_context_takeover",
					p == "client_max_window_bits", p == "server_max_window_bits=15",
					strings.HasPrefix(p, "client_max_window_bits="):
				default:
					continue offers
				}
			}
			return true
		}
	}
	return false
}

// switchingProtocols returns the server's handshake answer: the 101 status
// line, the headers already set on h (by the owner or middleware), and the
// WebSocket headers.
func switchingProtocols(r *http.Request, h http.Header, deflate bool) []byte {
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Accept", acceptKey(r.Header.Get("Sec-WebSocket-Key")))
	if p := offeredSubprotocol(r.Header); p != "" {
		h.Set("Sec-WebSocket-Protocol", p)
	}
	if deflate {
		h.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_no_context_takeover; server_no_context_takeover")
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = h.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}
