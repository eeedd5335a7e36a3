// Command server is the pyre conformance test server: the test app of the
// conformance checklist in the Phoenix protocol spec (a RoomChannel modelled
// on Phoenix's integration tests) behind /socket, plus, with -control, a
// control API for loopback peers. The Node suite in ../ drives it with the
// official phoenix.js client and passes -control.
//
// Usage:
//
//	server [-addr 127.0.0.1:4001] [-idle-timeout 60s] [-allowed-origins a,b] [-max-frame-size N]
//	       [-pubsub memory|redis://host:port|nats://host:port]
//	       [-longpoll-window 10s] [-longpoll-secret s]
//	       [-control] [-read-header-timeout 10s]
//
// With -pubsub on a broker, several servers form one cluster: a broadcast on
// one node reaches the clients of every node.
//
// The control API (off unless -control is given) is
//
//	POST /control/broadcast {"topic":T,"event":E,"payload":P}      Server.Broadcast
//	POST /control/push      {"topic":T,"event":E,"payload":P,"join_ref":R}  a raw push to T's sockets
//	POST /control/shutdown  {}                                     graceful shutdown, then exit 0
//
// It answers only loopback peers that address the server by a loopback host
// (127.0.0.1, [::1], localhost), send Content-Type application/json, and send
// no Origin or the server's own: a web page the browser of the machine opens
// can neither submit a form to it nor reach it through DNS rebinding.
//
// With port 0 the chosen address is printed as "listening on http://ADDR".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/pubsub"
	"github.com/pyre-go/pyre/pubsub/pubsuburl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the usage went to stderr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends or a control shutdown arrives, then shuts down
// gracefully. It prints "listening on http://ADDR" to stdout once it
// listens; logs go to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4001", "listen address")
	idle := fs.Duration("idle-timeout", 60*time.Second, "close connections idle this long")
	origins := fs.String("allowed-origins", "", "comma-separated allowed origins; empty allows any")
	maxFrame := fs.Int64("max-frame-size", 10_000_000, "largest inbound frame in bytes")
	verbose := fs.Bool("v", false, "debug logging")
	psSpec := fs.String("pubsub", "memory", "PubSub: memory, redis://host:port or nats://host:port")
	lpWindow := fs.Duration("longpoll-window", 10*time.Second, "LongPoll poll window")
	lpSecret := fs.String("longpoll-secret", "", "LongPoll token secret shared by the nodes of a cluster (random when empty)")
	control := fs.Bool("control", false, "serve the control API (/control/broadcast, /control/push, /control/shutdown) to loopback peers")
	readHeader := fs.Duration("read-header-timeout", defaultReadHeaderTimeout, "close a connection whose request headers take longer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *readHeader <= 0 {
		return fmt.Errorf("-read-header-timeout must be positive, got %s", *readHeader)
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	// Not ctx: the PubSub must outlive the signal, for the graceful shutdown.
	ps, err := pubsuburl.Open(context.Background(), *psSpec, logger)
	if err != nil {
		return err
	}
	defer ps.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	app := newApp(appOptions{
		IdleTimeout:    *idle,
		AllowedOrigins: splitList(*origins),
		MaxFrameSize:   *maxFrame,
		Logger:         logger,
		PubSub:         ps,
		LongPoll:       &channel.LongPollOptions{Window: *lpWindow, Secret: []byte(*lpSecret)},
		Control:        *control,
	})
	timeouts := defaultHTTPTimeouts
	timeouts.ReadHeader = *readHeader
	hs := newHTTPServer(app.mux, timeouts)
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
	case <-app.shutdown:
	case err := <-errc:
		_ = app.srv.Close()
		_ = app.stopPresence(context.Background())
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutErr := app.srv.Shutdown(sctx)
	// After the connections (closing them untracks their presences): the
	// tracker publishes the last changes and tells the other nodes goodbye.
	if err := app.stopPresence(sctx); err != nil && shutErr == nil {
		shutErr = err
	}
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	<-errc // http.ErrServerClosed
	return shutErr
}

// defaultReadHeaderTimeout is the -read-header-timeout default.
const defaultReadHeaderTimeout = 10 * time.Second

// httpTimeouts are the http.Server's limits on slow and idle peers.
type httpTimeouts struct {
	// ReadHeader bounds the request headers: a slowloris socket is closed
	// after it (http.Server.ReadHeaderTimeout).
	ReadHeader time.Duration
	// Read bounds a whole request with its body (http.Server.ReadTimeout).
	Read time.Duration
	// Idle bounds the wait for the next keep-alive request
	// (http.Server.IdleTimeout).
	Idle time.Duration
}

// defaultHTTPTimeouts: 10 s for headers, 1 min for a request, 2 min idle.
var defaultHTTPTimeouts = httpTimeouts{ReadHeader: defaultReadHeaderTimeout, Read: time.Minute, Idle: 2 * time.Minute}

// newHTTPServer returns the http.Server in front of h, with the limits t.
// None of them cuts a WebSocket: net/http clears a connection's deadlines
// when the handler hijacks it for the upgrade. Nor a held LongPoll poll:
// net/http lifts the read deadline once the request body has been read.
// (TestTimeoutsSpareWebSocketsAndHeldPolls checks both.) There is
// deliberately no WriteTimeout: it runs from the end of the request headers
// to the end of the response, so it would cut a poll held for the LongPoll
// window (-longpoll-window, 10 s, more when the poll is forwarded to another
// node) or a POST waiting for its lines to be accepted.
func newHTTPServer(h http.Handler, t httpTimeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		IdleTimeout:       t.Idle,
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return []string{"*"}
	}
	return out
}

type appOptions struct {
	IdleTimeout    time.Duration
	AllowedOrigins []string
	MaxFrameSize   int64
	Logger         *slog.Logger
	PubSub         pubsub.PubSub
	LongPoll       *channel.LongPollOptions
	// Control serves the control API (see the package doc). Defaults to off.
	Control bool
}

type app struct {
	srv          *channel.Server
	stopPresence func(context.Context) error
	mux          *http.ServeMux
	shutdown     chan struct{}
}

// controlTopic is the PubSub topic on which RoomChannels receive
// /control/push requests for their topic.
func controlTopic(topic string) string { return "pyre-control:" + topic }

func newApp(o appOptions) *app {
	r := channel.NewRouter()
	r.Handle("room:*", func() channel.Channel { return &room{} })
	stopPresence := registerPresence(r, o)
	srv := channel.NewServer(&channel.Options{
		LongPoll:       longPollOptions(o.LongPoll),
		Router:         r,
		PubSub:         o.PubSub,
		Logger:         o.Logger,
		IdleTimeout:    o.IdleTimeout,
		AllowedOrigins: o.AllowedOrigins,
		// The suite also expects the server's own origin to pass a list
		// (handshake item 6), as with Phoenix's :conn next to a list.
		AllowSameOrigin: true,
		MaxFrameSize:    o.MaxFrameSize,
		Connect: func(_ context.Context, info *channel.ConnectInfo) error {
			if info.Params["refuse"] == "true" {
				return errors.New("refused by the test app")
			}
			if id, ok := info.Params["user_id"].(string); ok && id != "" {
				info.ID = "users:" + id
			}
			return nil
		},
	})
	a := &app{srv: srv, stopPresence: stopPresence, mux: http.NewServeMux(), shutdown: make(chan struct{})}
	a.mux.Handle("/socket/", srv)
	if o.Control {
		a.mux.Handle("POST /control/broadcast", controlGuard(http.HandlerFunc(a.controlBroadcast)))
		a.mux.Handle("POST /control/push", controlGuard(http.HandlerFunc(a.controlPush)))
		a.mux.Handle("POST /control/shutdown", controlGuard(http.HandlerFunc(a.controlShutdown)))
	}
	return a
}

func longPollOptions(o *channel.LongPollOptions) *channel.LongPollOptions {
	if o == nil {
		return &channel.LongPollOptions{}
	}
	return o
}

// controlGuard admits a control request only when
//   - the peer is on loopback (403 otherwise);
//   - the Host header names a loopback host, so that a page whose own name a
//     DNS rebinding pointed at 127.0.0.1 is refused (403 otherwise);
//   - it is not a cross-origin browser request: no Origin, or the server's
//     own, and no cross-site Sec-Fetch-Site (net/http's
//     CrossOriginProtection; 403 otherwise);
//   - its Content-Type is application/json (415 otherwise): an HTML form
//     can post text/plain from any page without a CORS preflight, but
//     application/json needs one, which this server does not answer.
func controlGuard(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "control API: cross-origin requests are refused", http.StatusForbidden)
	}))
	jsonOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			http.Error(w, "control API: Content-Type must be application/json", http.StatusUnsupportedMediaType)
			return
		}
		h.ServeHTTP(w, r)
	})
	checked := cop.Handler(jsonOnly)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "control API is for loopback peers only", http.StatusForbidden)
			return
		}
		if !loopbackHost(r.Host) {
			http.Error(w, "control API: the Host must be a loopback address or localhost", http.StatusForbidden)
			return
		}
		checked.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether hostport (a Host header) names this machine
// by a loopback IP or "localhost".
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type controlRequest struct {
	Topic   string          `json:"topic"`
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
	JoinRef *string         `json:"join_ref"`
}

func decodeControl(w http.ResponseWriter, r *http.Request) (controlRequest, bool) {
	var req controlRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return req, false
	}
	if req.Topic == "" || req.Event == "" {
		http.Error(w, "topic and event are required", http.StatusBadRequest)
		return req, false
	}
	if len(req.Payload) == 0 {
		req.Payload = json.RawMessage("{}")
	}
	return req, true
}

func (a *app) controlBroadcast(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeControl(w, r)
	if !ok {
		return
	}
	if err := a.srv.Broadcast(r.Context(), req.Topic, req.Event, req.Payload); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) controlPush(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeControl(w, r)
	if !ok {
		return
	}
	body, _ := json.Marshal(req)
	err := a.srv.PubSub().Broadcast(r.Context(), &pubsub.Message{Topic: controlTopic(req.Topic), Event: "push", Payload: body})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) controlShutdown(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
	select {
	case <-a.shutdown:
	default:
		close(a.shutdown)
	}
}
