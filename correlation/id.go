package correlation

import (
	"crypto/rand"
	"encoding/hex"
)

// Header is the HTTP header that carries a correlation id, in both requests
// (an id offered by the client) and responses (the id the server used).
const Header = "X-Correlation-ID"

// DefaultLength is the number of hex characters in an id made by [New].
const DefaultLength = 16

// MaxLength is the longest id [NewN] makes and [Valid] accepts.
const MaxLength = 64

// New returns a fresh id of [DefaultLength] lowercase hex characters read
// from crypto/rand.
func New() string {
	return NewN(DefaultLength)
}

// NewN returns a fresh id of n lowercase hex characters read from
// crypto/rand. An n of zero or less means [DefaultLength]; an n above
// [MaxLength] is capped at MaxLength. Odd lengths are allowed.
func NewN(n int) string {
	if n <= 0 {
		n = DefaultLength
	}
	if n > MaxLength {
		n = MaxLength
	}
	var raw [MaxLength / 2]byte
	var out [MaxLength]byte
	nb := (n + 1) / 2
	// crypto/rand.Read never returns an error (it crashes the program
	// instead if the system's randomness source fails).
	_, _ = rand.Read(raw[:nb])
	hex.Encode(out[:], raw[:nb])
	return string(out[:n])
}

// Valid reports whether id is acceptable as a client-offered correlation id:
// 1 to [MaxLength] characters, each an ASCII letter, digit, '_' or '-'.
// Ids made by [New] and [NewN] are always valid. Anything else (empty, too
// long, spaces, control characters, other punctuation) is rejected so that a
// client cannot inject text into logs.
func Valid(id string) bool {
	if len(id) == 0 || len(id) > MaxLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
