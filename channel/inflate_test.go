package channel

import (
	"bytes"
	"compress/flate"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const offerDeflate = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

// deflateMessage compresses a message as permessage-deflate does (RFC
// 7692: a sync flush without its 00 00 ff ff tail).
func deflateMessage(t *testing.T, msg []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	require.NoError(t, err)
	_, err = w.Write(msg)
	require.NoError(t, err)
	require.NoError(t, w.Flush())
	return bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// heartbeat returns a heartbeat message padded to about n bytes.
func heartbeat(ref string, n int) []byte {
	return []byte(`[null,"` + ref + `","phoenix","heartbeat",{"pad":"` + strings.Repeat("a", max(n-50, 0)) + `"}]`)
}

// A small compressed frame that inflates past MaxInflatedSize (here a 10 KB
// frame inflating to 9.9 MB, under MaxFrameSize) closes the connection with
// 1009 and never reaches the channel core; the same size uncompressed on
// the same connection is bounded by MaxFrameSize only.
func TestCompressedMessageInflatingPastBoundCloses1009(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), Compression: true})
	c := e.dialRaw(t, "vsn=2.0.0", offerDeflate)
	require.Contains(t, c.extensions, "permessage-deflate")

	c.writeFrame(0x81, heartbeat("1", 1<<20+64<<10)) // over MaxInflatedSize, uncompressed: fine
	assert.Equal(t, `[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`, c.readText())
	small := deflateMessage(t, heartbeat("2", 1000))
	c.writeFrame(0xC1, small) // compressed and small: fine
	assert.Equal(t, `[null,"2","phoenix","phx_reply",{"response":{},"status":"ok"}]`, c.readText())

	bomb := deflateMessage(t, heartbeat("3", 9_900_000))
	require.Less(t, len(bomb), 12_000)
	c.writeFrame(0xC1, bomb)
	assert.Equal(t, CloseTooBig, c.closeCode(), "no heartbeat reply: the message was cut at MaxInflatedSize")
	assert.Equal(t, int64(1<<20), e.srv.opts.MaxInflatedSize)
}

// A bound set by Options applies, and the 1009 comes at once when a
// fragmented compressed message passes it.
func TestMaxInflatedSizeOptionAndFragments(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), Compression: true, MaxInflatedSize: 64 << 10})
	c := e.dialRaw(t, "vsn=2.0.0", offerDeflate)
	ok := deflateMessage(t, heartbeat("1", 60<<10))
	c.writeFrame(0xC1, ok)
	assert.Equal(t, `[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`, c.readText())
	big := deflateMessage(t, heartbeat("2", 70<<10))
	half := len(big) / 2
	c.writeFrame(0x41, big[:half]) // first fragment, RSV1, not final
	c.writeFrame(0x80, big[half:]) // final continuation
	assert.Equal(t, CloseTooBig, c.closeCode())
}

// Invalid UTF-8 is found after inflation too.
func TestCompressedInvalidUTF8Closes1007(t *testing.T) {
	e := newTestEndpoint(t, &Options{Router: roomRouter(nil), Compression: true})
	c := e.dialRaw(t, "vsn=2.0.0", offerDeflate)
	c.writeFrame(0xC1, deflateMessage(t, []byte("[\"1\",\"1\",\"room:\xff\",\"phx_join\",{}]")))
	assert.Equal(t, CloseInvalidPayload, c.closeCode())
	assert.Equal(t, uint64(1), e.srv.Stats().Malformed)
}

// fakeTime is the clock of the inflate rate bound: it moves only when the
// server pauses, by the pause.
type fakeTime struct {
	mu     sync.Mutex
	now    int64
	pauses []time.Duration
}

func (f *fakeTime) clock() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) pause(_ context.Context, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pauses = append(f.pauses, d)
	f.now += int64(d)
}

func (f *fakeTime) taken() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.pauses...)
}

// A connection inflating faster than MaxInflateRate has its reads paused
// until the bucket (MaxInflatedSize deep) refills, and is not closed. With
// 64 KiB of burst and 16 KiB/s, two 40 000-byte messages put it 14 464
// bytes in debt, so the next read waits 14 464 / 16 384 s; the third
// message puts it 40 000 bytes in debt again, so the fourth read waits
// 40 000 / 16 384 s. Uncompressed messages cost nothing: the fifth read
// does not wait.
func TestInflateRatePausesReads(t *testing.T) {
	ft := &fakeTime{}
	srv := NewServer(&Options{Router: roomRouter(nil), Compression: true, MaxInflatedSize: 64 << 10, MaxInflateRate: 16 << 10})
	srv.ws.SetClock(ft.clock, ft.pause)
	e := serveTestEndpoint(t, srv)
	c := e.dialRaw(t, "vsn=2.0.0", offerDeflate)

	for _, ref := range []string{"1", "2", "3"} {
		head := `[null,"` + ref + `","phoenix","heartbeat",{"pad":"`
		msg := []byte(head + strings.Repeat("a", 40_000-len(head)-3) + `"}]`)
		c.writeFrame(0xC1, deflateMessage(t, msg))
		assert.Equal(t, `[null,"`+ref+`","phoenix","phx_reply",{"response":{},"status":"ok"}]`, c.readText())
	}
	c.writeFrame(0x81, heartbeat("4", 100<<10))
	assert.Equal(t, `[null,"4","phoenix","phx_reply",{"response":{},"status":"ok"}]`, c.readText())
	c.writeFrame(0xC1, deflateMessage(t, heartbeat("5", 100)))
	assert.Equal(t, `[null,"5","phoenix","phx_reply",{"response":{},"status":"ok"}]`, c.readText())
	wait := func(debt int) time.Duration { return time.Duration(float64(debt) / float64(16<<10) * 1e9) }
	assert.Equal(t, []time.Duration{wait(2*40_000 - 64<<10), wait(40_000)}, ft.taken())
}
