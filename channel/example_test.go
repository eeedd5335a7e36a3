package channel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/pyre-go/pyre/channel"
)

// Room is a chat room: join, then every "new_msg" is broadcast to the room.
type Room struct {
	channel.Base // ping, correlation ids, unhandled-event logs, defaults
}

func (r *Room) Join(ctx context.Context, s *channel.Socket, params channel.Payload) (any, error) {
	if params.Map()["token"] != "secret" {
		return nil, channel.Refuse(map[string]string{"reason": "unauthorized"})
	}
	r.AfterJoin(func(context.Context) { s.Push("welcome", map[string]string{"topic": s.Topic()}) })
	return nil, nil
}

func (r *Room) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	switch msg.Event {
	case "new_msg":
		return channel.OK(nil), s.Broadcast(ctx, "new_msg", msg.Payload)
	}
	return channel.NoReply, channel.ErrUnhandled
}

// Your first channel: route "room:*" to Room and serve /socket. The client
// here is a raw WebSocket; in a browser it is phoenix.js:
// new Socket("/socket").channel("room:lobby", {token: "secret"}).join().
func Example() {
	router := channel.NewRouter()
	router.Handle("room:*", func() channel.Channel { return &Room{} })
	srv := channel.NewServer(&channel.Options{Router: router})
	mux := http.NewServeMux()
	mux.Handle("/socket/", srv)
	hs := httptest.NewUnstartedServer(mux)
	// As in the README: slow headers, slow request bodies and idle
	// keep-alive connections are cut; a WebSocket outlives these limits
	// (net/http clears a hijacked connection's deadlines).
	hs.Config.ReadHeaderTimeout = 10 * time.Second
	hs.Config.ReadTimeout = time.Minute
	hs.Config.IdleTimeout = 2 * time.Minute
	hs.Start()
	defer hs.Close()
	defer srv.Close()

	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, strings.Replace(hs.URL, "http", "ws", 1)+"/socket/websocket?vsn=2.0.0", nil)
	if err != nil {
		panic(err)
	}
	defer ws.CloseNow()
	send := func(frame string) { _ = ws.Write(ctx, websocket.MessageText, []byte(frame)) }
	recv := func() { _, b, _ := ws.Read(ctx); fmt.Println(string(b)) }

	send(`["1","1","room:lobby","phx_join",{"token":"secret"}]`)
	recv()
	recv()
	send(`["1","2","room:lobby","new_msg",{"body":"hi"}]`)
	recv()
	recv()
	// Output:
	// ["1","1","room:lobby","phx_reply",{"response":{},"status":"ok"}]
	// ["1",null,"room:lobby","welcome",{"topic":"room:lobby"}]
	// [null,null,"room:lobby","new_msg",{"body":"hi"}]
	// ["1","2","room:lobby","phx_reply",{"response":{},"status":"ok"}]
}
