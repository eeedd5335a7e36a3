package channeltest_test

import (
	"strings"
	"testing"

	"github.com/pyre-go/pyre/channel/channeltest"
)

// The join bounds are applied by the channel core, so channeltest's
// in-process transport gets them too (at their defaults here: 1024-byte
// topics, 64 KiB join params).
func TestJoinBoundsApplyInProcess(t *testing.T) {
	ep := channeltest.New(t, newRouter(nil), nil)
	client := ep.Client(nil)
	client.AssertJoinError("room:"+strings.Repeat("z", 1020), map[string]any{"token": "secret"}, channeltest.JSON(`{"reason":"topic too long"}`))
	client.AssertJoinError("room:a", map[string]any{"token": "secret", "p": strings.Repeat("z", 64<<10)}, channeltest.JSON(`{"reason":"join params too large"}`))
	client.Join("room:"+strings.Repeat("z", 1019), map[string]any{"token": "secret"})
}
