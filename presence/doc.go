// Package presence tracks who is connected to which topic, across every
// node of a pyre cluster, in the wire format of Phoenix.Presence: clients
// using the Presence class of phoenix.js show the same list on every node.
//
// # Use
//
// One Tracker per channel.Server. A channel tracks its socket after the
// join, usually right after pushing the current state. From the package
// example, where a Lobby channel embeds channel.Base and holds the Tracker:
//
//	func (l *Lobby) Join(_ context.Context, s *channel.Socket, p channel.Payload) (any, error) {
//		user, _ := p.Map()["user"].(string)
//		l.AfterJoin(func(context.Context) {
//			_ = l.Tracker.PushState(s) // the presences so far
//			_, _ = l.Tracker.Track(s, user, map[string]any{"status": "online"})
//		})
//		return nil, nil
//	}
//
// The client then receives [J,null,T,"presence_state",{…}] right after its
// join reply.
// Every change then reaches every client joined to the topic, on every
// node, as [null,null,T,"presence_diff",{"joins":{…},"leaves":{…}}]. A
// socket's presences are untracked when its channel ends (leave, close,
// crash, duplicate join), exactly once. TrackTopic tracks a socket under
// another topic than its own (an overlay's channel "overlay:obs" tracked in
// "overlays"), and List returns a topic's presences anywhere in the program,
// for instance to a dashboard.
//
// Presences of one key are grouped: the key maps to {"metas":[…]}, one meta
// per tracked socket, each with a "phx_ref" unique to that track. Update
// replaces a meta with a new phx_ref and "phx_ref_prev" set to the old one,
// and the diff carries the new meta in joins and the old one in leaves of
// the same message, which is what phoenix.js expects.
//
// # Replication
//
// Each node owns its own presences: only the node where a socket is
// connected adds or removes them. The cluster state is therefore a set of
// per-node logs, which makes the replicated state a simple delta CRDT (an
// observed-remove set whose elements are tagged with their owner): merging
// is taking, for each node, its newer version, so replicas converge in any
// order of delivery without coordination. Phoenix's tracker is built the
// same way; pyre carries it over any pubsub.PubSub (memory, Redis, NATS) on
// one topic (Options.Topic):
//
//   - Every local change gets the next number of the node's clock, is
//     applied and diffed locally at once, and is published as a delta
//     {from, to, ops} by the tracker's goroutine (batched when changes come
//     faster than publishing).
//   - A node applies a peer's delta when it continues the peer's clock it
//     holds; a delta it already has is ignored; a gap (a lost message, a
//     dropped inbox entry, a publish that failed) makes it ask the peer for
//     its full state, which the peer publishes to all nodes. A full state
//     replaces that peer's entries; the difference is diffed to clients.
//   - Every HeartbeatInterval (1.5 s) each node publishes a heartbeat with
//     its clock, so a lost delta is detected within one interval even when
//     nothing else happens, and a new node learns of (and fetches the state
//     of) every other node. A starting node also asks every node for its
//     state at once.
//   - A node not heard from for NodeTimeout (five heartbeats, 7.5 s) is
//     considered down at the next heartbeat tick (so between 7.5 and 9 s
//     after its last message): its presences are removed with a leaves diff
//     on every other node. If it was only partitioned, its next heartbeat makes the
//     others fetch its state again, and its presences come back with a joins
//     diff. A node restarted under the same NodeID has a new incarnation
//     (epoch): the old presences are dropped as soon as the new one is heard.
//   - Shutdown publishes a goodbye after the last delta, so the other nodes
//     drop the node's presences at once instead of after NodeTimeout.
//
// Diffs are computed on every node from its own view and broadcast to its
// own clients only (channel.Server.LocalBroadcast), so each client gets each
// diff once. Presences of another node appear after the replication delay of
// the PubSub (one publish); a node's own changes are diffed synchronously.
//
// Guarantees: every node's view of a live, reachable node converges to that
// node's presences; on each node, diffs of one topic are emitted in the order
// its view changed, and a client that receives presence_state and then the
// diffs (phoenix.js buffers diffs that arrive before the state) converges to
// the node's view. There is no global order across nodes, and a node's view
// of a peer can lag by one publish, or by up to one HeartbeatInterval after a
// lost message. A partitioned node keeps its own presences and sees the
// others leave; after the partition heals, within about one heartbeat, all
// views agree again.
//
// Differences from Phoenix: deltas are published when they happen instead of
// once per broadcast period, heartbeats are sent every period (Phoenix sends
// them every 10 silent periods), a node is declared down after 7.5 s instead
// of 30 s, and a down node's state is discarded at once and fetched again
// when it returns (Phoenix keeps it for 20 minutes).
//
// # Enriching presences: Fetch
//
// Options.Fetch is Phoenix.Presence's fetch/2: a FetchFunc that receives
// the presences of a message about to go out, by key, and adds fields next
// to "metas" in one batch (the users' records, loaded with one query for
// all keys). Clients receive them as Phoenix sends them:
//
//	{"alice":{"metas":[{"status":"online","phx_ref":"…"}],"user":{"name":"Alice"}}}
//
// and phoenix.js's Presence keeps the extra fields on each entry. Fetch is
// called once per presence_state, and once for the joins and once for the
// leaves of a presence_diff (empty ones are not fetched), on the node whose
// clients receive the message: a node fetches for its own clients, with
// its own FetchFunc, whatever node tracked the presences. Nothing fetched
// is replicated or stored; List and Get return the presences as tracked.
//
// With Fetch, messages are no longer sent from the call that changed the
// view: they are queued, in the order the view changed, for one goroutine
// that calls Fetch and sends them, so a slow Fetch never holds the
// Tracker's lock, and a client still gets every message in order.
// PushState waits for its own message to go out. Each call is bounded by
// Options.FetchTimeout (5 s) through its context; when Fetch returns an
// error, panics, or overruns the timeout, the message goes out with the
// presences as tracked and a warning is logged, so a failing user store
// degrades the extra fields, never the presence list. At most
// Options.FetchQueue (1024) messages wait; past it, changes wait for room.
//
// # Slow consumers and limits
//
// The PubSub hands messages to a bounded inbox (Options.InboxSize); when it
// is full a message is dropped and counted, and the clocks and heartbeats
// above recover the loss with a full-state transfer. Local changes waiting to
// be published are bounded by Options.MaxPendingOps; past it they are
// discarded and the peers resynchronize the same way. A full state is one
// PubSub message: with NATS's default 1 MiB max_payload, that is some
// thousands of presences per node.
//
// Metas are stored as their JSON encoding: List returns what encoding/json
// decodes them to (numbers are float64), the same on every node.
package presence
