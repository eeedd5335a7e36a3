// Package wstransport is pyre's WebSocket transport (RFC 6455, with
// permessage-deflate of RFC 7692): the upgrade, the frame reader that
// hands each inbound message to its Peer, the per-connection outbound
// queue and the shared write pool, the close handshake, the inflation
// bounds of permessage-deflate, the idle sweeper and, on Linux, the poller
// that watches idle connections.
//
// It knows nothing of package channel. The core implements Peer for each
// connection (decoding messages, closing the connection, finishing its
// channels), fills Config from its Options, encodes outbound messages into
// complete frames (FinishFrame, Compress) once per broadcast, and queues
// them with Conn.Queue. The Phoenix handshake rules (origin, auth token,
// vsn, Connect) stay in the core; AuthToken and AcceptableSubprotocols
// parse the WebSocket headers they read.
//
// # What an idle connection costs
//
// Most of a server's connections are idle most of the time (a Phoenix
// client sends a heartbeat every 30 s), so an idle connection holds as
// little as the transport can manage: no goroutine and no buffer.
//
//   - No goroutine (Linux). The server's poller (poll_linux.go) watches
//     the sockets of idle connections with one epoll set, level-triggered
//     and one-shot; the epoll descriptor is itself waited on through the
//     runtime's network poller, so the poller's one goroutine holds no
//     thread. When a socket becomes readable a goroutine is started that
//     reads and handles what arrived, re-arms the socket and ends: a
//     heartbeat costs one wake-up and one goroutine start, and a goroutine
//     that grew its stack handling a join gives it back when it ends.
//     Elsewhere, and for connections that are not plain sockets (TLS), a
//     goroutine per connection waits for input on a minimal stack and hands
//     each burst to a short-lived worker (Conn.readLoop).
//
//   - No buffer. The reader takes its read buffer from a pool when input
//     arrives and gives it back once the input is consumed (read.go); the
//     net/http buffers of the upgrade request are dropped with the
//     hijack, and outbound frames are queued by reference to the
//     broadcast's shared bytes.
//
// The WebSocket protocol is implemented here rather than through a
// WebSocket library because a library connection keeps its own buffered
// reader and writer, locks and state per connection, and reads on a
// goroutine that blocks in its Read: per idle connection, that was more
// than all of pyre's own state.
//
// # Frames
//
// Outbound data frames are framed once per broadcast (FinishFrame) and the
// same bytes queued for every subscriber; the write pool gathers a
// connection's queue into one socket write, made with a raw non-blocking
// write(2) on Linux (rawwrite_linux.go; sock.beginNoBlock says what that
// saves), or, where the kernel allows io_uring (the default; Config.NoRing
// turns it off), as one of up to 32 non-blocking sends submitted with one
// system call (ringwrite.go; internal/uring). Control frames (pong, close) are written in one Write each under
// the same lock, so frames never interleave.
//
// Inbound frames are checked as RFC 6455 requires of a server (masked,
// known opcodes, no reserved bits but RSV1 on the first frame of a
// compressed message, whole and short control frames, continuations only
// inside a message); a violation is answered with a 1002 close frame. A
// message is bounded by MaxFrameSize, a compressed one by its inflated
// size (MaxInflatedSize), past which the answer is 1009, and the inflated
// bytes are charged to a token bucket refilled at MaxInflateRate (see
// inflate.go). Text messages are not checked for UTF-8 here: the core's
// decoding does that (and answers 1007).
//
// A client's close frame is answered as Bandit (Phoenix's default server)
// answers it, by RFC 6455 7.4 rather than by echoing its code (see
// closeAnswer), and phoenix.js clients see the difference. The server's
// own close frame (Conn.Close) is followed by the client's answer, or by
// closing the socket closeTimeout later.
package wstransport
