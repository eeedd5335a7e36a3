package channel

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unique"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// feedRoom is a channel whose clients may filter its broadcasts.
type feedRoom struct {
	Base
	limits *FilterLimits
	joined chan *Filter // if set, gets Socket.Filter as seen in Join
}

func (r *feedRoom) FilterLimits() *FilterLimits { return r.limits }

func (r *feedRoom) Join(_ context.Context, s *Socket, _ Payload) (any, error) {
	if r.joined != nil {
		r.joined <- s.Filter()
	}
	return nil, nil
}

func (r *feedRoom) HandleIn(_ context.Context, s *Socket, msg *Message) (Reply, error) {
	switch msg.Event {
	case "set_filter": // the payload is the filter itself
		f, err := ParseFilter(msg.Payload.Bytes(), r.limits)
		if err != nil {
			return ErrorReply(filterRefusal(err)), nil
		}
		s.SetFilter(f)
		return OK(map[string]string{"filter": s.Filter().String()}), nil
	}
	return NoReply, ErrUnhandled
}

// filterRouter: "feed:*" lets clients filter, "room:*" (testRoom) does not.
func filterRouter(limits *FilterLimits, joined chan *Filter) *Router {
	r := NewRouter()
	r.Handle("feed:*", func() Channel { return &feedRoom{limits: limits, joined: joined} })
	r.Handle("room:*", func() Channel { return &testRoom{} })
	return r
}

func mustParseFilter(t testing.TB, spec string) *Filter {
	t.Helper()
	f, err := ParseFilter([]byte(spec), nil)
	require.NoError(t, err, spec)
	return f
}

func TestParseFilterValid(t *testing.T) {
	cases := []struct{ spec, canon string }{
		{`null`, `null`},
		{``, `null`},
		{`{}`, `null`},
		{`{"events":null,"except":[],"where":{}}`, `null`},
		{`{"events":[]}`, `{"events":[]}`},
		{`{"events":["b","a","b"]}`, `{"events":["a","b"]}`},
		{` {"except":["presence_diff"]} `, `{"except":["presence_diff"]}`},
		{`{"where":{"b":1,"a.x.y.z":[true,null,"s",2.5]}}`, `{"where":{"a.x.y.z":[true,null,"s",2.5],"b":1}}`},
		{`{"where":{"k":["only"]}}`, `{"where":{"k":"only"}}`},
	}
	for _, c := range cases {
		f, err := ParseFilter([]byte(c.spec), nil)
		require.NoError(t, err, c.spec)
		assert.Equal(t, c.canon, f.String(), c.spec)
		if f != nil {
			again, err := ParseFilter([]byte(f.String()), nil)
			require.NoError(t, err)
			assert.Equal(t, f.String(), again.String(), "String parses back to the same filter")
		}
	}
}

func TestParseFilterInvalid(t *testing.T) {
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ",")
	}
	cases := []struct{ spec, detail string }{
		{`"tick"`, `not an object`},
		{`[1]`, `not an object`},
		{`{"events":`, `malformed JSON`},
		{`{"evnts":["a"]}`, `unknown key "evnts"`},
		{`{"events":"tick"}`, `events: not a list of event names`},
		{`{"except":[1]}`, `except: event names must be non-empty strings`},
		{`{"events":[""]}`, `events: event names must be non-empty strings`},
		{`{"events":["` + strings.Repeat("e", 257) + `"]}`, `events: event name longer than 256 bytes`},
		{`{"events":[` + many(33, func(i int) string { return fmt.Sprintf(`"e%d"`, i) }) + `]}`, `more than 32 event names`},
		{`{"events":[` + many(20, func(i int) string { return fmt.Sprintf(`"e%d"`, i) }) + `],` +
			`"except":[` + many(13, func(i int) string { return fmt.Sprintf(`"x%d"`, i) }) + `]}`, `more than 32 event names`},
		{`{"where":[]}`, `where: not an object`},
		{`{"where":"a"}`, `where: not an object`},
		{`{"where":{` + many(9, func(i int) string { return fmt.Sprintf(`"k%d":1`, i) }) + `}}`, `where: more than 8 conditions`},
		{`{"where":{"a.b.c.d.e":1}}`, `where "a.b.c.d.e": path deeper than 4`},
		{`{"where":{"a..b":1}}`, `where "a..b": empty path segment`},
		{`{"where":{"":1}}`, `where "": empty path segment`},
		{`{"where":{"a":[]}}`, `where "a": empty list`},
		{`{"where":{"a":[` + many(17, func(i int) string { return fmt.Sprint(i) }) + `]}}`, `where "a": more than 16 values`},
		{`{"where":{"a":{"b":1}}}`, `where "a": values must be strings, numbers, booleans or null`},
		{`{"where":{"a":[[1]]}}`, `where "a": values must be strings, numbers, booleans or null`},
		{`{"where":{"` + strings.Repeat("p", 257) + `":1}}`, `where: path longer than 256 bytes`},
	}
	for _, c := range cases {
		f, err := ParseFilter([]byte(c.spec), nil)
		require.Error(t, err, c.spec)
		assert.Nil(t, f)
		assert.ErrorIs(t, err, ErrInvalidFilter)
		var fe *FilterError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, c.detail, fe.Detail, c.spec)
	}
}

func TestParseFilterCustomLimits(t *testing.T) {
	lim := &FilterLimits{MaxEvents: 1, MaxConditions: 1, MaxValues: 1, MaxDepth: 1, MaxNameBytes: 3}
	for spec, detail := range map[string]string{
		`{"events":["a","b"]}`:            `more than 1 event names`,
		`{"where":{"a":1,"b":2}}`:         `where: more than 1 conditions`,
		`{"where":{"a":[1,2]}}`:           `where "a": more than 1 values`,
		`{"where":{"a.b":1}}`:             `where "a.b": path deeper than 1`,
		`{"events":["long"]}`:             `events: event name longer than 3 bytes`,
		`{"events":["a"],"except":["b"]}`: `more than 1 event names`,
	} {
		_, err := ParseFilter([]byte(spec), lim)
		var fe *FilterError
		require.ErrorAs(t, err, &fe, spec)
		assert.Equal(t, detail, fe.Detail, spec)
	}
	_, err := ParseFilter([]byte(`{"events":["abc"],"where":{"x":[1]}}`), lim)
	assert.NoError(t, err, "at the limits")
}

func TestFilterFromParams(t *testing.T) {
	f, err := FilterFromParams(JSONPayload([]byte(`{"token":"x","filter":{"events":["a"]}}`)), nil)
	require.NoError(t, err)
	assert.Equal(t, `{"events":["a"]}`, f.String())
	for _, p := range []Payload{
		JSONPayload(nil), JSONPayload([]byte(`{}`)), JSONPayload([]byte(`{"Filter":{"events":["a"]}}`)),
		JSONPayload([]byte(`[1]`)), JSONPayload([]byte(`{"filter":null}`)), BinaryPayload([]byte(`{"filter":{}}`)),
	} {
		f, err := FilterFromParams(p, nil)
		assert.NoError(t, err, p.String())
		assert.Nil(t, f, p.String())
	}
	_, err = FilterFromParams(JSONPayload([]byte(`{"filter":{"events":3}}`)), nil)
	assert.ErrorIs(t, err, ErrInvalidFilter)
}

func TestFilterMatch(t *testing.T) {
	js := func(s string) Payload { return JSONPayload([]byte(s)) }
	cases := []struct {
		filter string
		event  string
		p      Payload
		want   bool
	}{
		// events and except
		{`{"events":["a","b"]}`, "a", js(`{}`), true},
		{`{"events":["a","b"]}`, "c", js(`{}`), false},
		{`{"events":[]}`, "a", js(`{}`), false},
		{`{"except":["a"]}`, "a", js(`{}`), false},
		{`{"except":["a"]}`, "b", js(`{}`), true},
		{`{"events":["a"],"except":["a"]}`, "a", js(`{}`), false},
		// protocol events pass events and where, not except
		{`{"events":["a"]}`, "presence_diff", js(`{"joins":{}}`), true},
		{`{"events":[]}`, "phx_custom", js(`[]`), true},
		{`{"where":{"k":1}}`, "presence_diff", js(`{"joins":{}}`), true},
		{`{"except":["presence_diff"]}`, "presence_diff", js(`{}`), false},
		// strings, numbers, booleans, null
		{`{"where":{"k":"v"}}`, "e", js(`{"k":"v"}`), true},
		{`{"where":{"k":"v"}}`, "e", js(`{"k":"w"}`), false},
		{`{"where":{"k":"1"}}`, "e", js(`{"k":1}`), false},
		{`{"where":{"k":1}}`, "e", js(`{"k":1.0}`), true},
		{`{"where":{"k":1}}`, "e", js(`{"k":"1"}`), false},
		{`{"where":{"k":1e3}}`, "e", js(`{"k":1000}`), true},
		{`{"where":{"k":-2.5}}`, "e", js(`{"k":-2.5}`), true},
		{`{"where":{"k":true}}`, "e", js(`{"k":true}`), true},
		{`{"where":{"k":true}}`, "e", js(`{"k":false}`), false},
		{`{"where":{"k":true}}`, "e", js(`{"k":1}`), false},
		{`{"where":{"k":null}}`, "e", js(`{"k":null}`), true},
		{`{"where":{"k":null}}`, "e", js(`{}`), false},
		{`{"where":{"k":false}}`, "e", js(`{}`), false},
		{`{"where":{"k":"x"}}`, "e", js(`{"k":["x"]}`), false},
		{`{"where":{"k":"x"}}`, "e", js(`{"k":{"x":1}}`), false},
		// lists: any of
		{`{"where":{"k":["a",2,false]}}`, "e", js(`{"k":2}`), true},
		{`{"where":{"k":["a",2,false]}}`, "e", js(`{"k":false}`), true},
		{`{"where":{"k":["a",2,false]}}`, "e", js(`{"k":"b"}`), false},
		// nested paths
		{`{"where":{"u.role":"admin"}}`, "e", js(`{"u":{"role":"admin"}}`), true},
		{`{"where":{"u.role":"admin"}}`, "e", js(`{"u":{"role":"user"}}`), false},
		{`{"where":{"u.role":"admin"}}`, "e", js(`{"u":"admin"}`), false},
		{`{"where":{"u.role":"admin"}}`, "e", js(`{"u.role":"admin"}`), false},
		{`{"where":{"a.b.c.d":0}}`, "e", js(`{"a":{"b":{"c":{"d":0}}}}`), true},
		{`{"where":{"a.b":1}}`, "e", js(`{"a":[{"b":1}]}`), false},
		// all conditions must hold
		{`{"where":{"a":1,"b":2}}`, "e", js(`{"a":1,"b":2,"c":3}`), true},
		{`{"where":{"a":1,"b":2}}`, "e", js(`{"a":1,"b":3}`), false},
		// events and where together
		{`{"events":["t"],"where":{"a":1}}`, "t", js(`{"a":1}`), true},
		{`{"events":["t"],"where":{"a":1}}`, "u", js(`{"a":1}`), false},
		// payloads that are not objects fail conditions; binary ones skip them
		{`{"where":{"a":1}}`, "e", js(`[1]`), false},
		{`{"where":{"a":1}}`, "e", js(`"a"`), false},
		{`{"where":{"a":1}}`, "e", js(`null`), false},
		{`{"where":{"a":1}}`, "e", js(``), false},
		{`{"where":{"a":1}}`, "e", js(`{"a":1`), false},
		{`{"where":{"a":1}}`, "e", js(` {"a":1}`), true},
		{`{"where":{"a":1}}`, "e", BinaryPayload([]byte(`{"a":2}`)), true},
		{`{"events":["t"],"where":{"a":1}}`, "u", BinaryPayload(nil), false},
		// the nil filter passes all
		{`{}`, "e", js(`[1]`), true},
	}
	for _, c := range cases {
		f := mustParseFilter(t, c.filter)
		assert.Equal(t, c.want, f.Match(c.event, c.p), "%s %s %s", c.filter, c.event, c.p)
	}
	var none *Filter
	assert.True(t, none.Match("x", JSONPayload(nil)))
	assert.False(t, none.HasConditions())
	assert.True(t, mustParseFilter(t, `{"where":{"a":1}}`).HasConditions())
	assert.False(t, mustParseFilter(t, `{"events":["a"]}`).HasConditions())
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		`{"events":["a"],"except":["b"],"where":{"x.y":[1,"s",true,null]}}`,
		`{"where":{"a..b":1}}`, `null`, `{}`, `[`, `{"events":[1]}`,
	} {
		f.Add([]byte(s), []byte(`{"x":{"y":1},"a":"s"}`))
	}
	f.Fuzz(func(t *testing.T, spec, payload []byte) {
		flt, err := ParseFilter(spec, nil)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidFilter)
			require.Nil(t, flt)
			return
		}
		// Canonical form is a fixed point, and matching never panics.
		again, err := ParseFilter([]byte(flt.String()), nil)
		require.NoError(t, err, flt.String())
		require.Equal(t, flt.String(), again.String())
		_ = flt.Match("e", JSONPayload(payload))
		_ = flt.Match("e", BinaryPayload(payload))
	})
}

// TestFilterWebSocket: on one topic, a client with a filter gets only the
// broadcasts it asked for, one without gets all of them, and the dropped
// ones are counted.
func TestFilterWebSocket(t *testing.T) {
	joined := make(chan *Filter, 2)
	e := newTestEndpoint(t, &Options{Router: filterRouter(nil, joined)})
	all := e.dial(t, "vsn=2.0.0", nil)
	all.join("1", "feed:a", `{}`)
	assert.Nil(t, <-joined)
	some := e.dial(t, "vsn=2.0.0", nil)
	some.join("1", "feed:a", `{"token":"t","filter":{"events":["tick","end"],"where":{"sym":["BTC","ETH"]}}}`)
	assert.Equal(t, `{"events":["end","tick"],"where":{"sym":["BTC","ETH"]}}`, (<-joined).String(), "Join sees the filter")

	ctx := context.Background()
	bc := func(event string, payload any) {
		t.Helper()
		require.NoError(t, e.srv.Broadcast(ctx, "feed:a", event, payload))
	}
	bc("tick", map[string]any{"sym": "BTC", "p": 1})         // both
	bc("tick", map[string]any{"sym": "DOGE", "p": 2})        // all: where fails
	bc("trade", map[string]any{"sym": "BTC"})                // all: event not listed
	bc("tick", map[string]any{"p": 3})                       // all: field missing
	bc("tick", "BTC")                                        // all: not an object
	bc("presence_diff", map[string]any{"joins": struct{}{}}) // both: protocol event
	bc("tick", Binary{1, 2})                                 // both: binary skips where
	bc("end", map[string]any{"sym": "ETH"})                  // both

	for _, f := range []string{
		`[null,null,"feed:a","tick",{"p":1,"sym":"BTC"}]`,
		`[null,null,"feed:a","tick",{"p":2,"sym":"DOGE"}]`,
		`[null,null,"feed:a","trade",{"sym":"BTC"}]`,
		`[null,null,"feed:a","tick",{"p":3}]`,
		`[null,null,"feed:a","tick","BTC"]`,
		`[null,null,"feed:a","presence_diff",{"joins":{}}]`,
		"bin:" + binaryBroadcastHex("feed:a", "tick", []byte{1, 2}),
		`[null,null,"feed:a","end",{"sym":"ETH"}]`,
	} {
		all.expectNext(f)
	}
	for _, f := range []string{
		`[null,null,"feed:a","tick",{"p":1,"sym":"BTC"}]`,
		`[null,null,"feed:a","presence_diff",{"joins":{}}]`,
		"bin:" + binaryBroadcastHex("feed:a", "tick", []byte{1, 2}),
		`[null,null,"feed:a","end",{"sym":"ETH"}]`,
	} {
		some.expectNext(f)
	}
	// The memory PubSub fans out before Broadcast returns: the count is final.
	assert.Equal(t, uint64(4), e.srv.Stats().Filtered)

	// Pushes and replies are never filtered.
	some.send(`["1","2","feed:a","nope",{}]`) // unhandled: no reply
	some.send(`["1","3","feed:a","set_filter",{"events":[]}]`)
	some.expectNext(`["1","3","feed:a","phx_reply",{"response":{"filter":"{\"events\":[]}"},"status":"ok"}]`)
	// A filter set later, by a client event, applies from then on.
	bc("tick", map[string]any{"sym": "BTC"})
	bc("presence_diff", map[string]any{"leaves": struct{}{}})
	some.expectNext(`[null,null,"feed:a","presence_diff",{"leaves":{}}]`)
	all.expect(`[null,null,"feed:a","presence_diff",{"leaves":{}}]`)
	some.send(`["1","4","feed:a","set_filter",{"where":{"a":{}}}]`)
	some.expectNext(`["1","4","feed:a","phx_reply",{"response":{"detail":"where \"a\": values must be strings, numbers, booleans or null","reason":"invalid filter"},"status":"error"}]`)
	some.send(`["1","5","feed:a","set_filter",null]`)
	some.expectNext(`["1","5","feed:a","phx_reply",{"response":{"filter":"null"},"status":"ok"}]`)
	bc("trade", map[string]any{"sym": "X"})
	some.expectNext(`[null,null,"feed:a","trade",{"sym":"X"}]`)
	assert.Equal(t, uint64(5), e.srv.Stats().Filtered)
}

// binaryBroadcastHex is the V2 binary broadcast frame (kind 2) in hex, as
// wsClient reports binary frames.
func binaryBroadcastHex(topic, event string, data []byte) string {
	b := []byte{2, byte(len(topic)), byte(len(event))}
	b = append(b, topic...)
	b = append(b, event...)
	return fmt.Sprintf("%x", append(b, data...))
}

// TestFilterNestedFieldsWebSocket matches nested fields of every JSON
// scalar type over a real socket, V1 serializer.
func TestFilterNestedFieldsWebSocket(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: filterRouter(nil, nil)})
	c := e.dial(t, "vsn=1.0.0", nil)
	c.send(`{"join_ref":"1","ref":"1","topic":"feed:n","event":"phx_join","payload":{"filter":` +
		`{"where":{"user.role":["admin","owner"],"user.level":3,"flags.live":true,"meta.tag":null}}}}`)
	c.expectNext(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"feed:n"}`)
	ctx := context.Background()
	for i, p := range []string{
		`{"user":{"role":"owner","level":3},"flags":{"live":true},"meta":{"tag":null},"n":1}`, // passes
		`{"user":{"role":"guest","level":3},"flags":{"live":true},"meta":{"tag":null},"n":2}`,
		`{"user":{"role":"admin","level":"3"},"flags":{"live":true},"meta":{"tag":null},"n":3}`,
		`{"user":{"role":"admin","level":3},"flags":{"live":"true"},"meta":{"tag":null},"n":4}`,
		`{"user":{"role":"admin","level":3},"flags":{"live":true},"meta":{},"n":5}`,
		`{"user":{"role":"admin","level":3.0},"flags":{"live":true},"meta":{"tag":null},"n":6}`, // passes
	} {
		require.NoError(t, e.srv.Broadcast(ctx, "feed:n", "e", JSONPayload([]byte(p))), i)
	}
	c.expectNext(`{"event":"e","payload":{"user":{"role":"owner","level":3},"flags":{"live":true},"meta":{"tag":null},"n":1},"ref":null,"topic":"feed:n"}`)
	c.expectNext(`{"event":"e","payload":{"user":{"role":"admin","level":3.0},"flags":{"live":true},"meta":{"tag":null},"n":6},"ref":null,"topic":"feed:n"}`)
	assert.Equal(t, uint64(4), e.srv.Stats().Filtered)
}

// TestFilterIgnoredWithoutOptIn: a channel that is not Filterable gets the
// filter param in Join as any other and its client gets every broadcast,
// even with a filter that would be refused.
func TestFilterIgnoredWithoutOptIn(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: filterRouter(nil, nil)})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "room:a", `{"filter":{"events":["only"]}}`)
	c.join("2", "room:b", `{"filter":{"evnts":"malformed"}}`)
	ctx := context.Background()
	require.NoError(t, e.srv.Broadcast(ctx, "room:a", "other", map[string]int{"n": 1}))
	require.NoError(t, e.srv.Broadcast(ctx, "room:b", "other", map[string]int{"n": 2}))
	c.expectNext(`[null,null,"room:a","other",{"n":1}]`)
	c.expectNext(`[null,null,"room:b","other",{"n":2}]`)
	assert.Zero(t, e.srv.Stats().Filtered)
}

// TestFilterJoinRefused: a malformed or oversized filter refuses the join
// of a Filterable channel with an error reply saying why; nothing is
// subscribed and the connection goes on.
func TestFilterJoinRefused(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: filterRouter(&FilterLimits{MaxEvents: 2}, nil)})
	c := e.dial(t, "vsn=2.0.0", nil)
	for i, tc := range []struct{ filter, detail string }{
		{`"tick"`, `not an object`},
		{`{"events":["a","b","c"]}`, `more than 2 event names`},
		{`{"where":{"a.b.c.d.e":1}}`, `where \"a.b.c.d.e\": path deeper than 4`},
		{`{"where":{"a":[[]]}}`, `where \"a\": values must be strings, numbers, booleans or null`},
		{`{"events":["a"],"oops":1}`, `unknown key \"oops\"`},
	} {
		ref := fmt.Sprint(i + 1)
		c.send(fmt.Sprintf(`[%q,%q,"feed:a","phx_join",{"filter":%s}]`, ref, ref, tc.filter))
		c.expectNext(fmt.Sprintf(`[%q,%q,"feed:a","phx_reply",{"response":{"detail":"%s","reason":"invalid filter"},"status":"error"}]`, ref, ref, tc.detail))
	}
	assert.Zero(t, e.srv.Subscribers("feed:a"))
	assert.Zero(t, c.conn(t, e).Channels())
	// The same connection joins with a good filter afterwards.
	c.join("9", "feed:a", `{"filter":{"events":["a","b"]}}`)
	assert.Equal(t, 1, e.srv.Subscribers("feed:a"))
}

// conn returns the server side of the test's only connection.
func (c *wsClient) conn(t *testing.T, e *testEndpoint) *Conn {
	t.Helper()
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	require.Len(t, e.srv.conns, 1)
	for k := range e.srv.conns {
		return k
	}
	return nil
}

// httpForward serves a request by sending it over a real socket to an
// HTTP server, so that in-process LongPoll helpers (lpClient) talk to a
// server over TCP.
type httpForward struct {
	base string
	tr   *http.Transport
}

func (h *httpForward) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, h.base+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.ContentLength = r.ContentLength
	resp, err := h.tr.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// TestFilterLongPoll: filters apply before the transport, so LongPoll
// clients (over real sockets here) get the same as WebSocket ones.
func TestFilterLongPoll(t *testing.T) {
	srv := newLPServer(t, &Options{Router: filterRouter(nil, nil)})
	hs := httptest.NewServer(srv)
	tr := &http.Transport{}
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		hs.Close()
		tr.CloseIdleConnections()
	})
	fw := &httpForward{base: hs.URL, tr: tr}

	all := newLPClient(t, fw, "vsn=2.0.0")
	all.open()
	all.post(`["1","1","feed:lp","phx_join",{}]`)
	all.pollUntil(`["1","1","feed:lp","phx_reply",{"response":{},"status":"ok"}]`)
	some := newLPClient(t, fw, "vsn=2.0.0")
	some.open()
	some.post(`["1","1","feed:lp","phx_join",{"filter":{"except":["noise"],"where":{"room.id":7}}}]`)
	some.pollUntil(`["1","1","feed:lp","phx_reply",{"response":{},"status":"ok"}]`)

	ctx := context.Background()
	for _, b := range []struct {
		event string
		p     string
	}{
		{"msg", `{"room":{"id":7},"n":1}`},
		{"noise", `{"room":{"id":7},"n":2}`},
		{"msg", `{"room":{"id":8},"n":3}`},
		{"msg", `{"room":{"id":7},"n":4}`},
	} {
		require.NoError(t, srv.Broadcast(ctx, "feed:lp", b.event, JSONPayload([]byte(b.p))))
	}
	last := `[null,null,"feed:lp","msg",{"room":{"id":7},"n":4}]`
	assert.Equal(t, []string{
		`[null,null,"feed:lp","msg",{"room":{"id":7},"n":1}]`,
		`[null,null,"feed:lp","noise",{"room":{"id":7},"n":2}]`,
		`[null,null,"feed:lp","msg",{"room":{"id":8},"n":3}]`,
		last,
	}, all.pollUntil(last))
	assert.Equal(t, []string{
		`[null,null,"feed:lp","msg",{"room":{"id":7},"n":1}]`,
		last,
	}, some.pollUntil(last))
	assert.Equal(t, uint64(2), srv.Stats().Filtered)

	// A refused join over LongPoll.
	some.post(`["2","2","feed:bad","phx_join",{"filter":{"where":{"a":{}}}}]`)
	some.pollUntil(`["2","2","feed:bad","phx_reply",{"response":{"detail":"where \"a\": values must be strings, numbers, booleans or null","reason":"invalid filter"},"status":"error"}]`)
}

// TestFilterBeforeHandleOut: a broadcast a filter drops never reaches the
// channel's HandleOut; one it passes does, and HandleOut's push is not
// filtered again.
func TestFilterBeforeHandleOut(t *testing.T) {
	r := NewRouter()
	outs := make(chan string, 10)
	r.Handle("out:*", func() Channel { return &outRoom{outs: outs} })
	e := newTestEndpoint(t, &Options{Router: r})
	c := e.dial(t, "vsn=2.0.0", nil)
	c.join("1", "out:a", `{"filter":{"events":["keep"]}}`)
	ctx := context.Background()
	require.NoError(t, e.srv.Broadcast(ctx, "out:a", "drop", map[string]int{"n": 1}))
	require.NoError(t, e.srv.Broadcast(ctx, "out:a", "keep", map[string]int{"n": 2}))
	c.expectNext(`["1",null,"out:a","renamed",{"n":2}]`)
	assert.Equal(t, "keep", <-outs)
	assert.Empty(t, outs, "the dropped broadcast never reached HandleOut")
	assert.Equal(t, uint64(1), e.srv.Stats().Filtered)
}

// outRoom intercepts every event it names and pushes it renamed.
type outRoom struct {
	Base
	outs chan string
}

func (*outRoom) FilterLimits() *FilterLimits                         { return nil }
func (*outRoom) Join(context.Context, *Socket, Payload) (any, error) { return nil, nil }
func (*outRoom) HandleIn(context.Context, *Socket, *Message) (Reply, error) {
	return NoReply, ErrUnhandled
}
func (*outRoom) Intercepts() []string { return []string{"drop", "keep"} }
func (r *outRoom) HandleOut(_ context.Context, s *Socket, msg *Message) error {
	r.outs <- msg.Event
	return s.Push("renamed", msg.Payload)
}

// TestFilterDecodesPayloadOncePerBroadcast: a fan-out to many subscribers
// with conditions looks into the payload once, and allocates nothing per
// subscriber.
func TestFilterDecodesPayloadOncePerBroadcast(t *testing.T) {
	allocs := func(subs int) float64 {
		srv := NewServer(&Options{Router: filterRouter(nil, nil), Logger: slog.New(slog.DiscardHandler)})
		defer srv.Close()
		tr := &countTransport{}
		for i := range subs {
			c, err := srv.Attach(context.Background(), &ConnectInfo{}, tr)
			require.NoError(t, err)
			defer c.Finish()
			c.Receive(&Message{JoinRef: "1", Ref: "1", Topic: "feed:x", Event: EventJoin,
				Payload: JSONPayload(fmt.Appendf(nil, `{"filter":{"where":{"a.b":[1,%d],"c":"x"}}}`, i))})
		}
		require.Equal(t, subs, srv.Subscribers("feed:x"))
		payload := JSONPayload([]byte(`{"a":{"b":2,"z":[1,2,3]},"c":"x","d":{"e":"f"}}`))
		checks := srv.hub.payloadChecks.Load()
		const runs = 20
		n := testing.AllocsPerRun(runs, func() {
			require.NoError(t, srv.Broadcast(context.Background(), "feed:x", "e", payload))
		})
		assert.Equal(t, uint64(runs+1), srv.hub.payloadChecks.Load()-checks, "one look per broadcast") // AllocsPerRun warms up once
		require.Positive(t, tr.n.Load())
		return n
	}
	few, many := allocs(10), allocs(200)
	t.Logf("allocations per broadcast: %v with 10 subscribers, %v with 200", few, many)
	assert.Less(t, many-few, 5.0, "allocations per broadcast: %v with 10 subscribers, %v with 200", few, many)
}

// TestFilterNeverDecodesWithoutConditions: event filters alone do not
// look into payloads, and filters with conditions share the lookups.
func TestFilterNeverDecodesWithoutConditions(t *testing.T) {
	f := mustParseFilter(t, `{"events":["a"],"except":["b"]}`)
	for _, ev := range []string{"a", "b", "c", "presence_diff"} {
		var doc payloadDoc
		f.pass(ev, []byte(`{"x":1}`), false, &doc)
		assert.False(t, doc.checked, ev)
	}
	var doc payloadDoc
	g := mustParseFilter(t, `{"where":{"x":1}}`)
	assert.True(t, g.pass("e", []byte(`{"x":1}`), false, &doc))
	assert.True(t, doc.checked)
	h := mustParseFilter(t, `{"where":{"x":2}}`)
	assert.False(t, h.pass("e", []byte(`{"x":1}`), false, &doc))
	assert.Equal(t, 1, doc.nfields, "the path was looked up once")
}

// TestFilterSharedEvaluation: in one fan-out, equal filters share an
// evaluation, and more distinct filters than are remembered still each
// get their own answer.
func TestFilterSharedEvaluation(t *testing.T) {
	a1 := mustParseFilter(t, `{"events":["e","f"],"where":{"x":1,"y":"s"}}`)
	a2 := mustParseFilter(t, `{"where":{"y":"s","x":1.0},"events":["e","f","e"]}`)
	assert.Equal(t, a1.key, a2.key, "the same filter written differently")
	assert.Equal(t, a1.key, mustParseFilter(t, `{"events":["f","e"],"where":{"x":1,"y":"s"}}`).key)
	assert.NotEqual(t, a1.key, mustParseFilter(t, `{"events":["e"],"where":{"x":1,"y":"s"}}`).key)
	var specs []*Filter
	for i := range 2 * filterMemo {
		specs = append(specs, mustParseFilter(t, fmt.Sprintf(`{"where":{"x":%d}}`, i%3+1)),
			mustParseFilter(t, fmt.Sprintf(`{"where":{"z":%d}}`, i)))
	}
	for i := range 2 * fieldMemo {
		specs = append(specs, mustParseFilter(t, fmt.Sprintf(`{"where":{"p%d":1,"q.r":[%d,7]}}`, i, i)))
	}
	for _, payload := range []string{`{"x":1,"y":"s","z":3}`, `{"x":2,"z":5}`, `[]`,
		`{"p1":1,"p9":1,"p10":2,"q":{"r":7}}`, `{"p1":1,"p3":1,"q":{"r":3}}`} {
		var doc payloadDoc
		for round := range 2 {
			for i, f := range append([]*Filter{a1, a2}, specs...) {
				want := f.Match("e", JSONPayload([]byte(payload)))
				assert.Equal(t, want, f.pass("e", []byte(payload), false, &doc), "%s filter %d round %d", payload, i, round)
			}
		}
	}
}

// TestFilterInterned: equal filters are one value while in use, and
// forgotten once unused.
func TestFilterInterned(t *testing.T) {
	key := func() unique.Handle[string] {
		f1 := mustParseFilter(t, `{"events":["interned-a","interned-b"],"where":{"k":1}}`)
		f2 := mustParseFilter(t, `{"where":{"k":1.0},"events":["interned-b","interned-a"]}`)
		require.Same(t, f1, f2)
		return f1.key
	}()
	gone := false
	for range 100 {
		runtime.GC()
		if _, ok := filters.Load(key); !ok {
			gone = true
			break
		}
		runtime.Gosched()
	}
	assert.True(t, gone, "the unused filter is forgotten")
}

// refMatch is Match written the obvious way, decoding the payload into a
// map: the payload scanner must agree with it.
func refMatch(f *Filter, event string, p Payload) bool {
	if f == nil {
		return true
	}
	if slices.Contains(f.except, event) {
		return false
	}
	if strings.HasPrefix(event, "phx_") || event == "presence_diff" {
		return true
	}
	if f.events != nil && !slices.Contains(f.events, event) {
		return false
	}
	if len(f.where) == 0 || p.IsBinary() {
		return true
	}
	var obj map[string]any
	if json.Unmarshal(p.Bytes(), &obj) != nil || obj == nil {
		return false
	}
	for _, c := range f.where {
		var v any = obj
		found := true
		for _, k := range c.keys {
			m, ok := v.(map[string]any)
			if !ok {
				found = false
				break
			}
			if v, ok = m[k]; !ok {
				found = false
				break
			}
		}
		if !found || !slices.ContainsFunc(c.vals, func(want any) bool {
			switch w := want.(type) {
			case string, float64, bool:
				return v == w
			case nil:
				return v == nil
			}
			return false
		}) {
			return false
		}
	}
	return true
}

func FuzzFilterMatch(f *testing.F) {
	for _, c := range [][2]string{
		{`{"where":{"a":"x"}}`, `{"a":"x"}`},
		{`{"where":{"a":"x\u00e9"}}`, `{"a":"x\u00e9"}`},
		{`{"where":{"a\"b":1}}`, `{"a\"b":1, "a\u0022b":2}`},
		{`{"where":{"a.b":[1,2]}}`, `{"a":{"b":2},"a":{"c":1}}`},
		{`{"where":{"a.b":[1,2]}}`, `{"a":{"c":1},"a":{"b":2.0e0}}`},
		{`{"where":{"a":null}}`, ` { "a" : null } `},
		{`{"where":{"a":true,"b":false}}`, `{"b":false,"a":true,"c":[{"a":1}]}`},
		{`{"where":{"s":"}"}}`, `{"x":"{\"s\":\"}\"}","s":"}"}`},
		{`{"where":{"n":1}}`, `{"n":1e400}`},
		{`{"where":{"n":-0}}`, `{"n":0}`},
		{`{"events":["e"],"where":{"k":"\ufffd"}}`, "{\"k\":\"\xff\"}"},
		{`{"where":{"a":1}}`, `{"a":1`},
	} {
		f.Add([]byte(c[0]), []byte(c[1]))
	}
	f.Fuzz(func(t *testing.T, spec, payload []byte) {
		flt, err := ParseFilter(spec, nil)
		if err != nil {
			return
		}
		var probe any
		if json.Valid(payload) && json.Unmarshal(payload, &probe) != nil {
			// Valid JSON that encoding/json cannot decode into a map
			// (a number out of float64 range): the reference fails
			// every condition, the scanner only the ones on that
			// number. Both are fine.
			return
		}
		p := JSONPayload(payload)
		require.Equal(t, refMatch(flt, "e", p), flt.Match("e", p), "filter %s payload %q", flt, payload)
	})
}
