package channel

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
)

func BenchmarkEncodeV2Push(b *testing.B) {
	f := &frame{kind: kindPush, joinRef: "12", topic: "room:lobby", event: "new_msg", payload: []byte(`{"body":"hello world","user":"jane"}`)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _, _ = V2.encode(buf[:0], f)
	}
}

func BenchmarkPushPayloadMap(b *testing.B) {
	payload := map[string]any{"body": "hello world", "user": "jane"}
	b.ReportAllocs()
	for b.Loop() {
		p, _, _ := encodePayload(payload)
		f := &Frame{f: frame{kind: kindPush, joinRef: "12", topic: "room:lobby", event: "new_msg", payload: p}}
		_, _, _ = f.Encode(V2)
	}
}

// countTransport frames like the WebSocket transport and counts frames.
type countTransport struct {
	n       atomic.Int64
	deflate bool
}

func (t *countTransport) Send(f *Frame) {
	if _, err := f.wireWS(V2, t.deflate); err == nil {
		t.n.Add(1)
	}
}
func (t *countTransport) Close(int, string) {}

func BenchmarkBroadcast1000LocalSubscribers(b *testing.B) {
	benchBroadcast(b, &countTransport{}, map[string]any{"body": "hello world", "seq": 1})
}

// BenchmarkBroadcast1000Deflate: a 2 KB broadcast to 1 000 subscribers that
// negotiated permessage-deflate, compressed once for all of them.
func BenchmarkBroadcast1000Deflate(b *testing.B) {
	body := make([]string, 100)
	for i := range body {
		body[i] = fmt.Sprintf("chat message number %d from user%d", i, i%7)
	}
	benchBroadcast(b, &countTransport{deflate: true}, map[string]any{"lines": body})
}

func benchBroadcast(b *testing.B, t *countTransport, payload map[string]any) {
	srv := NewServer(&Options{Router: roomRouter(nil)})
	defer srv.Close()
	const subs = 1000
	conns := make([]*Conn, subs)
	for i := range conns {
		c, err := srv.Attach(context.Background(), &ConnectInfo{}, t)
		if err != nil {
			b.Fatal(err)
		}
		c.Receive(&Message{JoinRef: "1", Ref: "1", Topic: "room:bench", Event: EventJoin, Payload: JSONPayload([]byte(`{}`))})
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Finish()
		}
	}()
	if n := srv.Subscribers("room:bench"); n != subs {
		b.Fatalf("%d subscribers", n)
	}
	ctx := context.Background()
	start := t.n.Load()
	b.ReportAllocs()
	for b.Loop() {
		if err := srv.Broadcast(ctx, "room:bench", "new_msg", payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(t.n.Load()-start)/float64(b.N), "deliveries/op")
}

func BenchmarkRoundTripLoopbackWebSocket(b *testing.B) {
	srv := NewServer(&Options{Router: roomRouter(nil)})
	hs := newBenchHTTP(srv)
	defer func() { _ = srv.Close(); hs.Close() }()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+hs.URL[len("http"):]+"/socket/websocket?vsn=2.0.0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`["1","1","room:a","phx_join",{}]`)); err != nil {
		b.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 1
	for b.Loop() {
		i++
		msg := fmt.Sprintf(`["1","%d","room:a","echo",{"n":%d}]`, i, i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
