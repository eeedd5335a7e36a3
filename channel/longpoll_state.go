package channel

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strings"
	"sync"
	"weak"

	"github.com/pyre-go/pyre/pubsub"
)

// lpState is the LongPoll state of one Server: its sessions, the token key
// and the forwarding of requests between nodes (longpoll_route.go). It holds
// the Server only weakly, so that it never keeps a dropped Server alive.
type lpState struct {
	opts   LongPollOptions
	secret []byte
	node   string // the Server's node id, named in its tokens
	topic  string // the PubSub topic of forwarded requests to this node
	ps     pubsub.PubSub
	log    *slog.Logger
	srv    weak.Pointer[Server]

	closing   chan struct{} // closed by close: forwarded waits end
	closeOnce sync.Once

	mu       sync.Mutex
	sessions map[string]*lpSession
	reserved int                           // sessions being created
	pending  map[string]*lpPending         // requests this node forwarded, by id
	serving  map[string]context.CancelFunc // requests this node serves for others, by id
}

// longPoll returns the Server's LongPoll state (nil unless Options.LongPoll).
func (s *Server) longPoll() *lpState { return s.lp }

func newLPState(s *Server) *lpState {
	st := &lpState{
		opts:     s.opts.LongPoll.withDefaults(),
		node:     s.nodeID,
		topic:    lpTopicPrefix + s.nodeID,
		ps:       s.ps,
		log:      s.log,
		srv:      weak.Make(s),
		sessions: make(map[string]*lpSession),
		pending:  make(map[string]*lpPending),
		serving:  make(map[string]context.CancelFunc),
		closing:  make(chan struct{}),
	}
	st.secret = st.opts.Secret
	if len(st.secret) == 0 {
		st.secret = make([]byte, 32)
		_, _ = rand.Read(st.secret)
	}
	if err := st.ps.Subscribe(context.Background(), st.topic, st); err != nil {
		st.log.LogAttrs(context.Background(), slog.LevelError, "longpoll: subscribe to the node topic failed; requests forwarded from other nodes will not be served",
			slog.String("topic", st.topic), slog.Any("error", err))
	}
	return st
}

// close stops serving other nodes and ends this node's forwarded waits;
// the Server calls it after closing its connections.
func (st *lpState) close() {
	st.closeOnce.Do(func() {
		close(st.closing)
		_ = st.ps.Unsubscribe(context.Background(), st.topic, st)
		st.mu.Lock()
		for _, cancel := range st.serving {
			cancel()
		}
		st.mu.Unlock()
	})
}

// Session tokens are "1.<node id>.<session id>.<signature>": the signature
// is HMAC-SHA256 of everything before it under the Secret, base64url
// without padding. Session ids are 128 random bits; node ids are hex and
// session ids base64url, so no field contains a dot.

func (st *lpState) sign(sid string) string {
	payload := "1." + st.node + "." + sid
	return payload + "." + base64.RawURLEncoding.EncodeToString(st.mac(payload))
}

func (st *lpState) mac(payload string) []byte {
	h := hmac.New(sha256.New, st.secret)
	h.Write([]byte(payload))
	return h.Sum(nil)
}

// verify checks a token's signature in constant time and returns the node
// and session it names.
func (st *lpState) verify(token string) (node, sid string, ok bool) {
	i := strings.LastIndexByte(token, '.')
	if i < 0 || len(token) > 256 {
		return "", "", false
	}
	payload := token[:i]
	sig, err := base64.RawURLEncoding.Strict().DecodeString(token[i+1:])
	if err != nil || !hmac.Equal(sig, st.mac(payload)) {
		return "", "", false
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != "1" || parts[1] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[1], parts[2], true
}

func (st *lpState) lookup(sid string) *lpSession {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sessions[sid]
}

// reserve claims room for a new session under MaxSessions.
func (st *lpState) reserve() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.sessions)+st.reserved >= st.opts.MaxSessions {
		return false
	}
	st.reserved++
	return true
}

func (st *lpState) release() {
	st.mu.Lock()
	st.reserved--
	st.mu.Unlock()
}

// add turns a reservation into a registered session.
func (st *lpState) add(ss *lpSession) {
	st.mu.Lock()
	st.reserved--
	st.sessions[ss.id] = ss
	st.mu.Unlock()
}

func (st *lpState) remove(ss *lpSession) {
	st.mu.Lock()
	if st.sessions[ss.id] == ss {
		delete(st.sessions, ss.id)
	}
	st.mu.Unlock()
}

// count returns the number of open sessions.
func (st *lpState) count() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.sessions)
}

// randomID returns n random bytes, base64url without padding.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
