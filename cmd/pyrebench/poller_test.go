package main

import (
	"encoding/binary"
	"testing"

	"github.com/pyre-go/pyre/cmd/pyrebench/internal/wsc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverFrame builds an unmasked server frame.
func serverFrame(fin bool, op wsc.Opcode, p []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(p); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

// TestConsumeAcrossArbitraryReads feeds a stream of frames to consume in
// every chunk size, as reads may split it, and checks that each message is
// seen once and whole.
func TestConsumeAcrossArbitraryReads(t *testing.T) {
	push := func(ts string) []byte { return []byte(`[null,null,"room:bench","msg",{"ts":` + ts + `,"seq":1}]`) }
	big := append(push("1000"), make([]byte, 5000)...)   // larger than the 512-byte buffer
	huge := append(push("1001"), make([]byte, 70000)...) // larger than maxKeptBuf
	var stream []byte
	stream = append(stream, serverFrame(true, wsc.OpText, push("1"))...)
	stream = append(stream, serverFrame(true, wsc.OpPong, []byte("p"))...)
	stream = append(stream, serverFrame(true, wsc.OpText, big)...)
	stream = append(stream, serverFrame(false, wsc.OpText, push("2")[:10])...)
	stream = append(stream, serverFrame(true, wsc.OpContinuation, push("2")[10:])...)
	stream = append(stream, serverFrame(true, wsc.OpText, push("3"))...)
	withHuge := append(stream[:len(stream):len(stream)], serverFrame(true, wsc.OpText, huge)...)

	for _, chunk := range []int{1, 2, 3, 7, 64, 511, 512, 4096, len(withHuge)} {
		stream, want := stream, int64(4)
		if chunk >= 64 { // byte by byte through 70 KB is slow under -race
			stream, want = withHuge, 5
		}
		w, err := newWorker(workerConfig{URL: "ws://127.0.0.1:1/socket/websocket", Topic: "room:bench", N: 1, Src: []string{"127.0.0.2"}, ReadBuf: 512})
		require.NoError(t, err)
		c := w.conns[0]
		c.rbuf = make([]byte, 512)
		for off := 0; off < len(stream); {
			room := len(c.rbuf) - c.rlen
			require.Positive(t, room, "chunk %d: buffer full without a complete frame", chunk)
			n := copy(c.rbuf[c.rlen:], stream[off:min(off+chunk, len(stream))])
			c.rlen += n
			off += n
			require.NoError(t, w.consume(c), "chunk %d", chunk)
		}
		assert.Equal(t, want, c.delivered.Load(), "chunk %d", chunk)
		assert.Equal(t, uint64(want), w.lat.Count(), "chunk %d", chunk)
		assert.Zero(t, c.rlen, "chunk %d: nothing left over", chunk)
		if want == 5 {
			assert.Len(t, c.rbuf, 512, "chunk %d: a buffer grown past maxKeptBuf is given back", chunk)
		} else {
			assert.GreaterOrEqual(t, len(c.rbuf), len(big), "chunk %d: a grown buffer is kept for the next big frame", chunk)
		}
		assert.Zero(t, w.other.Load())
	}
}

func TestConsumeRejectsBadFraming(t *testing.T) {
	w, err := newWorker(workerConfig{URL: "ws://127.0.0.1:1/socket/websocket", Topic: "room:bench", N: 1, Src: []string{"127.0.0.2"}, ReadBuf: 512})
	require.NoError(t, err)
	c := w.conns[0]
	c.rbuf = make([]byte, 512)
	c.rlen = copy(c.rbuf, serverFrame(true, wsc.OpContinuation, []byte("x")))
	assert.ErrorIs(t, w.consume(c), wsc.ErrProtocol)
}
