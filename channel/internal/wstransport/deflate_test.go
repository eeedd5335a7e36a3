package wstransport

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeflateFrameRoundTrip(t *testing.T) {
	payload := []byte(`[null,null,"room:a","x",{"p":"` + strings.Repeat("abc", 1000) + `"}]`)
	plain := FinishFrame(append(make([]byte, MaxHeader), payload...), false)
	out, err := Compress(plain, false)
	require.NoError(t, err)
	assert.Equal(t, byte(0xC1), out[0], "FIN + RSV1 + text")
	n := payloadLen(out)
	body := out[headerLen(n):]
	assert.Len(t, body, n)
	assert.Less(t, n, len(payload)/10, "compressed")
	r := flate.NewReader(io.MultiReader(bytes.NewReader(body), bytes.NewReader(deflateTail)))
	got, err := io.ReadAll(r)
	if err != io.ErrUnexpectedEOF { // a sync-flushed stream has no final block
		require.NoError(t, err)
	}
	assert.Equal(t, payload, got)

	// Incompressible payloads stay as they were.
	noise := make([]byte, 512)
	_, _ = rand.Read(noise)
	rnd := append([]byte{0x82, 0x7e, 0x02, 0x00}, noise...)
	same, err := Compress(rnd, true)
	require.NoError(t, err)
	assert.Equal(t, rnd, same)
}
