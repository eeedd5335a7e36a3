package channel_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/pyre-go/pyre/channel"
)

// Shutdown closes the connections in batches with 1012 (service restart):
// here one connection per batch, 10 ms apart, within a 5 s drain. A real
// deployment keeps Phoenix's defaults (10 000 every 2 s, 30 s at most) or
// sizes the batches so that the other nodes absorb each one.
func ExampleDrainOptions() {
	srv := channel.NewServer(&channel.Options{
		Router: channel.NewRouter(),
		Logger: slog.New(slog.DiscardHandler),
		Drain:  &channel.DrainOptions{BatchSize: 1, BatchInterval: 10 * time.Millisecond, Timeout: 5 * time.Second},
	})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket/websocket?vsn=2.0.0"

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var clients []*websocket.Conn
	for range 3 {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			fmt.Println("dial:", err)
			return
		}
		clients = append(clients, c)
	}
	codes := make(chan websocket.StatusCode, len(clients))
	for _, c := range clients {
		go func() {
			_, _, err := c.Read(ctx) // the server's close ends the read
			codes <- websocket.CloseStatus(err)
		}()
	}

	fmt.Println("shutdown:", srv.Shutdown(ctx))
	for range clients {
		fmt.Println("closed with", int(<-codes))
	}
	// Output:
	// shutdown: <nil>
	// closed with 1012
	// closed with 1012
	// closed with 1012
}
