package correlation_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/correlation"
)

func isLowerHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func TestNew(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 1000 {
		id := correlation.New()
		require.Len(t, id, correlation.DefaultLength)
		require.True(t, isLowerHex(id), "id %q is not lowercase hex", id)
		require.True(t, correlation.Valid(id))
		require.False(t, seen[id], "duplicate id %q", id)
		seen[id] = true
	}
}

func TestNewN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n, want int
	}{
		{-5, correlation.DefaultLength},
		{0, correlation.DefaultLength},
		{1, 1},
		{7, 7},
		{8, 8},
		{33, 33},
		{63, 63},
		{64, 64},
		{65, 64},
		{1 << 20, 64},
	} {
		id := correlation.NewN(tc.n)
		assert.Len(t, id, tc.want, "NewN(%d)", tc.n)
		assert.True(t, isLowerHex(id), "NewN(%d) = %q is not lowercase hex", tc.n, id)
		assert.True(t, correlation.Valid(id), "NewN(%d) = %q is not Valid", tc.n, id)
	}
}

func TestNewNUsesEveryHexDigit(t *testing.T) {
	t.Parallel()
	// Guards against an encoding bug that would only ever produce part of the
	// alphabet (e.g. decimal digits); 64*100 random nibbles cover all 16
	// digits with overwhelming probability.
	var sb strings.Builder
	for range 100 {
		sb.WriteString(correlation.NewN(64))
	}
	for _, c := range "0123456789abcdef" {
		assert.Contains(t, sb.String(), string(c))
	}
}

func TestValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"a1b2c3d4", true},
		{"ABC-def_123", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"has space", false},
		{"new\nline", false},
		{"quote\"", false},
		{"dot.dot", false},
		{"slash/", false},
		{"ümlaut", false},
		{"tab\t", false},
		{"nul\x00", false},
	} {
		assert.Equal(t, tc.want, correlation.Valid(tc.id), "Valid(%q)", tc.id)
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = correlation.New()
	}
}

func BenchmarkNewN8(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = correlation.NewN(8)
	}
}
