// Package phxtest is a Phoenix V2 JSON client over a real WebSocket, for
// pyre's own tests of packages that observe a live server (promchannel,
// otelchannel): it joins, pushes and waits for the frames a test expects,
// failing the test when they do not come in time.
//
// It sends frames as phoenix.js does ([join_ref, ref, topic, event,
// payload], a join's join_ref equal to its ref, refs counting up from 1)
// and reads every frame on a goroutine of its own, so that close
// handshakes complete even when a test reads nothing. That goroutine ends
// when the connection does; Dial registers a cleanup that closes it and
// waits.
package phxtest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Timeout bounds every wait of a Client (dial, write, Next).
const Timeout = 5 * time.Second

// Frame is one decoded message from the server. A null join_ref or ref
// decodes as "".
type Frame struct {
	JoinRef, Ref, Topic, Event string
	Payload                    json.RawMessage
}

// Status is the status of a phx_reply frame ("" for other frames).
func (f Frame) Status() string {
	var r struct{ Status string }
	_ = json.Unmarshal(f.Payload, &r)
	return r.Status
}

// Client is a connection speaking the V2 JSON protocol.
type Client struct {
	t  testing.TB
	ws *websocket.Conn

	frames chan Frame
	done   chan struct{} // closed when the reader has ended

	mu       sync.Mutex
	ref      int
	joinRefs map[string]string // topic -> join_ref of its last join
}

// URL turns an httptest server's URL into the socket URL at path
// (/socket/websocket when empty) with vsn=2.0.0 and query appended.
func URL(serverURL, path, query string) string {
	if path == "" {
		path = "/socket/websocket"
	}
	u := "ws" + strings.TrimPrefix(serverURL, "http") + path + "?vsn=2.0.0"
	if query != "" {
		u += "&" + query
	}
	return u
}

// Dial connects to url with header (may be nil) and fails t if it cannot.
func Dial(t testing.TB, url string, header http.Header) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("phxtest: dial %s: %v", url, err)
	}
	c := &Client{t: t, ws: ws, frames: make(chan Frame, 64), done: make(chan struct{}), joinRefs: map[string]string{}}
	stop := make(chan struct{})
	go c.read(stop)
	t.Cleanup(func() {
		close(stop)
		c.Close()
		<-c.done
	})
	return c
}

// read decodes frames until the connection ends or stop is closed.
func (c *Client) read(stop <-chan struct{}) {
	defer close(c.done)
	defer close(c.frames)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		f, ok := decode(b)
		if !ok {
			continue
		}
		select {
		case c.frames <- f:
		case <-stop:
			return
		}
	}
}

func decode(b []byte) (Frame, bool) {
	var raw []json.RawMessage
	if json.Unmarshal(b, &raw) != nil || len(raw) != 5 {
		return Frame{}, false
	}
	var f Frame
	for i, dst := range []*string{&f.JoinRef, &f.Ref, &f.Topic, &f.Event} {
		_ = json.Unmarshal(raw[i], dst) // null leaves ""
	}
	f.Payload = raw[4]
	return f, true
}

// T is the test the client fails.
func (c *Client) T() testing.TB { return c.t }

// Close closes the connection without a close handshake. The server sees
// the socket end.
func (c *Client) Close() { _ = c.ws.CloseNow() }

// Send writes [joinRef, ref, topic, event, payload]; a nil payload is sent
// as {}.
func (c *Client) Send(joinRef, ref, topic, event string, payload any) {
	c.t.Helper()
	if payload == nil {
		payload = map[string]any{}
	}
	b, err := json.Marshal([]any{nullable(joinRef), nullable(ref), topic, event, payload})
	if err != nil {
		c.t.Fatalf("phxtest: encode %s: %v", event, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("phxtest: send %s on %s: %v", event, topic, err)
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (c *Client) nextRef() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ref++
	return strconv.Itoa(c.ref)
}

// Push sends event on topic with the next ref and returns that ref.
// joinRef is usually JoinRef(topic).
func (c *Client) Push(joinRef, topic, event string, payload any) string {
	c.t.Helper()
	ref := c.nextRef()
	c.Send(joinRef, ref, topic, event, payload)
	return ref
}

// Join sends phx_join for topic with params (nil: {}) and waits for its
// reply. It returns the join_ref (the join's own ref) and the reply's
// status.
func (c *Client) Join(topic string, params any) (joinRef, status string) {
	c.t.Helper()
	ref := c.nextRef()
	c.mu.Lock()
	c.joinRefs[topic] = ref
	c.mu.Unlock()
	c.Send(ref, ref, topic, "phx_join", params)
	return ref, c.Reply(ref)
}

// JoinRef is the join_ref of topic's last Join ("" if none).
func (c *Client) JoinRef(topic string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.joinRefs[topic]
}

// Next returns the next frame for which match is true, skipping the
// others. It fails the test if the connection ends or Timeout passes
// first; what names the awaited frame in that message.
func (c *Client) Next(what string, match func(Frame) bool) Frame {
	c.t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("phxtest: connection closed while waiting for %s", what)
			}
			if match(f) {
				return f
			}
		case <-timer.C:
			c.t.Fatalf("phxtest: timed out after %v waiting for %s", Timeout, what)
		}
	}
}

// Reply waits for the phx_reply to ref and returns its status.
func (c *Client) Reply(ref string) string {
	c.t.Helper()
	return c.ReplyFrame(ref).Status()
}

// ReplyFrame waits for the phx_reply to ref.
func (c *Client) ReplyFrame(ref string) Frame {
	c.t.Helper()
	return c.Next("the reply to ref "+ref, func(f Frame) bool { return f.Ref == ref && f.Event == "phx_reply" })
}

// Await waits for a frame of event on topic (a push, phx_error,
// phx_close).
func (c *Client) Await(topic, event string) Frame {
	c.t.Helper()
	return c.Next(event+" on "+topic, func(f Frame) bool { return f.Topic == topic && f.Event == event })
}
