// Checklist items 59–60: ordering.
import { describe, it } from "node:test"
import assert from "node:assert/strict"
import { loadClients, useFixture, canon, v2, outcome, recvMsg } from "../lib/index.js"

const clients = await loadClients()

for (const client of clients) {
  describe(`phoenix ${client.version}: ordering`, () => {
    const fx = useFixture(client)

    it("59: bcast_then_push → [null,null,T,\"b\",{}] before [J,null,T,\"p\",{}]", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const T = "room:59"
      const { channel, joinRef: J } = await s.join(socket, T)
      channel.push("bcast_then_push", {})
      const p = await rec.waitFor(recvMsg({ topic: T, event: "p" }), { label: "p push" })
      const b = rec.events.find(recvMsg({ topic: T, event: "b" }))
      assert.ok(b, `broadcast b missing before p:\n${rec.dump()}`)
      assert.ok(b.index < p.index)
      assert.equal(canon(b.text), v2(null, null, T, "b", {}))
      assert.equal(canon(p.text), v2(J, null, T, "p", {}))
    })

    it("60: 1000 sequential broadcasts arrive at every client in order, without duplicates", { timeout: 60000 }, async () => {
      const s = await fx.session()
      const T = "room:60"
      const N = 1000
      const a = await s.connect({ timeout: 30000 }, { name: "sender" })
      const b = await s.connect({}, { name: "b" })
      const c = await s.connect({}, { name: "c" })
      const { channel } = await s.join(a.socket, T)
      await s.join(b.socket, T)
      await s.join(c.socket, T)
      const pushes = []
      for (let i = 0; i < N; i++) pushes.push(outcome(channel.push("new_msg", { seq: i }), ["ok", "error", "timeout"], 30000))
      const results = await Promise.all(pushes)
      assert.equal(results.filter((r) => r.status === "ok").length, N)
      // End marker from the same sender: any duplicate would arrive before it.
      await outcome(channel.push("new_msg", { seq: "end" }))
      for (const x of [a, b, c]) {
        await x.rec.waitFor((e) => e.type === "recv" && e.msg?.event === "new_msg" && e.msg.payload.seq === "end", { timeout: 20000, label: "end marker" })
        const seqs = x.rec.received().filter((e) => e.msg?.event === "new_msg" && e.msg.topic === T).map((e) => e.msg.payload.seq)
        assert.equal(seqs.length, N + 1, `${x.rec.name}: ${seqs.length} broadcasts`)
        for (let i = 0; i < N; i++) if (seqs[i] !== i) assert.fail(`${x.rec.name}: position ${i} has seq ${seqs[i]}`)
      }
    })
  })
}
