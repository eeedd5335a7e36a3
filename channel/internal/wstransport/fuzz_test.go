package wstransport

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
)

// nopPeer takes messages and forgets them.
type nopPeer struct{}

func (nopPeer) Deliver(bool, []byte)     {}
func (nopPeer) Disconnect(int, string)   {}
func (nopPeer) SlowConsumer()            {}
func (nopPeer) Finish()                  {}
func (nopPeer) Context() context.Context { return context.Background() }
func (nopPeer) Logger() *slog.Logger     { return slog.New(slog.DiscardHandler) }

// FuzzReader feeds the frame reader an arbitrary client byte stream (on a
// compressed connection, with small bounds): it must neither panic nor
// hang, and ends when the stream does.
func FuzzReader(f *testing.F) {
	f.Add(append(frame(0x81, []byte("hello")), frame(0x89, []byte("p"))...))
	f.Add(append(frame(0x01, []byte("frag")), frame(0x80, []byte("ment"))...))
	f.Add(frame(0xC1, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}))
	f.Add(frame(0x88, []byte{0x03, 0xE8, 'o', 'k'}))
	f.Add([]byte{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		var wg sync.WaitGroup
		srv := NewServer(&Config{MaxFrameSize: 8 << 10, MaxInflatedSize: 16 << 10, MaxInflateRate: 1 << 40, Group: &wg})
		server, client := net.Pipe()
		var c Conn
		c.Init(srv, nopPeer{})
		c.nc, c.up, c.deflate = &sock{Conn: server, owner: &c, fd: -1}, true, true
		c.inf = &inflateState{credit: 16 << 10}
		go func() {
			_, _ = client.Write(stream)
			_ = client.Close()
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }() // the server's pongs and close frames
		for c.burst(true) {
		}
		c.dropBuf(true)
		_ = server.Close()
	})
}
