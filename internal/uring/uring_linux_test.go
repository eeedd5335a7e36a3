//go:build linux

package uring

import (
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRing(t *testing.T, n uint32) *Ring {
	t.Helper()
	r, err := New(n)
	if err != nil {
		t.Skipf("io_uring unavailable here: %v", err) // CI's kernel has it: see TestRingAvailableInCI
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestRingAvailableInCI keeps the skips above honest: where CI runs, the
// ring path must be the one tested.
func TestRingAvailableInCI(t *testing.T) {
	if _, ci := syscall.Getenv("CI"); !ci {
		t.Skip("only under CI=true")
	}
	r, err := New(8)
	require.NoError(t, err)
	require.NoError(t, r.Close())
}

func TestNewRejectsBadSizes(t *testing.T) {
	for _, n := range []uint32{0, 3, 8192} {
		_, err := New(n)
		require.Error(t, err, "entries %d", n)
	}
}

func TestSendsReachTheirSockets(t *testing.T) {
	fds, peers := pairs(t, 5)
	r := newRing(t, 4) // fewer entries than sockets: Send reports a full batch
	msgs := [][]byte{[]byte("zero"), []byte("one"), []byte("two!"), []byte("three"), []byte("four")}
	got := map[uint64]int32{}
	done := func(tag uint64, res int32) { got[tag] = res }
	for i := range 4 {
		require.True(t, r.Send(fds[i], msgs[i], uint64(i)))
	}
	require.False(t, r.Send(fds[4], msgs[4], 4))
	require.NoError(t, r.Submit(done))
	require.True(t, r.Send(fds[4], msgs[4], 4))
	require.NoError(t, r.Submit(done))
	require.NoError(t, r.Submit(done), "an empty batch is a no-op")
	for i, m := range msgs {
		require.Equal(t, int32(len(m)), got[uint64(i)])
		b := make([]byte, len(m))
		_, err := io.ReadFull(peers[i], b)
		require.NoError(t, err)
		require.Equal(t, m, b)
	}
}

func TestFullSocketReportsAShortSendThenEAGAIN(t *testing.T) {
	fds, _ := pairs(t, 1)
	require.NoError(t, syscall.SetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096))
	r := newRing(t, 2)
	big := make([]byte, 8<<20) // more than the socket and its peer's buffer hold
	var res int32
	done := func(_ uint64, v int32) { res = v }
	require.True(t, r.Send(fds[0], big, 1))
	require.NoError(t, r.Submit(done))
	require.Greater(t, res, int32(0))
	require.Less(t, res, int32(len(big)), "a non-blocking send stops where the socket is full")
	// The peer's buffers may still grow (autotuning) and take a little
	// more; once they stop, the send takes nothing and does not wait.
	for i := 0; res != -int32(syscall.EAGAIN); i++ {
		require.Less(t, i, 1000, "never EAGAIN: last result %d", res)
		require.GreaterOrEqual(t, res, int32(0))
		require.True(t, r.Send(fds[0], big, 1))
		require.NoError(t, r.Submit(done))
	}
}

func TestClosedDescriptorFailsItsSendOnly(t *testing.T) {
	fds, peers := pairs(t, 1)
	r := newRing(t, 2)
	got := map[uint64]int32{}
	require.True(t, r.Send(1<<20, []byte("x"), 7)) // no such descriptor
	require.True(t, r.Send(fds[0], []byte("ok"), 8))
	require.NoError(t, r.Submit(func(tag uint64, res int32) { got[tag] = res }))
	require.Equal(t, -int32(syscall.EBADF), got[7])
	require.Equal(t, int32(2), got[8])
	b := make([]byte, 2)
	_, err := io.ReadFull(peers[0], b)
	require.NoError(t, err)
	require.Equal(t, "ok", string(b))
}

func TestRecvReadsWhatIsQueuedAndDoesNotWait(t *testing.T) {
	fds, peers := pairs(t, 2)
	r := newRing(t, 4)
	_, err := peers[0].Write([]byte("hello"))
	require.NoError(t, err)
	// The bytes are on the loopback socket once the peer's write returned;
	// fds[1] has nothing queued.
	bufs := [][]byte{make([]byte, 64), make([]byte, 64)}
	got := map[uint64]int32{}
	for i, fd := range fds {
		require.True(t, r.Recv(fd, bufs[i], uint64(i)))
	}
	require.NoError(t, r.Submit(func(tag uint64, res int32) { got[tag] = res }))
	require.Equal(t, int32(5), got[0])
	require.Equal(t, "hello", string(bufs[0][:5]))
	require.Equal(t, -int32(syscall.EAGAIN), got[1], "an empty socket does not make Submit wait")

	require.NoError(t, peers[1].Close())
	require.True(t, r.Recv(fds[1], bufs[1], 1))
	require.NoError(t, r.Submit(func(tag uint64, res int32) { got[tag] = res }))
	require.Equal(t, int32(0), got[1], "end of stream")
}

func TestRecvMsgDeliversControlMessages(t *testing.T) {
	fds, peers := pairs(t, 1)
	require.NoError(t, syscall.SetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1))
	r := newRing(t, 2)
	buf := make([]byte, 64)
	oob := make([]byte, 64)
	iov := syscall.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	msg := &syscall.Msghdr{Iov: &iov, Iovlen: 1, Control: &oob[0]}
	// The kernel switches receive stamps on in deferred work: segments
	// queued before that carry none, so this writes until one does.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := peers[0].Write([]byte("stamped"))
		require.NoError(t, err)
		msg.SetControllen(len(oob))
		var res int32
		require.True(t, r.RecvMsg(fds[0], msg, 9))
		require.NoError(t, r.Submit(func(_ uint64, v int32) { res = v }))
		require.Equal(t, int32(7), res)
		require.Equal(t, "stamped", string(buf[:7]))
		cms, err := syscall.ParseSocketControlMessage(oob[:msg.Controllen])
		require.NoError(t, err)
		if len(cms) == 1 {
			require.Equal(t, int32(syscall.SCM_TIMESTAMPNS), cms[0].Header.Type)
			return
		}
		require.True(t, time.Now().Before(deadline), "no receive stamp within 10 s")
		time.Sleep(time.Millisecond) // the kernel's deferred work, not a signal this test can await
	}
}
