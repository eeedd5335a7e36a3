// Package longpoll is pyre's LongPoll transport (Phoenix's /longpoll, which
// phoenix.js uses with transport: LongPoll or as its longPollFallbackMs
// fallback): sessions and their signed tokens, held polls, POSTed lines fed
// in order, the per-node and per-client session caps, and the forwarding
// of requests between nodes over the PubSub. The protocol it serves is
// described on channel.LongPollOptions.
//
// It knows nothing of package channel: the owner fills Config (its
// LongPollOptions with their defaults, a few of its Options, and hooks for
// what only it knows: the connect step, origin policy, counting), and
// implements Peer for each session, decoding lines and encoding messages
// with the connection's serializer.
package longpoll

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pyre-go/pyre/pubsub"
)

// Close codes the transport asks its peer to close with (RFC 6455's, as
// package channel exports them).
const (
	closeProtocolError = 1002
	closeTooBig        = 1009
)

// ErrClosed is what Config.Connect returns when the owner is closed: the
// request is answered 503, as while it shuts down.
var ErrClosed = errors.New("longpoll: server closed")

// Config configures a State. Package channel fills every field; the
// transport applies no defaults. The fields named after LongPollOptions
// mean what they mean there.
type Config struct {
	Window               time.Duration
	IdleTimeout          time.Duration
	PubSubTimeout        time.Duration
	MaxSessions          int
	MaxSessionsPerClient int
	ClientKey            func(r *http.Request) string
	MaxQueuedMessages    int
	MaxBodyBytes         int64
	// Secret signs session tokens; empty means 32 random bytes.
	Secret []byte

	// MaxQueueBytes bounds the bytes queued for a poll (Options.MaxQueueBytes).
	MaxQueueBytes int
	// MaxFrameSize bounds one POSTed line (Options.MaxFrameSize).
	MaxFrameSize int64
	// NodeID names this node in tokens and in its PubSub topic.
	NodeID string
	// PubSub carries requests forwarded between nodes.
	PubSub pubsub.PubSub
	// Logger receives the logs not about one session.
	Logger *slog.Logger
	// AppendString appends s to dst as a JSON string, as the owner's
	// serializer encodes strings (poll answers hold messages as strings).
	AppendString func(dst []byte, s string) []byte

	// Group counts the requests being served and the sessions; the owner
	// waits for it when it closes. Hold adds one to it unless the owner is
	// closed (false), atomically with the owner's closing; the transport
	// calls Group.Done when that request ends.
	Group *sync.WaitGroup
	Hold  func() bool
	// CheckOrigin applies the owner's origin policy to a LongPoll request.
	CheckOrigin func(r *http.Request) bool
	// Refused counts a refused request (origin, session caps).
	Refused func()
	// Connect runs the connect step for a new session: connect params from
	// query (the request's, without the stale session token), the
	// serializer from its vsn, the owner's Connect. It calls s.Init before
	// the session can be used. A non-nil error refuses the session: 503 for
	// ErrClosed, 403 otherwise (the owner logs and counts it).
	Connect func(r *http.Request, query string, s *Session) error
}

// Peer is the owner's side of one session. Its methods are called from the
// transport's goroutines.
type Peer interface {
	// Decode decodes one POSTed line (a text frame, or a binary one in
	// base64) as it arrives, before the session's earlier lines are
	// handled. A malformed line returns ok false: the peer closed the
	// session, and the POST is answered 400. raw is valid only during the
	// call.
	Decode(raw []byte) (msg any, ok bool)
	// Deliver handles one decoded message, in order, from one goroutine at
	// a time.
	Deliver(msg any)
	// Disconnect closes the session on the transport's initiative (idle
	// timeout, a line or body too large): the peer ends its side and calls
	// Session.Close. It must not block.
	Disconnect(code int, reason string)
	// SlowConsumer closes a session whose poll queue overflowed. It must
	// not block.
	SlowConsumer()
	// Finish ends the peer once the session is closed; called once.
	Finish()
	// Context and Logger are the connection's, for the transport's logs.
	Context() context.Context
	Logger() *slog.Logger
}

// Sign returns the token of session id sid on this node.
func (st *State) Sign(sid string) string { return st.sign(sid) }

// Verify checks a token and returns the node and session id it names.
func (st *State) Verify(token string) (node, sid string, ok bool) { return st.verify(token) }

// The methods below let package channel's tests look at the state.

// SignAs returns a token naming session sid on node, signed with this
// state's secret.
func (st *State) SignAs(node, sid string) string {
	payload := "1." + node + "." + sid
	return payload + "." + base64.RawURLEncoding.EncodeToString(st.mac(payload))
}

// Count returns the number of open sessions.
func (st *State) Count() int { return st.count() }

// OpenSessions returns the open sessions.
func (st *State) OpenSessions() []*Session {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]*Session, 0, len(st.sessions))
	for _, ss := range st.sessions {
		out = append(out, ss)
	}
	return out
}
