package benchserver_test

import (
	"fmt"

	"github.com/pyre-go/pyre/cmd/pyre-bench-server/benchserver"
)

// The benchmark payload: exactly size bytes, with the send time in ts.
func ExampleAppendPayload() {
	b := benchserver.AppendPayload(nil, 1764000000123456789, 7, 64)
	fmt.Println(len(b))
	fmt.Println(string(b))
	// Output:
	// 64
	// {"ts":1764000000123456789,"seq":7,"pad":"xxxxxxxxxxxxxxxxxxxxx"}
}
