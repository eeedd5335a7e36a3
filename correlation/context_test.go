package correlation_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pyre-go/pyre/correlation"
)

func TestContext(t *testing.T) {
	t.Parallel()

	id, ok := correlation.FromContext(context.Background())
	assert.False(t, ok)
	assert.Empty(t, id)
	assert.Empty(t, correlation.ID(context.Background()))

	ctx := correlation.WithID(context.Background(), "abc123")
	id, ok = correlation.FromContext(ctx)
	assert.True(t, ok)
	assert.Equal(t, "abc123", id)
	assert.Equal(t, "abc123", correlation.ID(ctx))

	// The innermost id wins.
	inner := correlation.WithID(ctx, "def456")
	assert.Equal(t, "def456", correlation.ID(inner))
	assert.Equal(t, "abc123", correlation.ID(ctx))

	// An empty id counts as absent.
	_, ok = correlation.FromContext(correlation.WithID(ctx, ""))
	assert.False(t, ok)

	// A string stored under some other key is not an id.
	type otherKey struct{}
	_, ok = correlation.FromContext(context.WithValue(context.Background(), otherKey{}, "x"))
	assert.False(t, ok)
}
