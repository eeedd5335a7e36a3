package channel

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
	"time"
)

// LongPollOptions configure the LongPoll transport (Phoenix's /longpoll),
// which phoenix.js uses with transport: LongPoll or as the fallback of
// longPollFallbackMs. A nil Options.LongPoll leaves it off, as in Phoenix,
// and /longpoll answers 404. The zero value of every field means its default.
//
// # Protocol
//
// Every answer is HTTP 200 with a JSON body whose "status" carries the
// logical status, as phoenix.js expects: a GET without a valid session token
// creates a session ({"messages":[],"status":410,"token":T}); a GET with a
// token polls it, answered at once when messages are queued
// ({"messages":[...],"status":200,"token":T}, each message a JSON string
// holding one serialized text frame) and otherwise held up to Window
// ({"messages":[],"status":204,...}); a POST carries up to 100 frames, one a
// line (text frames as they are, binary frames base64), answered
// {"status":200} once every line was accepted, 408 when one was not within
// Window, 410 for an unknown session. The token is read from the
// X-Phoenix-Longpoll-Token header, else from the last "token" query param.
// Origin failures (Options.AllowedOrigins, which also covers GETs without
// an Origin header) and refused connects answer {"status":403}; OPTIONS
// answers the CORS preflight; other methods get HTTP 400.
//
// Server-to-client binary frames cannot travel over LongPoll (phoenix.js
// JSON-decodes every polled message): they are dropped and logged once per
// session, as in Phoenix. Client-to-server binary pushes work.
//
// # Bounds and policies
//
// Sessions per node are capped by MaxSessions, and the sessions of one
// client (by default one IP address, or one IPv6 /64) by
// MaxSessionsPerClient, so that a client opening sessions in a loop is
// refused alone while others still connect: beyond either cap a new
// session is refused with HTTP 503, an empty body and Retry-After;
// phoenix.js takes an unparsable answer like a network error (error, close
// 1011) and reconnects with its backoff. The same answer is given while the
// Server shuts down.
// Messages waiting for the next poll are capped by MaxQueuedMessages and by
// Options.MaxQueueBytes: a message that would overflow either closes the
// session as a slow consumer (Stats.SlowClosed), its channels terminate, and
// the client's next poll gets 410, after which it starts a new session and
// rejoins. A session with no poll in progress for IdleTimeout is closed the
// same way. A POST body is capped by MaxBodyBytes and each line by
// Options.MaxFrameSize (answer {"status":413}, session closed; a body over
// the cap that reached another node than the owner only gets the answer);
// a malformed line answers {"status":400} and closes the session, like the
// 1011 close of a WebSocket.
//
// Only one poll per session is served at a time: a newer poll supersedes the
// held one, which is answered 204 at once.
//
// A session holds a goroutine only while a POST to it is being handled:
// one opened by a single GET and never used costs about 1 KB of heap (plus
// what Connect stores in it) until IdleTimeout reaps it.
//
// # Several nodes
//
// Behind a load balancer without sticky sessions, a poll or POST may reach
// a node that does not hold the session. The token names the node that owns
// the session, and the request is forwarded over the Server's PubSub to that
// node's topic "phx:lp:<node id>" (a reserved topic prefix: do not route
// client topics matching it): the owner acknowledges within PubSubTimeout,
// runs the poll or POST against the session, and publishes the answer to the
// topic of the asking node, which writes it to the client. An owner that
// does not acknowledge in time is taken to be gone: a poll then starts a new
// session (410 with a new token, as in Phoenix), a POST answers 410. Every
// node must share the same Secret (tokens signed on one node are verified on
// another) and the same PubSub. A node subscribes to its topic when it first
// serves a LongPoll request, so with a broker adapter the very first
// forwarded answer to a node may race that subscription and be lost; the
// client then reconnects. Messages taken by a forwarded poll whose client
// went away at that moment are lost, as they are when a client drops a
// poll answer. Close and Shutdown wait for the sessions of their node
// (held polls are answered 410) but not for the requests it is forwarding
// to other nodes, which end within Window + 2 × PubSubTimeout.
type LongPollOptions struct {
	// Window is how long a poll is held waiting for messages before it is
	// answered 204 (Phoenix's window_ms), and how long each POSTed line may
	// wait to be accepted before the POST is answered 408. Defaults to 10 s.
	Window time.Duration
	// IdleTimeout closes a session that had no poll in progress for this
	// long: its channels terminate and a later poll with its token gets 410.
	// Defaults to 1.5 × Window (15 s), as in Phoenix.
	IdleTimeout time.Duration
	// PubSubTimeout bounds the wait for the node owning a session to
	// acknowledge a forwarded request (Phoenix's pubsub_timeout_ms). Defaults
	// to 2 s.
	PubSubTimeout time.Duration
	// MaxSessions caps the sessions open on this node. Beyond it new
	// sessions are refused with HTTP 503 (see above). Defaults to 10 000.
	MaxSessions int
	// MaxSessionsPerClient caps the sessions one client (see ClientKey) may
	// hold on this node, so that one client cannot take all MaxSessions and
	// lock everyone else out: its next session is refused with HTTP 503 (as
	// above) while other clients still get theirs. Defaults to 100, and
	// never more than MaxSessions; set it to MaxSessions to turn the share
	// off. Clients behind one NAT share one key, so raise it for many users
	// behind few addresses.
	MaxSessionsPerClient int
	// ClientKey names the client a request comes from, for
	// MaxSessionsPerClient. Defaults to the request's remote IP address
	// (http.Request.RemoteAddr without the port), IPv6 addresses grouped by
	// their /64 prefix, which one subscriber or host usually holds whole.
	// Behind a reverse proxy every request comes from the proxy: set
	// ClientKey to read the client address from a header the proxy sets and
	// clients cannot forge (such as the last X-Forwarded-For entry the
	// proxy appended), or to key by something else the app trusts. An empty
	// key falls back to the default. It is called once per new session.
	ClientKey func(r *http.Request) string
	// MaxQueuedMessages caps the messages waiting for a session's next poll;
	// overflow closes the session as a slow consumer. Queued bytes are
	// capped by Options.MaxQueueBytes. Defaults to 1 000.
	MaxQueuedMessages int
	// MaxBodyBytes caps a POST body. Defaults to 8 000 000 bytes (Plug's
	// default read length).
	MaxBodyBytes int64
	// Secret is the HMAC-SHA256 key that signs session tokens. Defaults to
	// 32 random bytes per Server, which is right for one node; nodes behind
	// a load balancer without sticky sessions need the same Secret (32
	// random bytes or more). Mounts that must not share sessions need
	// different secrets.
	Secret []byte
}

func (o *LongPollOptions) withDefaults() LongPollOptions {
	var c LongPollOptions
	if o != nil {
		c = *o
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = c.Window * 3 / 2
	}
	if c.PubSubTimeout <= 0 {
		c.PubSubTimeout = 2 * time.Second
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 10_000
	}
	if c.MaxSessionsPerClient <= 0 {
		c.MaxSessionsPerClient = 100
	}
	c.MaxSessionsPerClient = min(c.MaxSessionsPerClient, c.MaxSessions)
	if c.MaxQueuedMessages <= 0 {
		c.MaxQueuedMessages = 1_000
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 8_000_000
	}
	c.Secret = bytes.Clone(c.Secret)
	return c
}

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

// serveLongPoll serves <mount>/longpoll.
func (s *Server) serveLongPoll(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", "no-store")
	if !s.checkLongPollOrigin(r) {
		s.stats.refused.Add(1)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "longpoll request refused: origin not allowed",
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
		s.longPoll().get(s, w, r)
	case http.MethodPost:
		s.longPoll().post(s, w, r)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

// checkLongPollOrigin runs Options.CheckOrigin, else the AllowedOrigins
// policy, on a LongPoll request.
func (s *Server) checkLongPollOrigin(r *http.Request) bool {
	if s.opts.CheckOrigin != nil {
		return s.opts.CheckOrigin(r)
	}
	return s.origins.allow(r, true)
}

// get serves a poll, or creates a session when the request carries no
// valid token of a live session.
func (st *lpState) get(s *Server, w http.ResponseWriter, r *http.Request) {
	token := lpRequestToken(r)
	if token != "" {
		if node, sid, ok := st.verify(token); ok {
			if node == st.node {
				if ss := st.lookup(sid); ss != nil && s.hold() {
					status, msgs := ss.poll(r.Context())
					s.release()
					writeLPPoll(w, status, token, msgs)
					return
				}
			} else {
				res, ok := st.forward(r.Context(), node, &lpRequest{Op: lpOpPoll, SID: sid})
				if ok {
					writeLPPoll(w, res.Status, token, res.messages())
					return
				}
				if r.Context().Err() != nil {
					return
				}
			}
		}
	}
	st.newSession(s, w, r)
}

// newSession runs the connect step and answers 410 with the new token.
func (st *lpState) newSession(s *Server, w http.ResponseWriter, r *http.Request) {
	if !s.hold() {
		writeLPUnavailable(w)
		return
	}
	defer s.release()
	client := st.clientKey(r)
	if ok, full := st.reserve(client); !ok {
		s.stats.refused.Add(1)
		if full {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "longpoll session refused: too many sessions",
				slog.Int("max_sessions", st.opts.MaxSessions), slog.String("remote_addr", r.RemoteAddr))
		} else {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "longpoll session refused: too many sessions for this client",
				slog.Int("max_sessions_per_client", st.opts.MaxSessionsPerClient),
				slog.String("client", client), slog.String("remote_addr", r.RemoteAddr))
		}
		writeLPUnavailable(w)
		return
	}
	info := &ConnectInfo{
		Params:     decodeParams(stripSessionToken(r.URL.RawQuery)),
		Header:     r.Header,
		RemoteAddr: r.RemoteAddr,
		AuthToken:  r.Header.Get("X-Phoenix-AuthToken"),
		Request:    r,
	}
	ser, ok := negotiateSerializer(info.Params)
	if !ok {
		st.release(client)
		s.stats.refused.Add(1)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "longpoll connection refused: unsupported vsn",
			slog.Any("vsn", info.Params["vsn"]), slog.String("remote_addr", r.RemoteAddr))
		writeLPStatus(w, lpForbidden)
		return
	}
	info.Serializer = ser
	ss := st.newLPSession(s, ser, client)
	conn, err := s.Attach(r.Context(), info, ss)
	info.Request = nil
	if err != nil {
		st.release(client)
		if errors.Is(err, ErrServerClosed) {
			writeLPUnavailable(w)
			return
		}
		writeLPStatus(w, lpForbidden)
		return
	}
	ss.conn = conn
	st.add(ss)
	s.wg.Add(1) // the request holds s.wg, so Close waits for this too
	ss.start()
	conn.log.LogAttrs(conn.ctx, slog.LevelDebug, "longpoll session created",
		slog.String("remote_addr", r.RemoteAddr), slog.String("serializer", ser.String()))
	writeLPPoll(w, lpGone, ss.token, nil)
}

// post hands a POST's lines to its session.
func (st *lpState) post(s *Server, w http.ResponseWriter, r *http.Request) {
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
			ss.conn.log.LogAttrs(ss.conn.ctx, slog.LevelWarn, "longpoll POST body too large, closing session",
				slog.Int64("limit", st.opts.MaxBodyBytes))
			ss.conn.Close(CloseTooBig, "body too large")
		}
		writeLPStatus(w, lpTooLarge)
		return
	}
	lines := splitLPBody(body, r.Header.Get("Content-Type"))
	if node == st.node {
		ss := st.lookup(sid)
		if ss == nil || !s.hold() {
			writeLPStatus(w, lpGone)
			return
		}
		defer s.release()
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
func writeLPPoll(w http.ResponseWriter, status int, token string, msgs [][]byte) {
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
		b = appendString(b, string(m))
	}
	b = append(b, `],"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"token":`...)
	b = appendString(b, token)
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
