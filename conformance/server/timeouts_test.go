package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/pubsub"
)

// serve runs hs on a free loopback port until the test ends.
func serve(t *testing.T, hs *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, hs.Close())
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return ln.Addr().String()
}

// lpAnswer is a LongPoll response body.
type lpAnswer struct {
	Status   int      `json:"status"`
	Token    string   `json:"token"`
	Messages []string `json:"messages"`
}

func longPoll(ctx context.Context, c *http.Client, addr, method, token, body string) (lpAnswer, error) {
	u := "http://" + addr + "/socket/longpoll?vsn=2.0.0"
	if token != "" {
		u += "&token=" + url.QueryEscape(token)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return lpAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.Do(req)
	if err != nil {
		return lpAnswer{}, err
	}
	defer resp.Body.Close()
	var a lpAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return lpAnswer{}, err
	}
	return a, nil
}

// The server's ReadTimeout and IdleTimeout end neither a WebSocket nor a
// held LongPoll poll: a WebSocket upgraded and a poll held on a server with
// 50 ms limits still deliver a broadcast sent after an idle keep-alive
// connection of the same server was closed for exceeding them. (Go clears
// a hijacked connection's deadlines and lifts the read deadline after the
// request body; a WriteTimeout, which this server does not set, would cut
// the poll.)
func TestTimeoutsSpareWebSocketsAndHeldPolls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps := pubsub.NewMemory(nil)
	defer ps.Close()
	app := newApp(appOptions{
		IdleTimeout:    time.Minute,
		AllowedOrigins: []string{"*"},
		MaxFrameSize:   1 << 20,
		Logger:         slog.New(slog.DiscardHandler),
		PubSub:         ps,
		LongPoll:       &channel.LongPollOptions{},
	})
	defer func() {
		require.NoError(t, app.srv.Close())
		require.NoError(t, app.stopPresence(context.Background()))
	}()
	// The LongPoll session is set up through a server with the default
	// limits (its POST body is read under ReadTimeout, which must not race
	// the test's 50 ms); the WebSocket and the held poll use the short one.
	// The header limit stays long for the same reason.
	setup := serve(t, newHTTPServer(app.mux, defaultHTTPTimeouts))
	short := serve(t, newHTTPServer(app.mux, httpTimeouts{ReadHeader: 10 * time.Second, Read: 50 * time.Millisecond, Idle: 50 * time.Millisecond}))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	ws, _, err := websocket.Dial(ctx, "ws://"+short+"/socket/websocket?vsn=2.0.0", &websocket.DialOptions{HTTPClient: client})
	require.NoError(t, err)
	defer ws.CloseNow()
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`["1","1","room:lobby","phx_join",{}]`)))
	for _, want := range []string{`"phx_reply"`, `"joined"`} {
		_, b, err := ws.Read(ctx)
		require.NoError(t, err)
		require.Contains(t, string(b), want)
	}

	session, err := longPoll(ctx, client, setup, http.MethodGet, "", "")
	require.NoError(t, err)
	require.Equal(t, 410, session.Status)
	joined, err := longPoll(ctx, client, setup, http.MethodPost, session.Token, `["1","1","room:lobby","phx_join",{}]`)
	require.NoError(t, err)
	require.Equal(t, 200, joined.Status)
	token := session.Token
	for seen := ""; !strings.Contains(seen, `"joined"`); { // the join reply and the after-join push
		a, err := longPoll(ctx, client, setup, http.MethodGet, token, "")
		require.NoError(t, err)
		require.Equal(t, 200, a.Status)
		token = a.Token
		seen += strings.Join(a.Messages, "\n")
	}
	held := make(chan lpAnswer, 1)
	heldErr := make(chan error, 1)
	go func() {
		a, err := longPoll(ctx, client, short, http.MethodGet, token, "")
		if err != nil {
			heldErr <- err
			return
		}
		held <- a
	}()

	// The signal that the limits have passed: a keep-alive connection of
	// the short server, idle after one request, is closed (EOF).
	c, err := net.Dial("tcp", short)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /nothing HTTP/1.1\r\nHost: "+short+"\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadAll(br)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the idle connection was not closed")
	require.NoError(t, err)

	require.NoError(t, app.srv.Broadcast(ctx, "room:lobby", "after_timeouts", map[string]int{"n": 1}))
	_, b, err := ws.Read(ctx)
	require.NoError(t, err, "the WebSocket did not outlive ReadTimeout/IdleTimeout")
	require.Contains(t, string(b), `"after_timeouts"`)
	select {
	case a := <-held:
		require.Equal(t, 200, a.Status)
		require.Contains(t, strings.Join(a.Messages, "\n"), `"after_timeouts"`)
	case err := <-heldErr:
		require.NoError(t, err, "the held poll did not outlive ReadTimeout/IdleTimeout")
	case <-ctx.Done():
		require.FailNow(t, "the held poll got no answer")
	}
}
