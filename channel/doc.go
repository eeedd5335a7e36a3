// Package channel is a Phoenix Channels server for net/http: the socket
// endpoint, the topic router, the Channel interface and the embeddable Base
// with Landale-style hooks. The official phoenix.js client (1.8.x) talks to
// it unmodified.
//
// # Anatomy
//
// A Server is an http.Handler. Mount it at any prefix; the WebSocket
// transport answers at <prefix>/websocket:
//
//	r := channel.NewRouter()
//	r.Handle("room:*", func() channel.Channel { return &Room{} })
//	srv := channel.NewServer(&channel.Options{Router: r})
//	mux.Handle("/socket/", srv) // new Socket("/socket") in phoenix.js
//
// The Router maps topics to channel factories, first match wins; a factory
// makes one Channel value per join. The channel's Join, HandleIn, HandleOut,
// HandleInfo and Terminate run one at a time on the channel's mailbox (see
// Channel), while Socket.Push, Socket.Reply and the broadcasts may be called
// from any goroutine.
//
// # Protocol
//
// The WebSocket transport is always on; the LongPoll transport (phoenix.js's
// LongPoll and its longPollFallbackMs fallback) is enabled with
// Options.LongPoll, whose doc describes its sessions, bounds and routing
// between nodes. Both serializers are supported: V2 (JSON arrays plus binary frames, what
// phoenix.js speaks; vsn=2.0.0) and V1 (JSON objects; vsn absent or 1.0.x).
// Another vsn is refused with HTTP 403, like Phoenix. Browsers are let in
// by Options.AllowedOrigins (Phoenix's check_origin list, checked alone),
// by default only from the request's own origin, which does not hold
// against DNS rebinding: servers on loopback or a LAN should set a list.
// LongPoll sessions are capped per node (LongPollOptions.MaxSessions,
// 10 000) and per client (MaxSessionsPerClient, 100 per IP address or
// IPv6 /64, or per LongPollOptions.ClientKey behind a proxy), so that one
// client cannot lock the others out. Heartbeats are
// answered, joins, leaves, duplicate joins, stale join_refs, unmatched topics,
// "join crashed" and "too many channels joined" behave as in Phoenix 1.8,
// and close codes follow Bandit, Phoenix's default server: 1000/1002 answers
// to client closes, 1001 after a "disconnect" broadcast to the socket id,
// 1002 after the idle timeout, 1009 for oversized frames, 1011 for
// malformed frames and 1012 on Shutdown.
//
// # Concurrency and memory
//
// An idle joined connection costs about 12 KB of server memory (heap and
// one 2 KiB goroutine stack; see BENCHMARKS.md). Each connection has one
// long-lived goroutine that only waits for the socket to become readable
// and then hands a burst of inbound messages to a short-lived worker (deep
// work grows a goroutine's stack for good, so it is kept off the long-lived
// one). Outbound frames wait in the connection's ordered queue for the
// server's write pool: a few goroutines (at most GOMAXPROCS, and none while
// nothing is queued) that send everything queued for a connection in one
// non-blocking socket write, so a busy server makes fewer writes than it
// delivers frames. A client too slow to take a write gets a goroutine of
// its own until it has (no pool goroutine ever waits on a socket). The
// pool needs raw non-blocking socket writes: on Linux it serves plain
// TCP connections; TLS connections, and every connection on other
// systems, get a writer goroutine while frames are queued. A channel has
// no goroutine while idle. Broadcasts are encoded once
// per node and serializer, as complete WebSocket frames, and the same bytes
// are queued for every subscriber ("fastlane"); only events a channel
// intercepts go through its mailbox. One goroutine per server closes idle
// connections.
//
// # Slow clients
//
// The outbound queue of a connection is bounded in bytes
// (Options.MaxQueueBytes, 1 MiB by default). A broadcast or push that would
// overflow it closes the connection with CloseSlowConsumer (3008) and counts
// it in Stats.SlowClosed; nothing else waits for a slow client. phoenix.js
// reconnects and rejoins. Client pushes to a channel whose mailbox is full
// (Options.MailboxSize) pause that connection's reads; broadcasts to
// intercepting channels and infos are dropped at a full mailbox and logged.
//
// # Failures
//
// A panic or error in a channel's handler ends that channel only: the
// client gets phx_error {"reason":"channel_crash"} and rejoins, other
// channels and the connection go on. A panic in Join answers "join crashed".
// Malformed frames close only the connection that sent them.
package channel
