package presence_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/presence"
)

// Lobby tracks every user who joins, as Phoenix apps do in after_join.
type Lobby struct {
	channel.Base
	Tracker *presence.Tracker
}

func (l *Lobby) Join(_ context.Context, s *channel.Socket, p channel.Payload) (any, error) {
	user, _ := p.Map()["user"].(string)
	l.AfterJoin(func(context.Context) {
		_ = l.Tracker.PushState(s) // the presences so far
		_, _ = l.Tracker.Track(s, user, map[string]any{"status": "online"})
	})
	return nil, nil
}

func (l *Lobby) HandleIn(context.Context, *channel.Socket, *channel.Message) (channel.Reply, error) {
	return channel.NoReply, channel.ErrUnhandled
}

// A tracker next to a server: the joining client gets presence_state, then
// its own join as a presence_diff; List answers on the server side. The
// client here is a raw WebSocket; in a browser it is phoenix.js's Presence.
func Example() {
	var tracker *presence.Tracker
	router := channel.NewRouter()
	router.Handle("lobby", func() channel.Channel { return &Lobby{Tracker: tracker} })
	srv := channel.NewServer(&channel.Options{Router: router})
	tracker, err := presence.New(context.Background(), &presence.Options{Server: srv})
	if err != nil {
		panic(err)
	}
	defer tracker.Close()
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
	refs := regexp.MustCompile(`"phx_ref":"[A-Za-z0-9_-]{16}"`)
	recv := func() {
		_, b, _ := ws.Read(ctx)
		fmt.Println(refs.ReplaceAllString(string(b), `"phx_ref":"…"`))
	}
	_ = ws.Write(ctx, websocket.MessageText, []byte(`["1","1","lobby","phx_join",{"user":"alice"}]`))
	recv()
	recv()
	recv()
	fmt.Println(tracker.List("lobby")["alice"].Metas[0]["status"])
	// Output:
	// ["1","1","lobby","phx_reply",{"response":{},"status":"ok"}]
	// ["1",null,"lobby","presence_state",{}]
	// [null,null,"lobby","presence_diff",{"joins":{"alice":{"metas":[{"status":"online","phx_ref":"…"}]}},"leaves":{}}]
	// online
}
