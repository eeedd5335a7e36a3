// Package wstransport is pyre's WebSocket transport: the upgrade, the
// per-connection outbound queue and the shared write pool, the reader that
// hands each inbound message to its Peer, the inflation bounds of
// permessage-deflate, and the idle sweeper.
//
// It knows nothing of package channel. The core implements Peer for each
// connection (decoding messages, closing the connection, finishing its
// channels), fills Config from its Options, encodes outbound messages into
// complete frames (FinishFrame, Compress) once per broadcast, and queues
// them with Conn.Queue. The Phoenix handshake rules (origin, auth token,
// vsn, Connect) stay in the core; AuthToken and AcceptableSubprotocols
// parse the WebSocket headers they read.
//
// # Why we reach under coder/websocket
//
// coder/websocket does the handshake, reads and parses inbound frames,
// inflates compressed messages and writes control frames (pong, close).
// pyre goes around it in four places, each for a reason measured or
// required by the protocol, and each relying on a behaviour of
// coder/websocket that upstream_test.go pins (the module version is pinned
// in go.mod for the same reason):
//
//   - Outbound data frames bypass it. A broadcast is framed once
//     (FinishFrame) and the same bytes are queued for every subscriber;
//     the write pool gathers a connection's queue into one socket write,
//     made with a raw non-blocking write(2) on Linux (rawwrite_linux.go,
//     hijackedConn.writeNoBlock says what that saves). coder/websocket
//     would copy and frame each message per connection, under a per-
//     connection writer. This relies on Accept hijacking through the
//     ResponseWriter we pass (hijackWriter), so that coder/websocket writes
//     through our hijackedConn, and on each of its control frames reaching
//     that connection in one Write call (our 128-byte write buffer is
//     larger than any control frame), so that frames never interleave.
//
//   - Close frames are recognised by byte pattern and rewritten
//     (hijackedConn.Write). coder/websocket echoes the client's close code;
//     Phoenix's server (Bandit) answers by RFC 6455 7.4 instead (1000 for
//     a valid code, 1002 otherwise; 1007 for a reason that is not UTF-8,
//     see closeAnswer), and phoenix.js clients see the difference. The
//     inbound frame scanner (frameScanner) follows the frame headers of
//     the byte stream as it is read, to decide the answer before
//     coder/websocket writes its echo. This relies on that echo being one
//     Write of one whole close frame.
//
//   - The read buffer is ours and is inspected. Hijack hands
//     coder/websocket a 256-byte bufio.Reader (net/http's is 4 KiB, most
//     of an idle connection's memory), Upgrade resets it to read the
//     socket directly (coder/websocket wraps it in an io.MultiReader that
//     would stay allocated), and the reader looks into it: whether input
//     is buffered decides whether the long-lived goroutine waits for the
//     socket or hands a burst to a worker (readLoop), and the RSV1 bit of
//     the next buffered frame decides the read limit (beforeInflate). This
//     relies on coder/websocket reading through the bufio.Reader that
//     Hijack returned.
//
//   - The read limit bounds inflation. coder/websocket's SetReadLimit
//     counts inflated bytes for a compressed message and is read when a
//     message starts, so setting MaxInflatedSize before a compressed
//     message stops a small compressed message from inflating to
//     megabytes (it closes the connection with 1009).
//
// A coder/websocket upgrade that changes any of these fails a test of
// upstream_test.go named after the assumption; Upgrade also refuses a
// connection that was not hijacked through hijackWriter rather than run
// it half-wired.
package wstransport
