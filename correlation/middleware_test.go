package correlation_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/correlation"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	var seen string
	var seenOK bool
	h := correlation.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, seenOK = correlation.FromContext(r.Context())
		_, _ = io.WriteString(w, seen)
	}))

	for _, tc := range []struct {
		name   string
		header *string // nil: no header
		keep   bool    // whether the offered id must be kept
	}{
		{name: "absent"},
		{name: "valid", header: ptr("client-id_42"), keep: true},
		{name: "max length", header: ptr(strings.Repeat("A", 64)), keep: true},
		{name: "empty", header: ptr("")},
		{name: "too long", header: ptr(strings.Repeat("A", 65))},
		{name: "bad characters", header: ptr("evil id\r\nX-Injected: 1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.header != nil {
				req.Header.Set(correlation.Header, *tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			require.True(t, seenOK, "request context has no id")
			assert.Equal(t, seen, rec.Header().Get(correlation.Header))
			assert.Equal(t, seen, rec.Body.String())
			if tc.keep {
				assert.Equal(t, *tc.header, seen)
			} else {
				assert.Len(t, seen, correlation.DefaultLength)
				assert.True(t, isLowerHex(seen))
			}
		})
	}
}

func TestMiddlewareOverHTTP(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(correlation.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, correlation.ID(r.Context()))
	})))
	defer srv.Close()

	get := func(offered string) (header, body string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		if offered != "" {
			req.Header.Set(correlation.Header, offered)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.Header.Get(correlation.Header), string(b)
	}

	h, b := get("trace-1")
	assert.Equal(t, "trace-1", h)
	assert.Equal(t, "trace-1", b)

	h1, b1 := get("")
	h2, _ := get("")
	assert.Equal(t, h1, b1)
	assert.Len(t, h1, correlation.DefaultLength)
	assert.NotEqual(t, h1, h2, "each request without an id gets a fresh one")
	srv.Client().CloseIdleConnections()
}

func ptr[T any](v T) *T { return &v }
