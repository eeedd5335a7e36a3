// Package promchannel exports the metrics of a channel.Server to
// Prometheus (github.com/prometheus/client_golang): connections, joins,
// leaves and refusals by channel pattern, client events by status, handler
// latency, broadcasts and deliveries, queued bytes, slow consumers, mailbox
// drops, LongPoll sessions, and, when given, the PubSub's broker failures
// and the circuit breakers' states.
//
// It is a separate package, as promhttp is for net/http, so that a program
// importing package channel alone compiles no Prometheus code: the Server
// exposes what is needed through Server.Stats, Server.QueuedBytes and the
// Observer seam (Server.Observe), and this package turns that into
// Prometheus metrics.
//
//	srv := channel.NewServer(&channel.Options{Router: router})
//	m, err := promchannel.New(srv, nil) // registers on prometheus.DefaultRegisterer
//	if err != nil { ... }
//	defer m.Close()
//	mux.Handle("GET /metrics", promhttp.Handler())
//
// # Cost
//
// Nothing is added to the broadcast fan-out path: the Server's own counters
// (the fan-out counts cost two atomic adds per broadcast, not one per
// delivery, metrics or not) are read when Prometheus scrapes; with and
// without the metrics a delivery costs the same (BenchmarkFanout: 123
// instructions per delivery either way under callgrind). Joins, leaves and client
// events are counted by an Observer, which costs two clock reads and a few
// map lookups per join or client event. A scrape visits every connection
// once to sum the queued bytes.
//
// # Metrics
//
// Names are prefixed with Options.Namespace ("pyre" by default):
//
//	Name                                     Type       Labels              Meaning
//	pyre_connections                         gauge      transport           open connections: websocket, longpoll, other (Server.Attach)
//	pyre_connections_accepted_total          counter                        connections accepted
//	pyre_connections_refused_total           counter                        refused: origin, vsn, subprotocol, Connect
//	pyre_slow_consumer_closes_total          counter                        closed with 3008: outbound queue over MaxQueueBytes
//	pyre_malformed_closes_total              counter                        closed for a malformed frame (1011) or invalid UTF-8 (1007)
//	pyre_mailbox_drops_total                 counter                        broadcasts/infos dropped at a full channel mailbox
//	pyre_websocket_frames_written_total      counter                        frames written to WebSocket connections
//	pyre_websocket_writes_total              counter                        socket writes carrying them
//	pyre_websocket_blocked_writes_total      counter                        writes that found the socket full
//	pyre_websocket_write_delay_seconds       gauge                          the write pool's current write delay
//	pyre_websocket_write_delay_seconds_total counter                        that delay integrated over busy time: rate() is the mean delay
//	pyre_longpoll_sessions                   gauge                          open LongPoll sessions
//	pyre_broadcasts_total                    counter                        broadcasts fanned out to subscribers on this node
//	pyre_broadcast_deliveries_total          counter                        subscribers they were handed to
//	pyre_broadcast_filtered_total            counter                        deliveries dropped by clients' broadcast filters
//	pyre_outbound_queued_bytes               gauge                          bytes queued for clients, not yet written or polled
//	pyre_channel_joins_total                 counter    pattern             successful joins
//	pyre_channel_join_refusals_total         counter    pattern, reason     refused joins (reasons below)
//	pyre_channel_leaves_total                counter    pattern, reason     channels ended (reasons below)
//	pyre_channel_events_total                counter    pattern, event, status  client events handled
//	pyre_channel_handler_duration_seconds    histogram  pattern, event      time in Join (event phx_join) and in event handlers
//	pyre_pubsub_publish_errors_total         counter                        broadcasts whose publish to the broker failed
//	pyre_pubsub_reconnects_total             counter                        broker connections re-established after a loss
//	pyre_pubsub_connected                    gauge                          1 while the broker connection is up
//	pyre_breaker_state                       gauge      service, state      1 for the breaker's current state, 0 for the others
//
// The pubsub metrics are exported only for a PubSub with a BrokerStats
// method (pubsub/redis, pubsub/nats); pyre_breaker_state has one series per
// breaker and state (closed, open, half-open), the usual one-hot encoding
// of an enum, so that max by (service) (pyre_breaker_state{state="open"})
// finds open breakers.
//
// # Labels
//
// Every label value comes from a small, fixed or server-defined set, so
// that a client cannot grow the number of series:
//
//   - pattern is the Router pattern that matched ("room:*"), never the
//     topic; it is empty for joins refused before routing.
//   - reason of a join refusal: topic_too_long, params_too_large,
//     unmatched_topic, too_many_channels (the Server's bounds and router),
//     channel (Join or a hook answered an error reply) and crashed (Join
//     panicked or returned an error that is not a JoinError).
//   - reason of a leave: leave (the client left), closed (the connection
//     closed, including Shutdown), duplicate_join (the client joined the
//     topic again), stop (a handler returned ErrStop) and crash (a panic or
//     another error).
//   - status of an event: ok and error (the reply's status), noreply,
//     unhandled (the handler returned ErrUnhandled), stop, crash, and other
//     for any other reply status a handler chose.
//   - event is the client's event name, which the client chooses: only
//     the first Options.MaxEventsPerPattern (64) names a channel pattern
//     handled are kept; later names, and every unhandled event, are
//     counted as event="other".
package promchannel
