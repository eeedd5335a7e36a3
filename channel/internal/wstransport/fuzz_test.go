package wstransport

import "testing"

// FuzzFrameScanner feeds the close-frame scanner a byte stream in two
// splits: it must not panic, and how the stream is split must not change
// its answer.
func FuzzFrameScanner(f *testing.F) {
	f.Add([]byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2}, uint8(3))
	f.Add([]byte{0x81, 0x80 | 126, 0x01, 0x00, 1, 2, 3, 4, 0x88, 0x80, 0, 0, 0, 0}, uint8(1))
	f.Add([]byte{0x88, 0x83, 0, 0, 0, 0, 0x03, 0xE8, 0xFF}, uint8(0))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		var whole, split frameScanner
		whole.feed(stream)
		step := int(chunk) + 1
		for i := 0; i < len(stream); i += step {
			split.feed(stream[i:min(i+step, len(stream))])
		}
		if a, b := whole.answer.Load(), split.answer.Load(); a != b {
			t.Fatalf("answer %d whole, %d in chunks of %d", a, b, step)
		}
	})
}
