// Checklist items 29–32: V2 binary frames.
import { describe, it } from "node:test"
import assert from "node:assert/strict"
import { loadClients, useFixture, canon, reply, outcome, hex, encodeClientPush, decodeServerBinary, deferred, withTimeout } from "../lib/index.js"

const clients = await loadClients()
const bytes = (...xs) => Buffer.from(xs.flatMap((x) => (typeof x === "string" ? [...Buffer.from(x, "utf8")] : [x])))

for (const client of clients) {
  describe(`phoenix ${client.version}: binary`, () => {
    const fx = useFixture(client)

    it("29/30: binary push → kind-1 binary reply [1,2,3,4] and kind-0 server push without ref", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const { channel, joinRef: J } = await s.join(socket, "room:1")
      const pushed = deferred()
      channel.on("bin", (payload) => pushed.resolve(payload))
      const push = channel.push("bin", new Uint8Array([1, 2]).buffer)
      const res = await outcome(push)
      const R = push.ref

      // 29: client frame, server reply frame, surfaced reply.
      const sent = rec.events.find((e) => e.type === "send" && e.binary)
      const wantSent = bytes(0, J.length, R.length, 6, 3, J, R, "room:1", "bin", 1, 2)
      assert.equal(hex(sent.data), hex(wantSent))
      assert.equal(hex(sent.data), hex(encodeClientPush({ joinRef: J, ref: R, topic: "room:1", event: "bin", data: [1, 2] })))
      const rep = rec.events.find((e) => e.type === "recv" && e.binary && e.data[0] === 1)
      assert.ok(rep, `binary kind-1 reply expected:\n${rec.dump()}`)
      assert.equal(hex(rep.data), hex(bytes(1, J.length, R.length, 6, 2, J, R, "room:1", "ok", 1, 2, 3, 4)))
      assert.equal(res.status, "ok")
      assert.ok(res.response instanceof ArrayBuffer, "reply response surfaces as ArrayBuffer")
      assert.deepEqual([...new Uint8Array(res.response)], [1, 2, 3, 4])

      // 30: server push, binary kind 0 without a ref field.
      const payload = await withTimeout(pushed.promise, 3000, "binary push")
      const pf = rec.events.find((e) => e.type === "recv" && e.binary && e.data[0] === 0)
      assert.equal(hex(pf.data), hex(bytes(0, J.length, 6, 3, J, "room:1", "bin", 0, 1)))
      assert.deepEqual(decodeServerBinary(pf.data).joinRef, J)
      assert.ok(payload instanceof ArrayBuffer)
      assert.deepEqual([...new Uint8Array(payload)], [0, 1])
    })

    it("31/32: binary new_msg is broadcast as kind 2 (join_ref/ref null); the map reply is a text phx_reply", async () => {
      const s = await fx.session()
      const a = await s.connect({}, { name: "a" })
      const b = await s.connect({}, { name: "b" })
      const T = "room:1"
      const { channel, joinRef: J } = await s.join(a.socket, T)
      await s.join(b.socket, T)
      const seen = deferred()
      b.socket.onMessage((msg) => { if (msg.event === "new_msg") seen.resolve(msg) })
      const push = channel.push("new_msg", new Uint8Array([9, 8, 7]).buffer)
      const res = await outcome(push)

      // 32: binary request, map reply → text frame.
      assert.equal(res.status, "ok")
      assert.deepEqual(res.response, {})
      const rep = a.rec.events.find((e) => e.type === "recv" && !e.binary && e.msg?.ref === push.ref)
      assert.ok(rep, `text reply expected:\n${a.rec.dump()}`)
      assert.equal(canon(rep.text), reply(J, push.ref, T, "ok", {}))

      // 31: kind-2 broadcast at both clients.
      for (const x of [a, b]) {
        const f = await x.rec.waitFor((e) => e.type === "recv" && e.binary && e.data[0] === 2, { label: "kind-2 broadcast" })
        assert.equal(hex(f.data), hex(bytes(2, 6, 7, T, "new_msg", 9, 8, 7)))
      }
      const msg = await withTimeout(seen.promise, 3000, "decoded broadcast")
      assert.equal(msg.join_ref, null)
      assert.equal(msg.ref, null)
      assert.equal(msg.topic, T)
      assert.ok(msg.payload instanceof ArrayBuffer)
      assert.deepEqual([...new Uint8Array(msg.payload)], [9, 8, 7])
    })
  })
}
