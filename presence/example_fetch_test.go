package presence_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/coder/websocket"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/presence"
)

// A Fetch adds each user's record next to the metas, loaded in one batch
// for all the keys of a message (here from a map; in an application, one
// database query), as Phoenix.Presence's fetch/2 does. phoenix.js's
// Presence keeps the extra "user" field on each entry.
func ExampleFetchFunc() {
	users := map[string]map[string]any{"alice": {"name": "Alice Liddell"}}
	fetch := func(_ context.Context, _ string, ps map[string]presence.Presence) (map[string]presence.Presence, error) {
		out := make(map[string]presence.Presence, len(ps))
		for key := range ps {
			// No Metas: the tracked ones are sent.
			out[key] = presence.Presence{Extra: map[string]any{"user": users[key]}}
		}
		return out, nil
	}

	var tracker *presence.Tracker
	router := channel.NewRouter()
	router.Handle("lobby", func() channel.Channel { return &Lobby{Tracker: tracker} })
	srv := channel.NewServer(&channel.Options{Router: router})
	tracker, err := presence.New(context.Background(), &presence.Options{Server: srv, Fetch: fetch})
	if err != nil {
		panic(err)
	}
	defer tracker.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, strings.Replace(hs.URL, "http", "ws", 1)+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		panic(err)
	}
	defer ws.CloseNow()
	refs := regexp.MustCompile(`"phx_ref":"[A-Za-z0-9_-]{16}"`)
	_ = ws.Write(ctx, websocket.MessageText, []byte(`["1","1","lobby","phx_join",{"user":"alice"}]`))
	for range 3 {
		_, b, _ := ws.Read(ctx)
		fmt.Println(refs.ReplaceAllString(string(b), `"phx_ref":"…"`))
	}
	// Output:
	// ["1","1","lobby","phx_reply",{"response":{},"status":"ok"}]
	// ["1",null,"lobby","presence_state",{}]
	// [null,null,"lobby","presence_diff",{"joins":{"alice":{"metas":[{"status":"online","phx_ref":"…"}],"user":{"name":"Alice Liddell"}}},"leaves":{}}]
}
