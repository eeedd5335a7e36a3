// Issue 6: two nodes (separate server processes) on one broker. A phoenix.js
// client on node A joins a topic; a client on node B pushes new_msg, which
// the channel broadcasts; the client on A receives every message exactly
// once and in order, for Redis and for NATS.
import { describe, it, after } from "node:test"
import assert from "node:assert/strict"
import { loadClients, outcome, Session } from "../lib/index.js"
import { TestServer } from "../lib/server.js"
import { startBroker } from "../lib/broker.js"

const [client] = (await loadClients()).slice(-1) // the newest selected version

for (const kind of ["redis", "nats"]) {
  describe(`multi-node over ${kind} (phoenix ${client.version})`, () => {
    it("1000 broadcasts from node B reach node A exactly once, in order", { timeout: 60000 }, async (t) => {
      const broker = await startBroker(kind)
      if (!broker) { t.skip(`${kind} binary not installed`); return }
      const nodes = []
      const sessions = []
      after(async () => {
        for (const s of sessions) s.cleanup()
        await Promise.all(nodes.map((n) => n.stop()))
        await broker.stop()
      })
      for (let i = 0; i < 2; i++) nodes.push(await TestServer.start(["-pubsub", broker.url]))
      const [sa, sb] = nodes.map((n) => new Session(n, client))
      sessions.push(sa, sb)

      const T = `room:multinode-${kind}`
      const a = await sa.connect({}, { name: "A" })
      const b = await sb.connect({ timeout: 30000 }, { name: "B" })
      await sa.join(a.socket, T)
      const { channel } = await sb.join(b.socket, T)

      // The broker subscription of node A completes asynchronously: send
      // probes until one crosses, then start counting after a fence.
      for (let i = 0; ; i++) {
        assert.ok(i < 100, "no probe crossed from node B to node A")
        await outcome(channel.push("new_msg", { probe: i }))
        const seen = await a.rec.waitFor((e) => e.type === "recv" && e.msg?.event === "new_msg" && e.msg.payload.probe !== undefined, { timeout: 200, label: "probe" }).then(() => true, () => false)
        if (seen) break
      }
      const N = 1000
      const pushes = []
      for (let i = 0; i < N; i++) pushes.push(outcome(channel.push("new_msg", { seq: i }), ["ok", "error", "timeout"], 30000))
      const results = await Promise.all(pushes)
      assert.equal(results.filter((r) => r.status === "ok").length, N, "every push acknowledged")
      await outcome(channel.push("new_msg", { seq: "end" }))
      for (const x of [a, b]) {
        await x.rec.waitFor((e) => e.type === "recv" && e.msg?.event === "new_msg" && e.msg.payload.seq === "end", { timeout: 20000, label: `${x.rec.name} end marker` })
        const seqs = x.rec.received().filter((e) => e.msg?.event === "new_msg" && e.msg.topic === T && e.msg.payload.seq !== undefined).map((e) => e.msg.payload.seq)
        assert.equal(seqs.length, N + 1, `${x.rec.name} received ${seqs.length} broadcasts (duplicates or losses)`)
        for (let i = 0; i < N; i++) if (seqs[i] !== i) assert.fail(`${x.rec.name}: position ${i} has seq ${seqs[i]}`)
      }
    })
  })
}
