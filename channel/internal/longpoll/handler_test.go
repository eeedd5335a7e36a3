package longpoll

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLongPollTokenHelpers(t *testing.T) {
	tests := []struct{ query, stripped, token string }{
		{"vsn=2.0.0&", "vsn=2.0.0&", ""},
		{"token=abc&vsn=2.0.0&", "token=abc&vsn=2.0.0&", "abc"},
		{"token=abc&vsn=2.0.0&token=T1", "token=abc&vsn=2.0.0", "T1"},
		{"vsn=2.0.0&token=T%2B1&x=1", "vsn=2.0.0&x=1", "T+1"},
		{"a=1&token=abc", "a=1&token=abc", "abc"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.stripped, stripSessionToken(tt.query), tt.query)
		r := httptest.NewRequest(http.MethodGet, "/socket/longpoll?"+tt.query, nil)
		assert.Equal(t, tt.token, lpRequestToken(r), tt.query)
	}
	r := httptest.NewRequest(http.MethodGet, "/socket/longpoll?token=q", nil)
	r.Header.Set("X-Phoenix-Longpoll-Token", "h")
	assert.Equal(t, "h", lpRequestToken(r))

	assert.Equal(t, [][]byte{[]byte("a"), []byte("b"), []byte("")}, splitLPBody([]byte("a\r\nb\n"), "application/x-ndjson"))
	assert.Equal(t, [][]byte{[]byte("a\nb")}, splitLPBody([]byte("a\nb"), "text/plain"))
	assert.Equal(t, [][]byte{[]byte("a\nb")}, splitLPBody([]byte("a\nb"), ""))
	assert.Len(t, splitLPBody([]byte(strings.Repeat("x\n", 150)), "application/x-ndjson; charset=utf-8"), lpMaxLines)
}

func TestLongPollClientKeyDefaults(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:4000":              "192.0.2.7",
		"[::ffff:192.0.2.7]:4000":     "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:4000": "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9]:5000": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:4000":      "2001:db8:1:3::/64",
		"[fe80::1%eth0]:4000":         "fe80::/64",
		"@":                           "@", // a unix socket
		"not an address":              "not an address",
	} {
		assert.Equal(t, want, clientAddrKey(addr), addr)
	}
}
