//go:build !unix

package channel

import "errors"

// rawWrites: elsewhere (Windows) connections are written by a goroutine of
// their own, through net.Conn.
const rawWrites = false

func rawWrite(int, []byte) (int, error) {
	return 0, errors.New("channel: raw socket writes need a Unix system")
}
