package presence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
	"github.com/pyre-go/pyre/presence"
	"github.com/pyre-go/pyre/pubsub"
)

var refPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16}$`)

func online() map[string]any { return meta("status", "online") }

func TestStateThenDiffs(t *testing.T) {
	n := newNode(t, nil, nil, presence.Options{})
	const topic = "room:lobby"

	a := n.ep.Client(nil).Join(topic, map[string]any{"key": "alice", "meta": online()})
	f := a.AssertPush(presence.EventState, wantState(metas{}))
	assert.Equal(t, a.JoinRef(), f.JoinRef(), "presence_state carries the join_ref")
	f = a.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {online()}}, nil))
	assert.Equal(t, channel.FrameBroadcast, f.Kind(), "presence_diff is a broadcast: join_ref null")
	raw := f.Payload().Bytes()
	assert.Less(t, bytes.Index(raw, []byte(`"joins"`)), bytes.Index(raw, []byte(`"leaves"`)), "joins before leaves: %s", raw)
	d := channeltest.Decode[diffPayload](t, f.Payload())
	aliceRef := d.Joins["alice"].Metas[0]["phx_ref"].(string)
	assert.Regexp(t, refPattern, aliceRef)

	b := n.ep.Client(nil).Join(topic, map[string]any{"key": "bob", "meta": online()})
	f = b.AssertPush(presence.EventState, wantState(metas{"alice": {online()}}))
	state := channeltest.Decode[map[string]presence.Presence](t, f.Payload())
	assert.Equal(t, aliceRef, state["alice"].Metas[0]["phx_ref"], "the state and the diff name the same phx_ref")
	b.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))
	a.AssertPush(presence.EventDiff, wantDiff(metas{"bob": {online()}}, nil))

	assert.Equal(t, metas{"alice": {online()}, "bob": {online()}}, metaView(n.tr.List(topic)))
	p, ok := n.tr.Get(topic, "alice")
	require.True(t, ok)
	assert.Equal(t, aliceRef, p.Metas[0]["phx_ref"])
	_, ok = n.tr.Get(topic, "carol")
	assert.False(t, ok)
	assert.Empty(t, n.tr.List("room:empty"))
	a.RefutePush(presence.EventDiff, nil, 0)
	b.RefutePush(presence.EventDiff, nil, 0)
}

func TestOneKeyManySockets(t *testing.T) {
	n := newNode(t, nil, nil, presence.Options{})
	const topic = "room:devices"
	phone := n.ep.Client(nil).Join(topic, map[string]any{"key": "alice", "meta": meta("device", "phone")})
	phone.AssertPush(presence.EventDiff, nil)
	laptop := n.ep.Client(nil).Join(topic, map[string]any{"key": "alice", "meta": meta("device", "laptop")})
	laptop.AssertPush(presence.EventState, wantState(metas{"alice": {meta("device", "phone")}}))
	phone.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {meta("device", "laptop")}}, nil))
	assert.Equal(t, metas{"alice": {meta("device", "phone"), meta("device", "laptop")}}, metaView(n.tr.List(topic)))

	phone.Leave().AssertReply("ok", nil)
	laptop.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {meta("device", "laptop")}}, nil)) // its own join
	laptop.AssertPush(presence.EventDiff, wantDiff(nil, metas{"alice": {meta("device", "phone")}}))
	assert.Equal(t, metas{"alice": {meta("device", "laptop")}}, metaView(n.tr.List(topic)))
}

func TestUpdate(t *testing.T) {
	n := newNode(t, nil, nil, presence.Options{})
	const topic = "room:update"
	a := n.ep.Client(nil).Join(topic, map[string]any{"key": "alice", "meta": online()})
	d := channeltest.Decode[diffPayload](t, a.AssertPush(presence.EventDiff, nil).Payload())
	oldRef := d.Joins["alice"].Metas[0]["phx_ref"]

	r := a.Push("update", map[string]any{"key": "alice", "meta": meta("status", "away")}).AssertReply("ok", nil)
	newRef := channeltest.Decode[map[string]string](t, r.Payload())["ref"]
	assert.Regexp(t, refPattern, newRef)
	assert.NotEqual(t, oldRef, newRef)

	f := a.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {meta("status", "away")}}, metas{"alice": {online()}}))
	d = channeltest.Decode[diffPayload](t, f.Payload())
	assert.Equal(t, map[string]any{"status": "away", "phx_ref": newRef, "phx_ref_prev": oldRef}, d.Joins["alice"].Metas[0])
	assert.Equal(t, map[string]any{"status": "online", "phx_ref": oldRef}, d.Leaves["alice"].Metas[0])
	a.RefutePush(presence.EventDiff, nil, 0) // one message, not two

	list := n.tr.List(topic)
	require.Len(t, list["alice"].Metas, 1)
	assert.Equal(t, map[string]any{"status": "away", "phx_ref": newRef, "phx_ref_prev": oldRef}, list["alice"].Metas[0])

	a.Push("update", map[string]any{"key": "nobody"}).AssertReply("error", map[string]string{"reason": "not_tracked"})
}

func TestUntrackedWhenChannelEnds(t *testing.T) {
	n := newNode(t, nil, nil, presence.Options{})
	const topic = "room:ends"
	obs := n.ep.Client(nil).Join(topic, map[string]any{})
	obs.AssertPush(presence.EventState, nil)

	cases := []struct {
		name string
		end  func(s *channeltest.Client, ch *channeltest.Channel)
	}{
		{"leave", func(_ *channeltest.Client, ch *channeltest.Channel) { ch.Leave().AssertReply("ok", nil) }},
		{"close", func(s *channeltest.Client, _ *channeltest.Channel) { s.Close() }},
		{"duplicate join", func(s *channeltest.Client, _ *channeltest.Channel) {
			s.Join(topic, map[string]any{}) // replaces the tracked join
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := n.ep.Client(nil)
			ch := s.Join(topic, map[string]any{"key": "u", "meta": online()})
			obs.AssertPush(presence.EventDiff, wantDiff(metas{"u": {online()}}, nil))
			c.end(s, ch)
			obs.AssertPush(presence.EventDiff, wantDiff(nil, metas{"u": {online()}}))
			obs.RefutePush(presence.EventDiff, nil, 0) // exactly once
			assert.Empty(t, n.tr.List(topic))
		})
	}
}

func TestExplicitUntrack(t *testing.T) {
	n := newNode(t, nil, nil, presence.Options{})
	const topic = "room:untrack"
	a := n.ep.Client(nil).Join(topic, map[string]any{"key": "alice", "meta": online()})
	a.AssertPush(presence.EventDiff, nil)
	a.Push("track", map[string]any{"topic": "room:other", "key": "alice"}).AssertReply("ok", nil)
	a.Push("untrack", map[string]any{"key": "alice"}).AssertReply("ok", nil)
	a.AssertPush(presence.EventDiff, wantDiff(nil, metas{"alice": {online()}}))
	a.Push("untrack", map[string]any{"key": "alice"}).AssertReply("ok", nil) // not tracked: nothing
	a.RefutePush(presence.EventDiff, nil, 0)
	assert.Empty(t, n.tr.List(topic))
	assert.Len(t, n.tr.List("room:other"), 1)

	a.Push("untrack_all", map[string]any{}).AssertReply("ok", nil)
	assert.Empty(t, n.tr.List("room:other"))
	a.Leave().AssertReply("ok", nil)
	a.RefutePush(presence.EventDiff, nil, 0)
}

// An overlay joined to its own topic is listed in "overlays", where a
// dashboard follows it.
func TestTrackOtherTopic(t *testing.T) {
	n := newNode(t, nil, nil, presence.Options{})
	dash := n.ep.Client(nil).Join("overlays", map[string]any{})
	dash.AssertPush(presence.EventState, wantState(metas{}))

	obs := n.ep.Client(nil).Join("overlay:obs", map[string]any{"topic": "overlays", "key": "obs", "meta": meta("scene", "main")})
	obs.AssertPush(presence.EventState, wantState(metas{})) // overlay:obs has nobody
	dash.AssertPush(presence.EventDiff, wantDiff(metas{"obs": {meta("scene", "main")}}, nil))
	assert.Equal(t, metas{"obs": {meta("scene", "main")}}, metaView(n.tr.List("overlays")))
	assert.Empty(t, n.tr.List("overlay:obs"))

	obs.Push("state", map[string]any{"topic": "overlays"}).AssertReply("ok", nil)
	obs.AssertPush(presence.EventState, wantState(metas{"obs": {meta("scene", "main")}}))
	obs.Push("update", map[string]any{"topic": "overlays", "key": "obs", "meta": meta("scene", "brb")}).AssertReply("ok", nil)
	dash.AssertPush(presence.EventDiff, wantDiff(metas{"obs": {meta("scene", "brb")}}, metas{"obs": {meta("scene", "main")}}))

	obs.Leave().AssertReply("ok", nil)
	dash.AssertPush(presence.EventDiff, wantDiff(nil, metas{"obs": {meta("scene", "brb")}}))
	obs.RefutePush(presence.EventDiff, nil, 0)
}

func TestErrors(t *testing.T) {
	n := newNode(t, nil, nil, presence.Options{})
	a := n.ep.Client(nil).Join("room:errors", map[string]any{"key": "alice"})
	a.AssertPush(presence.EventDiff, wantDiff(metas{"alice": {{}}}, nil))
	a.Push("track", map[string]any{"key": "alice"}).AssertReply("error", map[string]string{"reason": "already_tracked"})
	a.Push("update", map[string]any{"key": "bob"}).AssertReply("error", map[string]string{"reason": "not_tracked"})
	a.Push("track", map[string]any{"key": "alice", "topic": "room:elsewhere"}).AssertReply("ok", nil)

	// Reserved keys are replaced by the tracker's refs.
	r := a.Push("track", map[string]any{"key": "carol", "meta": meta("phx_ref", "mine", "phx_ref_prev", "x")}).AssertReply("ok", nil)
	ref := channeltest.Decode[map[string]string](t, r.Payload())["ref"]
	a.AssertPush(presence.EventDiff, wantDiff(metas{"carol": {{}}}, nil))
	p, _ := n.tr.Get("room:errors", "carol")
	assert.Equal(t, []map[string]any{{"phx_ref": ref}}, p.Metas)

	require.NoError(t, n.tr.Close())
	a.Push("track", map[string]any{"key": "dave"}).AssertReply("error", map[string]string{"reason": "closed"})
	a.Push("untrack", map[string]any{"key": "alice"}).AssertReply("error", map[string]string{"reason": "closed"})
	a.Leave().AssertReply("ok", nil) // the untrack after Close does nothing
	a.RefutePush(presence.EventDiff, nil, 0)
	assert.Len(t, n.tr.List("room:errors"), 2, "List answers with the last view after Close")
}

func TestInvalidArguments(t *testing.T) {
	n := newNode(t, nil, nil, presence.Options{})
	_, err := n.tr.TrackTopic(nil, "", "k", nil)
	assert.ErrorIs(t, err, presence.ErrInvalidTopic)
	_, err = n.tr.UpdateTopic(nil, "room:x", "k", map[string]any{"f": func() {}})
	var unsupported *json.UnsupportedTypeError
	assert.ErrorAs(t, err, &unsupported)
}

// Messages on the replication topic that are not from a tracker are
// ignored.
func TestIgnoresForeignMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := pubsub.NewMemory(nil)
		n := newNode(t, nil, bus, presence.Options{NodeID: "a"})
		ctx := context.Background()
		for _, payload := range []string{`not json`, `{"v":2,"node":"x","epoch":"e","clock":1}`, `{"v":1}`,
			`{"v":1,"node":"x","epoch":"e","clock":1,"from":0,"ops":[{"add":{"ref":"r","topic":"room:x","key":"k","meta":"not an object"}}]}`} {
			require.NoError(t, bus.Broadcast(ctx, &pubsub.Message{Topic: presence.DefaultTopic, Event: "delta", Payload: []byte(payload)}))
		}
		synctest.Wait()
		assert.Empty(t, n.tr.List("room:x"))
	})
}
