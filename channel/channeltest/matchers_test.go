package channeltest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/channel/channeltest"
)

func TestMatchers(t *testing.T) {
	type point struct {
		X int `json:"x"`
		Y int `json:"y,omitempty"`
	}
	for _, tc := range []struct {
		name    string
		payload string
		want    any
		diff    string // "" when it matches
	}{
		{"nil matches anything", `[1]`, nil, ""},
		{"Any", `"x"`, channeltest.Any, ""},
		{"struct with tags", `{"x":1}`, point{X: 1}, ""},
		{"explicit Value", `{"x":1,"y":2}`, channeltest.Value(point{X: 1, Y: 2}), ""},
		{"struct extra field", `{"x":1,"z":0}`, point{X: 1}, `$.z: unexpected, got 0`},
		{"numbers by value", `{"n":1.50,"m":100}`, channeltest.JSON(`{"n":1.5,"m":1e2}`), ""},
		{"big integers exactly", `{"n":9007199254740993}`, channeltest.JSON(`{"n":9007199254740992}`), `$.n: got 9007199254740993, want 9007199254740992`},
		{"null is not absent", `{}`, channeltest.JSON(`{"a":null}`), `$.a: missing, want null`},
		{"type differs", `{"a":"1"}`, map[string]any{"a": 1}, `$.a: got "1", want 1`},
		{"object expected", `{"a":[1]}`, channeltest.JSON(`{"a":{"b":1}}`), `$.a: got [1], want an object {"b":1}`},
		{"array expected", `{"a":{}}`, channeltest.JSON(`{"a":[]}`), `$.a: got {}, want an array []`},
		{"odd keys are quoted", `{"a-b":{"0":true}}`, channeltest.JSON(`{"a-b":{"0":false}}`), `$["a-b"]["0"]: got true, want false`},
		{"nested arrays", `[[1,2],[3]]`, channeltest.JSON(`[[1,2],[4]]`), `$[1][0]: got 3, want 4`},
		{"many differences are cut", `{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1}`, channeltest.JSON(`{}`), `... and 2 more differences`},
		{"subset ignores extra keys", `{"a":{"b":1,"c":2},"d":3}`, channeltest.Subset(map[string]any{"a": map[string]any{"b": 1}}), ""},
		{"subset needs its keys", `{"a":{"c":2}}`, channeltest.Subset(channeltest.JSON(`{"a":{"b":1}}`)), `$.a.b: missing, want 1`},
		{"subset arrays keep length", `{"a":[1,2]}`, channeltest.Subset(json.RawMessage(`{"a":[1]}`)), `$.a: got 2 elements`},
		{"raw message", `{"a":1}`, json.RawMessage(`{"a":1.0}`), ""},
		{"payload value", `{"a":1}`, channel.JSONPayload([]byte(`{"a":2}`)), `$.a: got 1, want 2`},
		{"empty payload value is {}", `{}`, channel.JSONPayload(nil), ""},
		{"invalid payload", `{"a":`, channeltest.JSON(`{}`), `payload is not valid JSON`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := runFake(t, func(ft *fakeTB) {
				channeltest.AssertPayload(ft, channel.JSONPayload([]byte(tc.payload)), tc.want)
			})
			if tc.diff == "" {
				assert.Empty(t, ft.fatals)
				return
			}
			contains(t, ft.fatal(t), tc.diff)
		})
	}
}

func TestMatcherStrings(t *testing.T) {
	assert.Equal(t, "any payload", channeltest.Any.String())
	assert.Equal(t, `{"a":1}`, channeltest.JSON(`{ "a": 1 }`).String())
	assert.Equal(t, `{"x":1}`, channeltest.Value(map[string]int{"x": 1}).String())
	assert.Equal(t, `a payload containing {"x":1}`, channeltest.Subset(map[string]int{"x": 1}).String())
	assert.Contains(t, channeltest.Value(func() {}).String(), "cannot be encoded as JSON")
	long := channeltest.JSON(`"` + strings.Repeat("x", 400) + `"`)
	assert.Contains(t, long.String(), "…(402 bytes)")
	assert.Contains(t, (&channeltest.Broadcast{Payload: channel.BinaryPayload(make([]byte, 40))}).String(), "40 bytes 0000000000000000000000000000000000000000000000000000000000000000…")
	b := &channeltest.Broadcast{Topic: "t", Event: "e", Payload: channel.BinaryPayload([]byte{1})}
	assert.Equal(t, `broadcast "e" on "t" binary 1 bytes 01`, b.String())
}

func TestCollectT(t *testing.T) {
	c := &channeltest.CollectT{}
	c.Helper()
	assert.False(t, c.Failed())
	c.Errorf("x %d", 1)
	assert.True(t, c.Failed())
	assert.Panics(t, c.FailNow, "FailNow stops the Check function")

	m := channeltest.Check(func(t *channeltest.CollectT, _ channel.Payload) { t.FailNow() })
	assert.EqualError(t, m.MatchPayload(channel.JSONPayload([]byte(`{}`))), "FailNow called")
	m = channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
		assert.Equal(t, "a", "b", "with a message")
	})
	err := m.MatchPayload(channel.JSONPayload([]byte(`{}`)))
	assert.ErrorContains(t, err, "Error:")
	assert.ErrorContains(t, err, "with a message")
	assert.NotContains(t, err.Error(), "Error Trace")
	assert.NotContains(t, err.Error(), "matchers_test.go")
}
