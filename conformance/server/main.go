// Command server is the pyre conformance test server: the test app of the
// conformance checklist in the Phoenix protocol spec (a RoomChannel modelled
// on Phoenix's integration tests) behind /socket, plus a control API for
// loopback peers. The Node suite in ../ drives it with the official
// phoenix.js client.
//
// Usage:
//
//	server [-addr 127.0.0.1:4001] [-idle-timeout 60s] [-allowed-origins a,b] [-max-frame-size N]
//	       [-pubsub memory|redis://host:port|nats://host:port]
//	       [-longpoll-window 10s] [-longpoll-secret s]
//
// With -pubsub on a broker, several servers form one cluster: a broadcast on
// one node reaches the clients of every node.
//
// With port 0 the chosen address is printed as "listening on http://ADDR".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
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
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:4001", "listen address")
	idle := flag.Duration("idle-timeout", 60*time.Second, "close connections idle this long")
	origins := flag.String("allowed-origins", "", "comma-separated allowed origins; empty allows any")
	maxFrame := flag.Int64("max-frame-size", 10_000_000, "largest inbound frame in bytes")
	verbose := flag.Bool("v", false, "debug logging")
	psSpec := flag.String("pubsub", "memory", "PubSub: memory, redis://host:port or nats://host:port")
	lpWindow := flag.Duration("longpoll-window", 10*time.Second, "LongPoll poll window")
	lpSecret := flag.String("longpoll-secret", "", "LongPoll token secret shared by the nodes of a cluster (random when empty)")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

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
	})
	hs := &http.Server{Handler: app.mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case <-app.shutdown:
	case err := <-errc:
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutErr := app.srv.Shutdown(ctx)
	// After the connections (closing them untracks their presences): the
	// tracker publishes the last changes and tells the other nodes goodbye.
	if err := app.stopPresence(ctx); err != nil && shutErr == nil {
		shutErr = err
	}
	if err := hs.Shutdown(ctx); err != nil {
		return err
	}
	return shutErr
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
	a.mux.Handle("POST /control/broadcast", loopbackOnly(http.HandlerFunc(a.controlBroadcast)))
	a.mux.Handle("POST /control/push", loopbackOnly(http.HandlerFunc(a.controlPush)))
	a.mux.Handle("POST /control/shutdown", loopbackOnly(http.HandlerFunc(a.controlShutdown)))
	return a
}

func longPollOptions(o *channel.LongPollOptions) *channel.LongPollOptions {
	if o == nil {
		return &channel.LongPollOptions{}
	}
	return o
}

func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "control API is for loopback peers only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
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
