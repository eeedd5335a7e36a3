// Package nats carries pyre broadcasts between nodes over core NATS
// subjects (no JetStream).
//
// Each [PubSub] is one node: it delivers to its own subscribers
// synchronously, as pubsub.Memory does, and exchanges messages with the
// other nodes through a NATS server or cluster. It passes the pubsubtest
// conformance suite for one node and for two nodes.
//
// # Topics and subjects
//
// NATS subjects are dot-separated tokens that cannot contain spaces, '*' or
// '>' (wildcards), so a topic cannot be used as a subject directly. A topic
// maps to one of:
//
//	<Prefix>.t.<base64url(topic), no padding>   topics up to 192 bytes
//	<Prefix>.h.<hex(sha256(topic))>             longer topics
//
// ("room:1" -> "pyre.t.cm9vbTox"). The base64url alphabet (A-Z a-z 0-9 - _)
// contains no '.', space or wildcard, so every topic is exactly one token,
// no two topics share a subject (base64 is injective; the "t"/"h" token
// keeps the two forms apart), and the subject stays far below NATS's
// 4 KiB control-line limit however long the topic. Receivers route by the
// topic carried in the envelope and drop envelopes whose topic does not map
// to the subject they arrived on, so even a hash collision could not
// misdeliver. [PubSub.Subject] returns the mapping.
//
// # Nodes and envelopes
//
// Each PubSub has a random 16-byte node id. A broadcast is encoded once into
// a compact binary envelope (node id, topic, event, from, binary flag,
// payload) and published once. A connection the adapter owns is created
// with NoEcho, so the server does not send a node its own messages; with a
// connection passed in, the node drops its own copies by node id. Either
// way local subscribers receive a broadcast exactly once, from Broadcast.
//
// Messages larger than the server's max_payload (1 MiB by default) minus
// the envelope (about 20 bytes plus topic, event and from) are delivered
// locally and then fail with an error wrapping nats.ErrMaxPayload; raise
// max_payload on the servers if you broadcast large payloads.
//
// # Broker subscriptions
//
// A node holds one NATS subscription per topic, however many local
// subscribers the topic has: the first local Subscribe of a topic creates
// it, the last Unsubscribe removes it. All of a node's subscriptions feed
// one bounded channel ([Options.ReceiveBuffer]) read by one goroutine, so
// messages from one publisher arrive in order across topics. When the
// channel is full NATS drops further messages for the node (a "slow
// consumer"), which is logged; local Deliver never blocks, so this only
// happens when the node cannot keep up at all.
//
// # Confirmed broadcasts
//
// nats.go's Publish only appends to the connection's write buffer: it
// succeeds while the TCP connection is up even if the server has stopped
// processing (frozen, overloaded, about to die), and what sits in the
// buffers when the connection is then dropped is lost. So Broadcast does
// not stop at Publish. It waits until the server confirms the message with
// a PING/PONG round trip: the server answers a PING only after processing
// everything the connection sent before it, so the PONG proves the message
// was handed to every subscription the server knew. Round trips are shared
// (group commit): one goroutine per node sends one PING for all the
// broadcasts made since the previous round trip began, and at most one is
// in flight, so concurrent Broadcast callers pay about one round trip
// between them while a lone publisher pays one round trip per broadcast.
// A confirmation only counts if the connection was not replaced between the
// publish and the PONG (a PONG on a new connection says nothing about what
// was written to the old one).
//
// A nil error from Broadcast therefore means the server has the message.
// Broadcast fails with an error wrapping pubsub.ErrUnavailable when the
// server does not confirm within [Options.PublishTimeout] (2s by default),
// when ctx ends first, or when the connection is lost or replaced before
// the confirmation; the message may then have reached other nodes or not.
//
// [Options.AsyncConfirm] trades this for throughput: Broadcast returns once
// the message is in the write buffer, and the confirmation runs in the
// background. A broadcast that is then not confirmed is counted in
// [PubSub.Stats] (Unconfirmed) and logged at warn level with the count, so
// a loss is visible, but the caller is not told which message it was.
//
// # Faults
//
// With a connection it owns (from [Options.URL]), the adapter connects with
// RetryOnFailedConnect, unlimited reconnects, an exponential reconnect delay
// ([Options.MinBackoff] to [Options.MaxBackoff], with jitter), client pings
// every [Options.HealthCheckInterval] (two unanswered pings drop the
// connection) and no reconnect buffer. So New succeeds with the server
// down, and then:
//   - Broadcast delivers to local subscribers, then fails at once with an
//     error wrapping pubsub.ErrUnavailable while the connection is not up:
//     nothing is buffered for later;
//   - Subscribe and Unsubscribe work locally; nats.go re-sends every
//     subscription that still exists when it reconnects;
//   - a server that stops answering (frozen, partitioned) fails the
//     broadcasts waiting for their confirmation after
//     [Options.PublishTimeout], and is detected by the pings, which drop the
//     connection; a write that blocks longer than [Options.WriteTimeout]
//     drops it too, so Broadcast cannot hang.
//
// Connection events are logged: warn on disconnection, info on
// (re)connection. What is lost, core NATS being at-most-once: messages
// published by other nodes while this node is disconnected; messages that
// were in a client's or the server's buffers when a connection or the
// server died, except that a broadcast in them returned an error (or, with
// AsyncConfirm, was counted) rather than nil; broadcasts made on this node
// while disconnected (they return ErrUnavailable and reach local
// subscribers only); messages NATS drops for a slow consumer. Nothing is
// replayed after recovery.
//
// With a connection passed in ([Options.Conn]) the caller's settings
// apply; the adapter checks the connection status before publishing and
// confirms every broadcast as above, so nats.go's reconnect buffer cannot
// turn a publish made during an outage into a silent loss: such a publish
// fails (not connected, or the connection was replaced before the
// confirmation), even if nats.go sends it after reconnecting. Use the
// options above (nats.RetryOnFailedConnect, nats.MaxReconnects(-1),
// nats.ReconnectBufSize(-1), nats.PingInterval) for the same behaviour.
package nats
