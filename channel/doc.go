// Package channel is a Phoenix Channels server for net/http: the socket
// endpoint, the topic router, the Channel interface and the embeddable Base
// with middleware-style hooks (correlation ids, ping, unified error pushes,
// after-join state, PubSub subscriptions, fallbacks and batched pushes).
// The official phoenix.js client (1.8.x) talks to it unmodified.
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
// "join crashed" and "too many channels joined" behave as in Phoenix 1.8.
//
// # Close codes
//
// Close codes follow Bandit, Phoenix's default server, and RFC 6455:
//
//	1000  answer to a client's close with code 1000-1003, 1007-1011 or 3000-4999
//	1001  after a "disconnect" broadcast to the socket id
//	1002  answer to a client's close without a code, with a 1-byte body or
//	      with any other code (0-999, 1004-1006, 1012-2999, 5000 and up; Bandit
//	      answers 1000 to codes of 5000 and up); after the idle timeout
//	1007  a text message (after inflation) or a client's close reason that
//	      is not valid UTF-8 (Bandit answers 1002 to the latter)
//	1009  a message larger than MaxFrameSize, or a compressed one inflating
//	      past MaxInflatedSize
//	1011  a malformed frame (not a Phoenix message)
//	1012  Shutdown (in batches, see Shutdown below) and Close
//	3008  a slow consumer (see below)
//
// 1007, 1009 and 1011 close only the connection that sent the message;
// 1007 and 1011 count in Stats.Malformed. Binary frames are opaque and not
// checked for UTF-8. A LongPoll line is a text frame: invalid UTF-8 in it
// closes the session like any malformed line (the POST is answered 400).
//
// # Limits
//
// Every inbound size has a bound with a default (see Options): the message
// (MaxFrameSize, 10 MB), a compressed message once inflated
// (MaxInflatedSize, 1 MiB) and the rate a connection may inflate at
// (MaxInflateRate, 1 MiB/s: beyond it its reads pause), a joined topic
// (MaxTopicLength, 1024 bytes) and join params (MaxJoinParamsBytes,
// 64 KiB), the channels per connection (MaxChannels, 100) and the outbound
// queue (MaxQueueBytes, 1 MiB). A join past a bound is refused with a
// phx_reply error ("topic too long", "join params too large", "too many
// channels joined") and keeps nothing on the server.
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
// An idle WebSocket connection holds no goroutine and no buffer on Linux:
// one poller per server (epoll, waited on through Go's network poller)
// watches idle sockets, and a goroutine runs, with a pooled read buffer,
// only while a message is read and handled; a Phoenix heartbeat costs one
// wake-up. On other systems, and for TLS connections, each connection keeps
// one goroutine waiting for input on a minimal stack.
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
// # Client filters
//
// A channel can let each client choose which of its broadcasts it wants,
// as Centrifugo's publication filters do: a channel that implements
// Filterable has the "filter" join param read for it, e.g. from phoenix.js
//
//	socket.channel("prices:all", {filter: {events: ["tick"], where: {symbol: ["BTC", "ETH"], "venue.region": "eu"}}})
//
// and the server drops every other broadcast for that client before
// anything is queued for it: no encoding, no write, no HandleOut, and a
// count in Stats.Filtered. "events" lists the events wanted, "except"
// those not wanted, and "where" holds equality conditions on fields of
// JSON object payloads (dotted paths into nested objects; a list of values
// means any of them). Protocol events (phx_* and presence_diff) are only
// dropped when named in "except"; replies and pushes are never filtered;
// binary payloads are checked against the event rules only. A malformed
// filter, or one past FilterLimits (32 events, 8 conditions, 16 values per
// condition, paths 4 deep by default), refuses the join with {"reason":
// "invalid filter","detail":…}. A channel that is not Filterable ignores
// the key; one that wants to decide per join calls FilterFromParams and
// Socket.SetFilter in Join instead, and SetFilter also changes a filter
// later (say, on a client event). Payloads are not decoded: a broadcast's
// JSON is checked once per node for all the subscribers whose filters
// have conditions and the fields they name are found by scanning it, and
// subscribers with equal filters share one evaluation. Filter has the
// full rules. Filters save bandwidth and client
// work; they are not access control.
//
// # Shutdown
//
// Server.Shutdown refuses new connections and LongPoll sessions (503) and
// closes the open ones with 1012, which phoenix.js answers by reconnecting,
// to another node behind a load balancer. As Phoenix's socket drainer it
// closes them in batches (Options.Drain: 10 000 connections every 2 s, the
// first batch at once, the rest at once after 30 s), so that a node with
// many clients does not send them all to the remaining nodes in the same
// instant; LongPoll sessions not closed yet keep being served meanwhile.
// Shutdown's context bounds the whole drain: when it is done, the rest are
// closed at once. Server.Close closes everything at once, without batches.
//
// # Metrics and observers
//
// Server.Stats returns the server's counters (connections by transport,
// accepted and refused connections, slow-consumer and malformed closes,
// mailbox drops, frames and socket writes, LongPoll sessions, broadcasts
// and deliveries) and Server.QueuedBytes the bytes waiting for clients.
// Server.Observe installs an Observer, a struct of optional functions in
// the style of net/http/httptrace, called for every answered join (with a
// refusal reason from a small fixed set), every client event a channel
// handled (with its outcome and the handler's time) and every channel
// that ended (with its Terminate reason). Package channel/promchannel
// exports all of it to Prometheus; a tracing package can build on the same
// seam or on Router.Use. The broadcast fan-out calls no Observer: it only
// adds to the broadcast and delivery counts, once per broadcast.
//
// # For transport authors
//
// A transport other than the built-in ones (package channeltest's
// in-process one, a test harness) implements Transport and uses the
// Server.Attach, Conn.Receive and Conn.Finish seam; Options.OnJoin,
// Options.OnTerminate and Conn.PushRaw serve such harnesses (metrics use
// Server.Observe instead). They are
// grouped in transport.go. Applications need none of them.
//
// # Failures
//
// A panic or error in a channel's handler ends that channel only: the
// client gets phx_error {"reason":"channel_crash"} and rejoins, other
// channels and the connection go on. A panic in Join answers "join crashed".
// Malformed frames close only the connection that sent them.
package channel
