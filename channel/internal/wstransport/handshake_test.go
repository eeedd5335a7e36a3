package wstransport

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAuthToken(t *testing.T) {
	h := httptest.NewRequest("GET", "/", nil).Header
	h.Set("Sec-WebSocket-Protocol", "phoenix, base64url.bearer.phx.czNjcmV0Ky89Pw")
	assert.Equal(t, "s3cret+/=?", AuthToken(h))
	h.Set("Sec-WebSocket-Protocol", "phoenix,base64url.bearer.phx.czNjcmV0Ky89Pw==")
	assert.Equal(t, "s3cret+/=?", AuthToken(h), "padding tolerated")
	h.Set("Sec-WebSocket-Protocol", "phoenix")
	assert.Equal(t, "", AuthToken(h))
	h.Set("Sec-WebSocket-Protocol", "base64url.bearer.phx.YQ,base64url.bearer.phx.Yg")
	assert.Equal(t, "", AuthToken(h), "two tokens: none")
}
