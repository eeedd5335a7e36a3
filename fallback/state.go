package fallback

import "fmt"

// State is the state of a [Breaker].
type State int

const (
	// Closed is the normal state: every call runs the primary.
	Closed State = iota
	// Open means the service is considered down: calls go straight to the
	// fallback with ErrOpen.
	Open
	// HalfOpen means the cool-down has passed and a limited number of probe
	// calls run the primary to find out whether the service is back.
	HalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	default:
		return fmt.Sprintf("State(%d)", int(s))
	}
}

// MarshalText encodes the state as its String, so dashboards get
// {"obs":"open"} from encoding/json.
func (s State) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}
