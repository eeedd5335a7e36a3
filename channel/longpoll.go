package channel

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
	"weak"

	"github.com/pyre-go/pyre/channel/internal/longpoll"
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
// another) and the same PubSub. A node subscribes to its topic when its
// Server is created (NewServer); if that subscription fails (the broker is
// down at start), the error is logged and requests forwarded to that node
// go unanswered, so clients whose session it owns start new sessions
// elsewhere. Messages taken by a forwarded poll whose client
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

// newLongPoll returns the LongPoll transport (package longpoll) for s. Its
// hooks hold s weakly: the transport is a subscriber of the PubSub, which
// may outlive a Server that is dropped without Close.
func newLongPoll(s *Server) *longpoll.State {
	o := s.opts.LongPoll.withDefaults()
	wp := weak.Make(s)
	return longpoll.New(&longpoll.Config{
		Window:               o.Window,
		IdleTimeout:          o.IdleTimeout,
		PubSubTimeout:        o.PubSubTimeout,
		MaxSessions:          o.MaxSessions,
		MaxSessionsPerClient: o.MaxSessionsPerClient,
		ClientKey:            o.ClientKey,
		MaxQueuedMessages:    o.MaxQueuedMessages,
		MaxBodyBytes:         o.MaxBodyBytes,
		Secret:               o.Secret,
		MaxQueueBytes:        s.opts.MaxQueueBytes,
		MaxFrameSize:         s.opts.MaxFrameSize,
		NodeID:               s.nodeID,
		PubSub:               s.ps,
		Logger:               s.log,
		AppendString:         appendString,
		Group:                &s.wg,
		Hold: func() bool {
			s := wp.Value()
			return s != nil && s.holdSession()
		},
		CheckOrigin: func(r *http.Request) bool {
			s := wp.Value()
			return s != nil && s.checkLongPollOrigin(r)
		},
		Refused: func() {
			if s := wp.Value(); s != nil {
				s.stats.refused.Add(1)
			}
		},
		Connect: func(r *http.Request, query string, ss *longpoll.Session) error {
			s := wp.Value()
			if s == nil {
				return longpoll.ErrClosed
			}
			return s.connectLongPoll(r, query, ss)
		},
	})
}

// checkLongPollOrigin runs Options.CheckOrigin, else the AllowedOrigins
// policy, on a LongPoll request.
func (s *Server) checkLongPollOrigin(r *http.Request) bool {
	if s.opts.CheckOrigin != nil {
		return s.opts.CheckOrigin(r)
	}
	return s.origins.allow(r, true)
}

// connectLongPoll is the connect step of a new LongPoll session: the
// serializer from vsn, then Attach (Options.Connect).
func (s *Server) connectLongPoll(r *http.Request, query string, ss *longpoll.Session) error {
	info := &ConnectInfo{
		Params:     decodeParams(query),
		Header:     r.Header,
		RemoteAddr: r.RemoteAddr,
		AuthToken:  r.Header.Get("X-Phoenix-AuthToken"),
		Request:    r,
	}
	ser, ok := negotiateSerializer(info.Params)
	if !ok {
		s.stats.refused.Add(1)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "longpoll connection refused: unsupported vsn",
			slog.Any("vsn", info.Params["vsn"]), slog.String("remote_addr", r.RemoteAddr))
		return errors.New("unsupported vsn")
	}
	info.Serializer = ser
	t := &lpTransport{sess: ss, ser: ser}
	ss.Init(t)
	conn, err := s.Attach(r.Context(), info, t)
	info.Request = nil
	if err != nil {
		if errors.Is(err, ErrServerClosed) {
			return longpoll.ErrClosed
		}
		return err
	}
	conn.log.LogAttrs(conn.ctx, slog.LevelDebug, "longpoll session created",
		slog.String("remote_addr", r.RemoteAddr), slog.String("serializer", ser.String()))
	return nil
}

// lpTransport joins a Conn to its LongPoll session: the Conn's Transport
// (frames out, encoded with the connection's serializer) and the session's
// longpoll.Peer (lines in, decoded here).
type lpTransport struct {
	sess      *longpoll.Session
	conn      *Conn
	ser       Serializer
	warnedBin atomic.Bool // a dropped binary frame was logged
}

// bind implements connBinder.
func (t *lpTransport) bind(c *Conn) { t.conn = c }

// Send implements Transport: the frame waits for the next poll. Binary
// frames cannot travel over LongPoll (phoenix.js JSON-decodes every polled
// message): they are dropped and logged once per session, as in Phoenix.
func (t *lpTransport) Send(f *Frame) {
	b, bin, err := f.Encode(t.ser)
	c := t.conn
	if err != nil {
		c.log.LogAttrs(c.ctx, slog.LevelError, "frame not sent", slog.String("topic", f.f.topic), slog.Any("error", err))
		return
	}
	if bin {
		level := slog.LevelDebug
		if t.warnedBin.CompareAndSwap(false, true) {
			level = slog.LevelWarn
		}
		c.log.LogAttrs(c.ctx, level, "binary frame dropped: LongPoll carries text frames only",
			slog.String("topic", f.f.topic), slog.String("event", f.Event()))
		return
	}
	t.sess.Queue(b)
}

// Close implements Transport.
func (t *lpTransport) Close(code int, reason string) { t.sess.Close(code, reason) }

// queuedBytes implements queuedByteser.
func (t *lpTransport) queuedBytes() int { return t.sess.QueuedBytes() }

// Decode implements longpoll.Peer: a malformed line closes the session.
func (t *lpTransport) Decode(raw []byte) (any, bool) {
	c := t.conn
	m, err := decodeLPLine(t.ser, raw)
	if err != nil {
		c.srv.stats.malformed.Add(1)
		c.log.LogAttrs(c.ctx, slog.LevelWarn, "malformed longpoll line, closing session", slog.Any("error", err))
		c.Close(CloseInternalError, "malformed frame")
		return nil, false
	}
	return &m, true
}

// Deliver implements longpoll.Peer.
func (t *lpTransport) Deliver(msg any) {
	if c := t.conn; !c.isClosing() {
		c.Receive(msg.(*Message))
	}
}

// Disconnect implements longpoll.Peer.
func (t *lpTransport) Disconnect(code int, reason string) { t.conn.Close(code, reason) }

// SlowConsumer implements longpoll.Peer.
func (t *lpTransport) SlowConsumer() { t.conn.CloseSlowConsumer() }

// Finish implements longpoll.Peer.
func (t *lpTransport) Finish() { t.conn.Finish() }

// Context implements longpoll.Peer.
func (t *lpTransport) Context() context.Context { return t.conn.ctx }

// Logger implements longpoll.Peer.
func (t *lpTransport) Logger() *slog.Logger { return t.conn.log }

// decodeLPLine decodes one POSTed line like a WebSocket message: a text
// frame when it starts with "[" (V2) or "{" (V1), else a base64 binary
// frame.
func decodeLPLine(ser Serializer, raw []byte) (Message, error) {
	if raw[0] == '[' || raw[0] == '{' {
		return ser.decode(false, raw)
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(b, raw)
	if err != nil {
		if n, err = base64.RawStdEncoding.Decode(b, raw); err != nil {
			return Message{}, fmt.Errorf("%w: line is neither JSON nor base64", ErrMalformed)
		}
	}
	return ser.decode(true, b[:n])
}
