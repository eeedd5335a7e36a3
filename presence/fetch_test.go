package presence_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/presence"
	"github.com/pyre-go/pyre/pubsub"
)

// fetchCall is one recorded Fetch call: its topic and sorted keys.
type fetchCall struct {
	topic string
	keys  []string
}

// userFetch is a Fetch that adds {"user":{"name":KEY}} to every key, and
// records its calls. It returns no metas, so the tracked ones are kept.
type userFetch struct {
	mu    sync.Mutex
	calls []fetchCall
}

func (u *userFetch) fetch(_ context.Context, topic string, ps map[string]presence.Presence) (map[string]presence.Presence, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]presence.Presence, len(ps)+1)
	var keys []string
	for k := range ps {
		keys = append(keys, k)
		out[k] = presence.Presence{Extra: map[string]any{"user": map[string]any{"name": strings.ToUpper(k)}}}
	}
	out["ghost"] = presence.Presence{Metas: []map[string]any{{"x": 1}}} // not asked for: ignored
	slices.Sort(keys)
	u.calls = append(u.calls, fetchCall{topic, keys})
	return out, nil
}

func (u *userFetch) taken() []fetchCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.calls
	u.calls = nil
	return c
}

func user(name string) map[string]any { return map[string]any{"name": name} }

// wantUsers matches a presence_state (diff == "") or the joins or leaves
// of a presence_diff whose keys carry exactly the given "user" fields and
// the given metas (without refs), encoded next to "metas" as Phoenix does.
func wantUsers(part string, users map[string]string, ms metas) channeltest.Matcher {
	return channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) { usersIn(t, p, part, users, ms) })
}

func usersIn(t *channeltest.CollectT, p channel.Payload, part string, users map[string]string, ms metas) {
	{
		raw := p.Bytes()
		if part != "" {
			var d map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(raw, &d))
			raw = d[part]
		}
		var wire map[string]map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &wire), "%s", raw)
		got := map[string]string{}
		for k, fields := range wire {
			assert.Contains(t, fields, "metas")
			if u, ok := fields["user"]; ok {
				var v map[string]string
				require.NoError(t, json.Unmarshal(u, &v))
				got[k] = v["name"]
			}
		}
		assert.Equal(t, users, got, "%s", raw)
		var ps map[string]presence.Presence
		require.NoError(t, json.Unmarshal(raw, &ps))
		assert.Equal(t, ms, metaView(ps))
	}
}

func TestFetchEnrichesStateAndDiffs(t *testing.T) {
	uf := &userFetch{}
	n := newNode(t, nil, nil, presence.Options{Fetch: uf.fetch})
	const topic = "room:fetch"

	a := n.ep.Client(nil).Join(topic, map[string]any{"key": "alice", "meta": online()})
	a.AssertPush(presence.EventState, wantUsers("", map[string]string{}, metas{}))
	f := a.AssertPush(presence.EventDiff, wantUsers("joins", map[string]string{"alice": "ALICE"}, metas{"alice": {online()}}))
	d := channeltest.Decode[diffPayload](t, f.Payload())
	assert.Equal(t, map[string]any{"user": user("ALICE")}, d.Joins["alice"].Extra)
	assert.Regexp(t, refPattern, d.Joins["alice"].Metas[0]["phx_ref"], "the tracked metas are kept")
	assert.Empty(t, d.Leaves)
	assert.Equal(t, []fetchCall{{topic, []string{"alice"}}}, uf.taken(), "an empty state and empty leaves are not fetched")

	b := n.ep.Client(nil).Join(topic, map[string]any{"key": "bob", "meta": online()})
	b.AssertPush(presence.EventState, wantUsers("", map[string]string{"alice": "ALICE"}, metas{"alice": {online()}}))
	b.AssertPush(presence.EventDiff, wantUsers("joins", map[string]string{"bob": "BOB"}, metas{"bob": {online()}}))
	a.AssertPush(presence.EventDiff, wantUsers("joins", map[string]string{"bob": "BOB"}, metas{"bob": {online()}}))

	// One call for the whole state of a third client.
	uf.taken()
	c := n.ep.Client(nil).Join(topic, map[string]any{})
	c.AssertPush(presence.EventState, wantUsers("", map[string]string{"alice": "ALICE", "bob": "BOB"},
		metas{"alice": {online()}, "bob": {online()}}))
	assert.Equal(t, []fetchCall{{topic, []string{"alice", "bob"}}}, uf.taken())

	// An update: joins and leaves are fetched apart, both enriched.
	b.Push("update", map[string]any{"key": "bob", "meta": meta("status", "away")}).AssertReply("ok", nil)
	for _, ch := range []*channeltest.Channel{a, b, c} {
		ch.AssertPush(presence.EventDiff, channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
			usersIn(t, p, "joins", map[string]string{"bob": "BOB"}, metas{"bob": {meta("status", "away")}})
			usersIn(t, p, "leaves", map[string]string{"bob": "BOB"}, metas{"bob": {online()}})
		}))
	}
	assert.Equal(t, []fetchCall{{topic, []string{"bob"}}, {topic, []string{"bob"}}}, uf.taken())

	// A leave.
	b.Leave().AssertReply("ok", nil)
	a.AssertPush(presence.EventDiff, wantUsers("leaves", map[string]string{"bob": "BOB"}, metas{"bob": {meta("status", "away")}}))
	c.AssertPush(presence.EventDiff, wantUsers("leaves", map[string]string{"bob": "BOB"}, metas{"bob": {meta("status", "away")}}))

	assert.Nil(t, n.tr.List(topic)["alice"].Extra, "List returns the presences as tracked")
}

// logRecorder is a slog.Handler keeping the messages of warnings.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" {
			msg += ": " + a.Value.String()
		}
		return true
	})
	l.msgs = append(l.msgs, msg)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

// A Fetch that fails, panics or overruns FetchTimeout does not hold the
// presences back: they go out as tracked, and a warning says why.
func TestFetchFailureSendsPresencesAsTracked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fetch presence.FetchFunc
		want  string
	}{
		{"error", func(context.Context, string, map[string]presence.Presence) (map[string]presence.Presence, error) {
			return nil, errors.New("users db down")
		}, "users db down"},
		{"panic", func(context.Context, string, map[string]presence.Presence) (map[string]presence.Presence, error) {
			panic("boom")
		}, "fetch panicked: boom"},
		{"timeout", func(ctx context.Context, _ string, ps map[string]presence.Presence) (map[string]presence.Presence, error) {
			<-ctx.Done()
			for k, p := range ps {
				p.Extra = map[string]any{"user": user("LATE")}
				ps[k] = p
			}
			return ps, nil // too late: not used
		}, "deadline exceeded"},
		{"unencodable", func(_ context.Context, _ string, ps map[string]presence.Presence) (map[string]presence.Presence, error) {
			for k, p := range ps {
				p.Extra = map[string]any{"user": make(chan int)}
				ps[k] = p
			}
			return ps, nil
		}, "not encoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logRecorder{}
			n := newNode(t, nil, nil, presence.Options{Fetch: tc.fetch, FetchTimeout: 20 * time.Millisecond, Logger: slog.New(logs)})
			const topic = "room:failing"
			a := n.ep.Client(nil).Join(topic, map[string]any{"key": "alice", "meta": online()})
			a.AssertPush(presence.EventState, wantState(metas{}))
			a.AssertPush(presence.EventDiff, wantUsers("joins", map[string]string{}, metas{"alice": {online()}}))
			b := n.ep.Client(nil).Join(topic, map[string]any{"key": "bob", "meta": online()})
			b.AssertPush(presence.EventState, wantUsers("", map[string]string{}, metas{"alice": {online()}}))
			a.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
			b.Leave().AssertReply("ok", nil)
			a.AssertPush(presence.EventDiff, wantDiff(nil, metas{"bob": {online()}}))
			msgs := logs.messages()
			require.NotEmpty(t, msgs)
			assert.Contains(t, msgs[0], tc.want)
		})
	}
}

// Fetch runs on the node whose clients receive the message: presences
// tracked on a node without Fetch are enriched by the node that has one.
func TestFetchOnReceivingNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		uf := &userFetch{}
		a := newNode(t, nil, bus, presence.Options{NodeID: "a"})
		b := newNode(t, nil, bus, presence.Options{NodeID: "b", Fetch: uf.fetch})
		synctest.Wait()

		alice := join(a, "alice", online())
		alice.AssertPush(presence.EventState, wantState(metas{}))
		alice.AssertPush(presence.EventDiff, wantUsers("joins", map[string]string{}, metas{"alice": {online()}}))
		synctest.Wait()
		assert.Empty(t, uf.taken(), "no client of b's on the topic: nothing to fetch")

		bob := join(b, "bob", online())
		bob.AssertPush(presence.EventState, wantUsers("", map[string]string{"alice": "ALICE"}, metas{"alice": {online()}}))
		bob.AssertPush(presence.EventDiff, wantUsers("joins", map[string]string{"bob": "BOB"}, metas{"bob": {online()}}))
		alice.AssertPush(presence.EventDiff, wantUsers("joins", map[string]string{}, metas{"bob": {online()}}))

		alice.Leave().AssertReply("ok", nil)
		synctest.Wait()
		bob.AssertPush(presence.EventDiff, wantUsers("leaves", map[string]string{"alice": "ALICE"}, metas{"alice": {online()}}))
	})
}

// A PushState waiting for Fetch returns ErrClosed when the Tracker
// closes; Close cancels the Fetch in progress and does not wait for more.
func TestFetchPushStateAfterClose(t *testing.T) {
	started := make(chan struct{})
	n := newNode(t, nil, nil, presence.Options{Fetch: func(ctx context.Context, _ string, ps map[string]presence.Presence) (map[string]presence.Presence, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	const topic = "room:closing"
	a := n.ep.Client(nil).Join(topic, map[string]any{"key": "alice", "meta": online()})
	a.AssertPush(presence.EventState, wantState(metas{}))
	<-started // the diff with alice's join waits for Fetch
	require.NoError(t, n.tr.Close())
	a.Push("state", map[string]any{}).AssertReply("error", map[string]any{"reason": "closed"})
}

// Messages leave in the order the view changed even while a Fetch is
// slow: changes made meanwhile wait behind it.
func TestFetchKeepsOrder(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	uf := &userFetch{}
	n := newNode(t, nil, nil, presence.Options{Fetch: func(ctx context.Context, topic string, ps map[string]presence.Presence) (map[string]presence.Presence, error) {
		once.Do(func() { <-release }) // the first call waits
		return uf.fetch(ctx, topic, ps)
	}})
	const topic = "room:order"
	a := n.ep.Client(nil).Join(topic, map[string]any{"key": "alice", "meta": online()})
	a.AssertPush(presence.EventState, wantState(metas{}))
	a.Push("update", map[string]any{"key": "alice", "meta": meta("status", "away")}).AssertReply("ok", nil)
	a.Push("update", map[string]any{"key": "alice", "meta": meta("status", "busy")}).AssertReply("ok", nil)
	close(release)
	next := func() diffPayload {
		return channeltest.Decode[diffPayload](t, a.AssertPush(presence.EventDiff, nil).Payload())
	}
	d := next()
	assert.Equal(t, metas{"alice": {online()}}, metaView(d.Joins))
	assert.Empty(t, d.Leaves)
	d = next()
	assert.Equal(t, metas{"alice": {meta("status", "away")}}, metaView(d.Joins))
	assert.Equal(t, metas{"alice": {online()}}, metaView(d.Leaves))
	d = next()
	assert.Equal(t, metas{"alice": {meta("status", "busy")}}, metaView(d.Joins))
	assert.Equal(t, metas{"alice": {meta("status", "away")}}, metaView(d.Leaves))
	assert.Equal(t, map[string]any{"user": user("ALICE")}, d.Joins["alice"].Extra)
}

// A Presence encodes its Extra fields next to "metas", as Phoenix does,
// and decodes them back.
func TestPresenceJSON(t *testing.T) {
	p := presence.Presence{
		Metas: []map[string]any{{"phx_ref": "r1", "status": "online"}},
		Extra: map[string]any{"user": user("Alice"), "metas": "ignored"},
	}
	b, err := json.Marshal(p)
	require.NoError(t, err)
	assert.JSONEq(t, `{"metas":[{"phx_ref":"r1","status":"online"}],"user":{"name":"Alice"}}`, string(b))

	var back presence.Presence
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, p.Metas, back.Metas)
	assert.Equal(t, map[string]any{"user": user("Alice")}, back.Extra)

	b, err = json.Marshal(presence.Presence{Metas: []map[string]any{}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"metas":[]}`, string(b))
	require.NoError(t, json.Unmarshal([]byte(`{"metas":[]}`), &back))
	assert.Nil(t, back.Extra)
	assert.Error(t, json.Unmarshal([]byte(`{"metas":{}}`), &back))
}
