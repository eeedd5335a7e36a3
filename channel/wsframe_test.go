package channel

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEncodeWSIsOneCompleteFrame(t *testing.T) {
	b, bin, err := V2.encodeWS(&frame{kind: kindBroadcast, topic: "t", event: "e", payload: []byte(`{}`)})
	assert.NoError(t, err)
	assert.False(t, bin)
	assert.Equal(t, append([]byte{0x81, 22}, `[null,null,"t","e",{}]`...), b)
}
