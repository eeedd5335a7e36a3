package longpoll

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// lpMaxLines is the most lines of one POST that are handled; the rest are
// ignored, as in Phoenix (phoenix.js never sends more).
const lpMaxLines = 100

// Logical statuses of LongPoll answers.
const (
	lpOK         = 200
	lpNoContent  = 204
	lpBadRequest = 400
	lpForbidden  = 403
	lpTimeout    = 408
	lpGone       = 410
	lpTooLarge   = 413
)

// ServeHTTP serves <mount>/longpoll.
func (st *State) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", "no-store")
	if !st.opts.CheckOrigin(r) {
		st.opts.Refused()
		st.log.LogAttrs(r.Context(), slog.LevelInfo, "longpoll request refused: origin not allowed",
			slog.String("origin", r.Header.Get("Origin")), slog.String("remote_addr", r.RemoteAddr))
		writeLPStatus(w, lpForbidden)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Headers", strings.Join(r.Header.Values("Access-Control-Request-Headers"), ", "))
		h.Set("Access-Control-Allow-Methods", "get, post, options")
		h.Set("Access-Control-Max-Age", "3600")
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		st.get(w, r)
	case http.MethodPost:
		st.post(w, r)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

// get serves a poll, or creates a session when the request carries no
// valid token of a live session.
func (st *State) get(w http.ResponseWriter, r *http.Request) {
	token := lpRequestToken(r)
	if token != "" {
		if node, sid, ok := st.verify(token); ok {
			if node == st.node {
				if ss := st.lookup(sid); ss != nil && st.opts.Hold() {
					status, msgs := ss.poll(r.Context())
					st.opts.Group.Done()
					st.writeLPPoll(w, status, token, msgs)
					return
				}
			} else {
				res, ok := st.forward(r.Context(), node, &lpRequest{Op: lpOpPoll, SID: sid})
				if ok {
					st.writeLPPoll(w, res.Status, token, res.messages())
					return
				}
				if r.Context().Err() != nil {
					return
				}
			}
		}
	}
	st.newSession(w, r)
}

// newSession runs the connect step and answers 410 with the new token.
func (st *State) newSession(w http.ResponseWriter, r *http.Request) {
	if !st.opts.Hold() {
		writeLPUnavailable(w)
		return
	}
	defer st.opts.Group.Done()
	client := st.clientKey(r)
	if ok, full := st.reserve(client); !ok {
		st.opts.Refused()
		if full {
			st.log.LogAttrs(r.Context(), slog.LevelWarn, "longpoll session refused: too many sessions",
				slog.Int("max_sessions", st.opts.MaxSessions), slog.String("remote_addr", r.RemoteAddr))
		} else {
			st.log.LogAttrs(r.Context(), slog.LevelInfo, "longpoll session refused: too many sessions for this client",
				slog.Int("max_sessions_per_client", st.opts.MaxSessionsPerClient),
				slog.String("client", client), slog.String("remote_addr", r.RemoteAddr))
		}
		writeLPUnavailable(w)
		return
	}
	ss := st.newLPSession(client)
	if err := st.opts.Connect(r, stripSessionToken(r.URL.RawQuery), ss); err != nil {
		st.release(client)
		if errors.Is(err, ErrClosed) {
			writeLPUnavailable(w)
			return
		}
		writeLPStatus(w, lpForbidden)
		return
	}
	st.add(ss)
	st.opts.Group.Add(1) // the request holds the group, so the owner waits for this too
	ss.start()
	st.writeLPPoll(w, lpGone, ss.token, nil)
}

// post hands a POST's lines to its session.
func (st *State) post(w http.ResponseWriter, r *http.Request) {
	token := lpRequestToken(r)
	node, sid, ok := "", "", false
	if token != "" {
		node, sid, ok = st.verify(token)
	}
	if !ok {
		writeLPStatus(w, lpGone)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, st.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) {
			return // the client went away
		}
		if ss := st.lookup(sid); node == st.node && ss != nil {
			ss.peer.Logger().LogAttrs(ss.peer.Context(), slog.LevelWarn, "longpoll POST body too large, closing session",
				slog.Int64("limit", st.opts.MaxBodyBytes))
			ss.peer.Disconnect(closeTooBig, "body too large")
		}
		writeLPStatus(w, lpTooLarge)
		return
	}
	lines := splitLPBody(body, r.Header.Get("Content-Type"))
	if node == st.node {
		ss := st.lookup(sid)
		if ss == nil || !st.opts.Hold() {
			writeLPStatus(w, lpGone)
			return
		}
		defer st.opts.Group.Done()
		writeLPStatus(w, ss.post(r.Context(), lines))
		return
	}
	req := &lpRequest{Op: lpOpPost, SID: sid, Lines: make([]string, len(lines))}
	for i, l := range lines {
		req.Lines[i] = string(l)
	}
	res, ok := st.forward(r.Context(), node, req)
	if !ok {
		writeLPStatus(w, lpGone)
		return
	}
	writeLPStatus(w, res.Status)
}

// lpRequestToken returns the session token: the X-Phoenix-Longpoll-Token
// header, else the last "token" query param (phoenix.js 1.8 appends it after
// the app's params, which may have a "token" of their own).
func lpRequestToken(r *http.Request) string {
	if t := r.Header.Get("X-Phoenix-Longpoll-Token"); t != "" {
		return t
	}
	token := ""
	for _, pair := range strings.Split(r.URL.RawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if k != "token" {
			continue
		}
		if u, err := url.QueryUnescape(v); err == nil {
			token = u
		}
	}
	return token
}

// stripSessionToken removes the session token phoenix.js appends after vsn
// from a query, so that the connect params of a session re-created from a
// stale token hold the app's own "token" param, if any, rather than the
// stale session token.
func stripSessionToken(rawQuery string) string {
	pairs := strings.Split(rawQuery, "&")
	vsn, tok := -1, -1
	for i, p := range pairs {
		k, _, _ := strings.Cut(p, "=")
		switch k {
		case "vsn":
			vsn = i
		case "token":
			tok = i
		}
	}
	if vsn < 0 || tok < vsn {
		return rawQuery
	}
	return strings.Join(append(pairs[:tok:tok], pairs[tok+1:]...), "&")
}

// splitLPBody splits a POST body into the lines handled: an ndjson body is
// split on "\n" (and "\r\n"), at most lpMaxLines; any other body is one
// frame, as in Phoenix.
func splitLPBody(body []byte, contentType string) [][]byte {
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/x-ndjson" {
		return [][]byte{body}
	}
	lines := bytes.SplitN(body, []byte("\n"), lpMaxLines+1)
	if len(lines) > lpMaxLines {
		lines = lines[:lpMaxLines]
	}
	for i, l := range lines {
		lines[i] = bytes.TrimSuffix(l, []byte("\r"))
	}
	return lines
}

func setLPJSON(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
}

// writeLPStatus writes {"status":N}.
func writeLPStatus(w http.ResponseWriter, status int) {
	setLPJSON(w)
	b := make([]byte, 0, 16)
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, '}')
	_, _ = w.Write(b)
}

// writeLPPoll writes {"messages":[...],"status":N,"token":T}: keys sorted,
// as Phoenix's JSON encoder emits them, and each message a JSON string
// holding one serialized text frame.
func (st *State) writeLPPoll(w http.ResponseWriter, status int, token string, msgs [][]byte) {
	n := 48 + len(token)
	for _, m := range msgs {
		n += len(m) + len(m)/8 + 3
	}
	b := make([]byte, 0, n)
	b = append(b, `{"messages":[`...)
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = st.opts.AppendString(b, string(m))
	}
	b = append(b, `],"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"token":`...)
	b = st.opts.AppendString(b, token)
	b = append(b, '}')
	setLPJSON(w)
	_, _ = w.Write(b)
}

// writeLPUnavailable refuses a new session: HTTP 503 with an empty body,
// which phoenix.js handles like a network error (error, close 1011,
// reconnect with backoff), where a JSON status it does not know would throw.
func writeLPUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
}
