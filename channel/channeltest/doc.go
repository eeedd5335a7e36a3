// Package channeltest unit-tests pyre channels without a network, the way
// Phoenix.ChannelTest tests Phoenix channels.
//
// New starts an Endpoint: a real channel.Server with the application's
// router, hooks and options, and an in-memory PubSub unless the test brings
// its own. Its Clients are in-process connections: their transport plugs
// into the server through the same channel.Transport seam as the WebSocket
// transport, so Connect, joins, hooks, channel mailboxes, fastlane
// broadcasts, crashes and Terminate run exactly the production code. Only
// the network and the frame encoding are left out (Options.Wire puts the
// encoding back).
//
// A Client is one connection, phoenix.js's Socket; each topic it joins is a
// Channel, whose server side is the channel.Socket the channel's callbacks
// get.
//
//	func TestRoom(t *testing.T) {
//		ep := channeltest.New(t, app.Router(), nil)
//		client := ep.Client(&channel.ConnectInfo{Assigns: map[string]any{"user_id": 7}})
//		room := client.SubscribeAndJoin("room:lobby", map[string]any{"token": "secret"})
//
//		room.Push("new_msg", map[string]any{"body": "hi"}).AssertReply("ok", nil)
//		room.AssertBroadcast("new_msg", map[string]any{"body": "hi", "user_id": 7})
//		room.AssertPush("new_msg", channeltest.JSON(`{"body":"hi","user_id":7}`))
//		room.RefutePush("new_msg", nil, 0)
//
//		room.Leave().AssertReply("ok", nil)
//		room.AssertTerminated(channel.ErrLeft)
//	}
//
// # Phoenix names
//
//	socket(UserSocket, id, assigns)     Endpoint.Client(&channel.ConnectInfo{ID: id, Assigns: assigns})
//	connect(UserSocket, params)         Endpoint.Connect(&channel.ConnectInfo{Params: params})
//	subscribe_and_join(socket, topic)   Client.SubscribeAndJoin(topic, payload)
//	join(socket, topic, payload)        Client.Join, Client.TryJoin, Client.AssertJoinError
//	push(socket, event, payload)        Channel.Push
//	assert_reply ref, status, payload   Push.AssertReply(status, want)
//	assert_push event, payload          Channel.AssertPush, Client.AssertPush
//	assert_broadcast event, payload     Channel.AssertBroadcast, Client.AssertBroadcast
//	refute_push / refute_broadcast      RefutePush, RefuteBroadcast, Push.RefuteReply
//	leave(socket)                       Channel.Leave
//	close(socket)                       Client.Close
//	Endpoint.broadcast(topic, ...)      Endpoint.Broadcast
//	Process.monitor + assert_receive    Channel.AssertTerminated, AssertClosed, AssertError
//	socket.assigns after the join       Channel.Assigns
//	send(socket.channel_pid, msg)       Channel.Send
//
// # Waiting and matching
//
// Every frame the server sends is kept in arrival order until an assertion
// takes it. An assertion takes the first frame that matches and leaves the
// others, as a selective receive does, and waits up to Options.Timeout (1 s)
// for one to arrive; a Refute assertion fails if a matching frame is
// waiting or arrives within its window (Options.RefuteTimeout, 100 ms).
// There are no other sleeps. Failure messages list the frames that did
// arrive, show how the payloads of near misses differ, and say whether
// channels terminated or the connection closed.
//
// Expected payloads (want arguments) are Go values compared as the JSON a
// channel would send, JSON text compared structurally, Subset patterns,
// channel.Binary bytes, or Check functions that may use testify; nil matches
// anything. See Matcher. Assertions return the matching frame, so its
// payload can also be checked with testify or decoded with Decode.
//
// Assertions fail with tb.Fatalf and belong on the test's goroutine. Inside
// a testing/synctest bubble the timeouts and refute windows take no real
// time: create the Endpoint inside the bubble.
//
// Channel.Assigns returns the channel's assigns as they were right after its
// Join (the socket Phoenix's subscribe_and_join returns), and Channel.Send
// delivers a message to its HandleInfo, like send(socket.channel_pid, msg).
package channeltest
