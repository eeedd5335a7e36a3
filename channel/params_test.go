package channel

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDecodeParamsPlugStyle(t *testing.T) {
	got := decodeParams("token=abc&user%5Bid%5D=7&user%5Btags%5D%5B0%5D=x&user%5Btags%5D%5B1%5D=y&empty=&&a%5B%5D=1&a%5B%5D=2&k=1&k=2&vsn=2.0.0")
	assert.Equal(t, map[string]any{
		"token": "abc",
		"user":  map[string]any{"id": "7", "tags": map[string]any{"0": "x", "1": "y"}},
		"empty": "",
		"a":     []any{"1", "2"},
		"k":     "2",
		"vsn":   "2.0.0",
	}, got)
}

func TestNegotiateSerializer(t *testing.T) {
	tests := map[string]struct {
		params map[string]any
		want   Serializer
		ok     bool
	}{
		"absent":       {map[string]any{}, V1, true},
		"1.0.0":        {map[string]any{"vsn": "1.0.0"}, V1, true},
		"1.0.7":        {map[string]any{"vsn": "1.0.7"}, V1, true},
		"2.0.0":        {map[string]any{"vsn": "2.0.0"}, V2, true},
		"2.0.1+build":  {map[string]any{"vsn": "2.0.1+b"}, V2, true},
		"2.1.0":        {map[string]any{"vsn": "2.1.0"}, 0, false},
		"3.0.0":        {map[string]any{"vsn": "3.0.0"}, 0, false},
		"abc":          {map[string]any{"vsn": "abc"}, 0, false},
		"2":            {map[string]any{"vsn": "2"}, 0, false},
		"2.0.0-rc":     {map[string]any{"vsn": "2.0.0-rc"}, 0, false},
		"leading zero": {map[string]any{"vsn": "02.0.0"}, 0, false},
		"list":         {map[string]any{"vsn": []any{"x"}}, 0, false},
	}
	for name, tt := range tests {
		got, ok := negotiateSerializer(tt.params)
		assert.Equal(t, tt.ok, ok, name)
		assert.Equal(t, tt.want, got, name)
	}
}

func TestOriginChecker(t *testing.T) {
	oc := newOriginChecker([]string{"https://example.com", "//another.com:888", "//*.other.com", "http://localhost:5173"}, false)
	tests := map[string]bool{
		"":                        true, // non-browser clients
		"https://example.com":     true,
		"http://example.com":      false,
		"https://another.com:888": true,
		"http://another.com:888":  true,
		"http://another.com":      false,
		"https://other.com":       true,
		"https://a.b.other.com":   true,
		"https://notother.com":    false,
		"http://localhost:5173":   true,
		"http://localhost:5174":   false,
		"http://evil.example":     false,
		"null":                    false,
		"http://server.test:4000": false, // the request's own origin: only the list counts
		"https://SERVER.test":     false,
	}
	for origin, want := range tests {
		r := httptest.NewRequest("GET", "http://server.test:4000/socket/websocket", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		assert.Equal(t, want, oc.allow(r, false), origin)
	}
	bad := newOriginChecker([]string{"https://", " "}, false)
	r0 := httptest.NewRequest("GET", "http://server.test:4000/socket/websocket", nil)
	r0.Header.Set("Origin", "http://server.test:4000")
	assert.False(t, bad.allow(r0, false), "a list of entries without a host allows no origin")
	assert.True(t, newOriginChecker([]string{" "}, false).allow(r0, false), "a blank list is no list")
	any := newOriginChecker([]string{"*"}, false)
	r := httptest.NewRequest("GET", "http://server.test/", nil)
	r.Header.Set("Origin", "http://evil.example")
	assert.True(t, any.allow(r, false))
}
