package channel_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/pubsub"
)

// LongPoll next to WebSocket, on two nodes that share a PubSub and a token
// Secret: phoenix.js with transport: LongPoll (or longPollFallbackMs) talks
// to /socket/longpoll, and a request that lands on the other node (no
// sticky sessions) still reaches its session. In production the PubSub is
// a broker adapter (pubsub/redis, pubsub/nats) and the Secret comes from
// configuration.
func ExampleLongPollOptions() {
	ps := pubsub.NewMemory(nil)
	defer ps.Close()
	secret := []byte("32 bytes or more of shared secret")
	node := func() (*channel.Server, *httptest.Server) {
		router := channel.NewRouter()
		router.Handle("room:*", func() channel.Channel { return &Room{} })
		srv := channel.NewServer(&channel.Options{
			Router:   router,
			PubSub:   ps,
			LongPoll: &channel.LongPollOptions{Secret: secret},
		})
		mux := http.NewServeMux()
		mux.Handle("/socket/", srv)
		hs := httptest.NewUnstartedServer(mux)
		// As in the README: slow headers, slow request bodies and idle
		// keep-alive connections are cut. A held poll outlives ReadTimeout
		// (the read deadline ends with the request body); a WriteTimeout
		// would cut it, so there is none.
		hs.Config.ReadHeaderTimeout = 10 * time.Second
		hs.Config.ReadTimeout = time.Minute
		hs.Config.IdleTimeout = 2 * time.Minute
		hs.Start()
		return srv, hs
	}
	srvA, a := node()
	srvB, b := node()
	defer a.Close()
	defer b.Close()
	defer srvA.Close()
	defer srvB.Close()

	type answer struct {
		Status   int      `json:"status"`
		Token    string   `json:"token"`
		Messages []string `json:"messages"`
	}
	do := func(hs *httptest.Server, method, token, body string) answer {
		u := hs.URL + "/socket/longpoll?vsn=2.0.0&"
		if token != "" {
			u += "token=" + url.QueryEscape(token)
		}
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := hs.Client().Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var ans answer
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &ans)
		return ans
	}

	session := do(a, http.MethodGet, "", "") // a session on node a
	fmt.Println("new session:", session.Status)
	joined := do(b, http.MethodPost, session.Token, `["1","1","room:lobby","phx_join",{"token":"secret"}]`) // via node b
	fmt.Println("post:", joined.Status)
	var msgs []string
	for len(msgs) < 2 { // polls alternate between the nodes
		msgs = append(msgs, do([]*httptest.Server{a, b}[len(msgs)%2], http.MethodGet, session.Token, "").Messages...)
	}
	for _, m := range msgs {
		fmt.Println(m)
	}
	// Output:
	// new session: 410
	// post: 200
	// ["1","1","room:lobby","phx_reply",{"response":{},"status":"ok"}]
	// ["1",null,"room:lobby","welcome",{"topic":"room:lobby"}]
}
