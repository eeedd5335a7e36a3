package ratelimit_test

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Importing channel alone must not compile golang.org/x/time: only
// programs that import this package pay for it.
func TestChannelDoesNotDependOnXTime(t *testing.T) {
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command runs this test and must be on PATH")
	out, err := exec.Command(gobin, "list", "-deps", "github.com/pyre-go/pyre/channel").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "github.com/pyre-go/pyre/channel\n")
	assert.NotContains(t, string(out), "golang.org/x/time")
}
