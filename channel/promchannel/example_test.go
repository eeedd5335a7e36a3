package promchannel_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/promchannel"
)

type lobby struct{ channel.Base }

func (l *lobby) Join(context.Context, *channel.Socket, channel.Payload) (any, error) { return nil, nil }

func (l *lobby) HandleIn(context.Context, *channel.Socket, *channel.Message) (channel.Reply, error) {
	return channel.NoReply, channel.ErrUnhandled
}

// Export a Server's metrics on a registry of its own and serve them at
// /metrics next to the socket.
func Example() {
	router := channel.NewRouter()
	router.Handle("lobby", func() channel.Channel { return &lobby{} })
	srv := channel.NewServer(&channel.Options{Router: router, Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()

	reg := prometheus.NewRegistry() // or nil Registerer: prometheus.DefaultRegisterer
	m, err := promchannel.New(srv, &promchannel.Options{Registerer: reg})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	mux := http.NewServeMux()
	mux.Handle("/socket/", srv)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := httptest.NewServer(mux)
	defer hs.Close()

	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "pyre_connections") {
			fmt.Println(lines.Text())
		}
	}
	// Output:
	// pyre_connections{transport="longpoll"} 0
	// pyre_connections{transport="other"} 0
	// pyre_connections{transport="websocket"} 0
	// pyre_connections_accepted_total 0
	// pyre_connections_refused_total 0
}
