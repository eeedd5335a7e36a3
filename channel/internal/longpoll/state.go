package longpoll

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/pyre-go/pyre/pubsub"
)

// State is the LongPoll state of one endpoint: its sessions, the token key
// and the forwarding of requests between nodes (route.go). The owner's
// hooks in Config hold the owner only weakly, so that the state (which the
// PubSub holds as a subscriber) never keeps a dropped owner alive.
type State struct {
	opts   Config
	secret []byte
	node   string // the owner's node id, named in its tokens
	topic  string // the PubSub topic of forwarded requests to this node
	ps     pubsub.PubSub
	log    *slog.Logger

	closing   chan struct{} // closed by close: forwarded waits end
	closeOnce sync.Once

	mu       sync.Mutex
	sessions map[string]*Session
	reserved int                           // sessions being created
	clients  map[string]int                // sessions open or being created, by client key
	pending  map[string]*lpPending         // requests this node forwarded, by id
	serving  map[string]context.CancelFunc // requests this node serves for others, by id
}

// New returns the LongPoll state for cfg and subscribes it to its node
// topic on cfg.PubSub.
func New(cfg *Config) *State {
	st := &State{
		opts:     *cfg,
		node:     cfg.NodeID,
		topic:    lpTopicPrefix + cfg.NodeID,
		ps:       cfg.PubSub,
		log:      cfg.Logger,
		sessions: make(map[string]*Session),
		clients:  make(map[string]int),
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

// Close stops serving other nodes and ends this node's forwarded waits;
// the owner calls it after closing its connections.
func (st *State) Close() {
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

func (st *State) sign(sid string) string {
	payload := "1." + st.node + "." + sid
	return payload + "." + base64.RawURLEncoding.EncodeToString(st.mac(payload))
}

func (st *State) mac(payload string) []byte {
	h := hmac.New(sha256.New, st.secret)
	h.Write([]byte(payload))
	return h.Sum(nil)
}

// verify checks a token's signature in constant time and returns the node
// and session it names.
func (st *State) verify(token string) (node, sid string, ok bool) {
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

func (st *State) lookup(sid string) *Session {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sessions[sid]
}

// reserve claims room for a new session of client under MaxSessions and
// MaxSessionsPerClient. full tells, when it fails, that MaxSessions is
// reached (else the client's share is).
func (st *State) reserve(client string) (ok, full bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.sessions)+st.reserved >= st.opts.MaxSessions {
		return false, true
	}
	if st.clients[client] >= st.opts.MaxSessionsPerClient {
		return false, false
	}
	st.reserved++
	st.clients[client]++
	return true, false
}

// release gives back a reservation that did not become a session.
func (st *State) release(client string) {
	st.mu.Lock()
	st.reserved--
	st.releaseClientLocked(client)
	st.mu.Unlock()
}

func (st *State) releaseClientLocked(client string) {
	if n := st.clients[client]; n > 1 {
		st.clients[client] = n - 1
	} else {
		delete(st.clients, client)
	}
}

// add turns a reservation into a registered session.
func (st *State) add(ss *Session) {
	st.mu.Lock()
	st.reserved--
	st.sessions[ss.id] = ss
	st.mu.Unlock()
}

func (st *State) remove(ss *Session) {
	st.mu.Lock()
	if st.sessions[ss.id] == ss {
		delete(st.sessions, ss.id)
		st.releaseClientLocked(ss.client)
	}
	st.mu.Unlock()
}

// clientKey returns the key of the client r comes from: Options.ClientKey,
// else the remote address (see clientAddrKey).
func (st *State) clientKey(r *http.Request) string {
	if st.opts.ClientKey != nil {
		if k := st.opts.ClientKey(r); k != "" {
			return k
		}
	}
	return clientAddrKey(r.RemoteAddr)
}

// clientAddrKey returns the IP address of a remote address without its
// port; an IPv6 address is reduced to its /64 prefix (one subscriber or
// host usually holds a whole /64), an IPv4-mapped one to the IPv4 address.
// An address that does not parse is its own key.
func clientAddrKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

// count returns the number of open sessions.
func (st *State) count() int {
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
