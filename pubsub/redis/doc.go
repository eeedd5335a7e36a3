// Package redis carries pyre broadcasts between nodes over Redis PUB/SUB
// (PUBLISH/SUBSCRIBE, or SPUBLISH/SSUBSCRIBE with [Options.Sharded]).
//
// Each [PubSub] is one node: it delivers to its own subscribers
// synchronously, as pubsub.Memory does, and exchanges messages with the
// other nodes through Redis. It passes the pubsubtest conformance suite for
// one node and for two nodes.
//
// # Topics and channels
//
// A topic maps to the Redis channel [Options.Prefix] + topic, byte for byte
// ("pyre:" + "room:1" = "pyre:room:1"). Redis channel names are binary-safe
// and SUBSCRIBE/PUBLISH match them literally (only PSUBSCRIBE has patterns,
// and the adapter never uses it), so any topic — with colons, dots, spaces,
// '*', '?', '[', NUL bytes or invalid UTF-8 — maps to its own channel and
// two topics never share one. [PubSub.Channel] returns the mapping.
//
// # Nodes and envelopes
//
// Each PubSub has a random 16-byte node id. A broadcast is encoded once into
// a compact binary envelope (node id, topic, event, from, binary flag,
// payload) and published once. Every node subscribed to the channel gets it
// back, including the sender, which drops its own copy: its local
// subscribers already had the message when Broadcast delivered it. Envelopes
// whose topic does not match the channel they arrive on, or that do not
// decode, are dropped and logged at debug level.
//
// # Broker subscriptions
//
// A node holds one broker subscription per topic, however many local
// subscribers the topic has: the first local Subscribe of a topic subscribes
// the node's subscription connection, the last Unsubscribe unsubscribes it.
// Broker commands are issued by a background goroutine, never on the
// caller's goroutine, so Subscribe and Unsubscribe do not wait for Redis.
// Sync waits until they took effect.
//
// # Faults
//
// New makes one connection attempt, bounded by its ctx and
// [Options.ConnectTimeout]. If Redis is unreachable, New still succeeds,
// logs a warning, and keeps trying in the background with exponential
// backoff ([Options.MinBackoff] to [Options.MaxBackoff]).
//
// While the subscription connection is down — Redis stopped, restarted,
// unreachable, or silent for three health-check intervals
// ([Options.HealthCheckInterval]) — the node:
//   - still delivers every Broadcast to its local subscribers, synchronously;
//   - fails Broadcast at once with an error wrapping pubsub.ErrUnavailable
//     after local delivery, without contacting Redis and without buffering;
//   - accepts Subscribe and Unsubscribe locally.
//
// When the connection comes back, the node subscribes again to every topic
// that has local subscribers at that moment, and broadcasts flow both ways.
//
// Broadcast waits for Redis's answer to its PUBLISH (the number of
// receiving clients), so a nil error means Redis has processed the message
// and handed it to every subscription it had. Nothing is buffered in the
// client: a PUBLISH that Redis does not answer within
// [Options.PublishTimeout] (2s by default), or before ctx ends, fails with
// pubsub.ErrUnavailable, as does one whose connection breaks; so a frozen
// or dying Redis makes Broadcast fail within that bound, never hang and
// never report success.
//
// What is lost, Redis PUB/SUB being at-most-once: messages published by
// other nodes while this node's subscription connection is down or not yet
// re-subscribed; messages in flight when Redis dies (accepted by Redis but
// not yet written to subscribers); broadcasts made on this node while it is
// disconnected (they return ErrUnavailable and reach local subscribers only);
// a PUBLISH that timed out may or may not have reached other nodes. Nothing
// is replayed after recovery. A node whose subscription connection falls
// behind Redis's client-output-buffer-limit for pubsub clients (32 MiB hard
// by default) is disconnected by Redis, loses what was queued, and
// reconnects.
//
// # Sharded PUB/SUB and Redis Cluster
//
// With [Options.Sharded], the adapter uses SPUBLISH/SSUBSCRIBE (Redis 7+),
// which Redis Cluster routes to the shard owning the channel's hash slot
// instead of broadcasting every message to every cluster node. With a
// *redis.ClusterClient the adapter keeps one subscription connection per
// hash slot in use (go-redis routes a sharded subscription connection by
// slot), created on first use and kept until Close; wrap a common part of
// related topics in a hash tag ("{room}:1") to put them on one slot. When a
// slot migrates, Redis drops the sharded subscriptions and the adapter
// reconnects that slot's connection to the new owner. With any other client
// sharded mode uses one connection.
//
// Sharded cluster mode relaxes the pubsub ordering contract: messages from
// one publisher stay in order per hash slot, but not across topics on
// different slots (they travel through different shards and connections).
// A Prefix with a hash tag ("{pyre}:") puts every topic on one slot, which
// restores the order at the price of using a single shard.
package redis
