// Issue 7: LongPoll behind a load balancer without sticky sessions. Two
// server processes share a private broker (Redis, then NATS) and a LongPoll
// secret; a round-robin HTTP proxy sends each request to the next node, so
// polls and POSTs keep landing on the node that does not hold the session.
// The JS client must keep one session (no 410 after the first), get its
// replies and the broadcasts of a client on the other node.
import { describe, it, after } from "node:test"
import assert from "node:assert/strict"
import http from "node:http"
import { loadClients, outcome, Session } from "../lib/index.js"
import { TestServer } from "../lib/server.js"
import { startBroker } from "../lib/broker.js"
import { connectLongPoll, useFetchRecording } from "../lib/longpoll.js"

const [client] = (await loadClients()).slice(-1) // the newest selected version
useFetchRecording()

// startRoundRobin proxies plain HTTP requests to targets in turn.
async function startRoundRobin(targets) {
  let next = 0
  const hits = targets.map(() => 0)
  const server = http.createServer((req, res) => {
    const i = next++ % targets.length
    hits[i]++
    const [host, port] = targets[i].split(":")
    const up = http.request({ host, port, method: req.method, path: req.url, headers: req.headers, agent: false }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers)
      ur.pipe(res)
    })
    up.on("error", () => res.destroy())
    res.on("close", () => up.destroy())
    req.pipe(up)
  })
  await new Promise((r) => server.listen(0, "127.0.0.1", r))
  return {
    hits,
    socketUrl: `ws://127.0.0.1:${server.address().port}/socket`,
    async close() {
      server.closeAllConnections?.()
      await new Promise((r) => server.close(() => r()))
    },
  }
}

for (const kind of ["redis", "nats"]) {
  describe(`LongPoll across nodes over ${kind} (phoenix ${client.version})`, () => {
    it("polls and POSTs on the other node reach the session; broadcasts cross nodes", { timeout: 60000 }, async (t) => {
      const broker = await startBroker(kind)
      if (!broker) { t.skip(`${kind} binary not installed`); return }
      const flags = ["-pubsub", broker.url, "-longpoll-secret", "shared-test-secret", "-longpoll-window", "2s"]
      const nodes = [await TestServer.start(flags), await TestServer.start(flags)]
      const proxy = await startRoundRobin(nodes.map((n) => n.host))
      const sessions = nodes.map((n) => new Session(n, client))
      after(async () => {
        for (const s of sessions) s.cleanup()
        await proxy.close()
        await Promise.all(nodes.map((n) => n.stop()))
        await broker.stop()
      })

      // A LongPoll client through the proxy, a WebSocket client on node B.
      const { socket, rec } = await connectLongPoll(sessions[0], {}, { url: proxy.socketUrl })
      const ws = await sessions[1].connect({}, { name: "ws-B" })
      const T = `room:lp-multinode-${kind}`
      const lpChan = socket.channel(T, {})
      assert.equal((await outcome(lpChan.join(), ["ok", "error", "timeout"], 10000)).status, "ok")
      const { channel: wsChan } = await sessions[1].join(ws.socket, T)

      // The WebSocket client's broadcasts reach the LongPoll client, whose
      // subscription lives on whichever node owns its session.
      const got = []
      lpChan.on("new_msg", (p) => got.push(p.n))
      const probe = async (i) => {
        await outcome(wsChan.push("new_msg", { n: i }))
      }
      for (let i = 0; got.length === 0; i++) {
        assert.ok(i < 50, "no broadcast crossed to the LongPoll session")
        await probe(-1 - i)
        await new Promise((r) => setTimeout(r, 100)) // timing item: broker subscriptions settle asynchronously
      }
      for (let i = 0; i < 20; i++) await probe(i)
      // The LongPoll client's own pushes (POSTs through the proxy) are
      // answered, and reach the WebSocket client on the other node.
      const replies = []
      for (let i = 0; i < 10; i++) replies.push(outcome(lpChan.push("new_msg", { n: 100 + i }), ["ok", "error", "timeout"], 10000))
      assert.deepEqual((await Promise.all(replies)).map((r) => r.status), Array(10).fill("ok"))
      await ws.rec.waitFor((e) => e.type === "recv" && e.msg?.event === "new_msg" && e.msg.payload.n === 109, { timeout: 10000, label: "LongPoll push on node B" })
      await rec.waitFor(() => got.includes(19) && got.includes(109), { timeout: 10000, label: "broadcasts on the LongPoll client" })
      const seq = got.filter((n) => n >= 0 && n < 20)
      assert.deepEqual(seq, Array.from({ length: 20 }, (_, i) => i), "in order, once each")

      // One session all along: only the first poll was answered 410.
      const gone = rec.events.filter((e) => e.type === "response" && e.json?.status === 410)
      assert.equal(gone.length, 1, `sessions created: ${gone.length}`)
      assert.ok(proxy.hits[0] > 3 && proxy.hits[1] > 3, `requests per node: ${proxy.hits}`)
    })
  })
}
