// Checklist items 13–20: join.
import { describe, it } from "node:test"
import assert from "node:assert/strict"
import { loadClients, useFixture, RAW, canon, v2, reply, outcome, sendMsg, recvMsg } from "../lib/index.js"

const clients = await loadClients()
const isJoinSend = (topic) => (e) => e.type === "send" && e.msg?.topic === topic && e.msg?.event === "phx_join"

for (const client of clients) {
  describe(`phoenix ${client.version}: join`, () => {
    const fx = useFixture(client)

    it("13/14: join frame has join_ref == ref; ok reply comes first, then the joined push", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const { joinRef: J, status } = await s.join(socket, "room:1", { a: 1 })
      assert.equal(status, "ok")
      const joinSend = rec.events.find(isJoinSend("room:1"))
      assert.equal(canon(joinSend.text), v2(J, J, "room:1", "phx_join", { a: 1 }))
      const joined = await rec.waitFor(recvMsg({ topic: "room:1", event: "joined" }), { label: "joined push" })
      const forTopic = rec.received().filter((e) => e.msg?.topic === "room:1")
      assert.equal(canon(forTopic[0].text), reply(J, J, "room:1", "ok", {}), "join reply is the first frame for room:1")
      assert.equal(canon(joined.text), v2(J, null, "room:1", "joined", { status: "connected" }))
      assert.equal(forTopic[1], joined, "the joined push directly follows the reply")
    })

    it("15: unmatched topic → error reply with join_ref null; rejoins after ~1 s, ~2 s, ~5 s with new refs", { timeout: 20000 }, async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const channel = socket.channel("nomatch:1")
      const first = outcome(channel.join())
      const res = await first
      assert.equal(res.status, "error")
      assert.deepEqual(res.response, { reason: "unmatched topic" })
      const joins = await rec.waitForCount(isJoinSend("nomatch:1"), 4, { timeout: 12000, label: "join + 3 rejoins" })
      const refs = joins.map((e) => e.msg.ref)
      assert.equal(new Set(refs).size, 4, `each join has a new ref: ${refs}`)
      const replies = []
      for (const j of joins) {
        assert.equal(j.msg.join_ref, j.msg.ref)
        const r = await rec.waitFor((e) => e.type === "recv" && e.msg?.ref === j.msg.ref, { label: `reply to ${j.msg.ref}` })
        assert.equal(canon(r.text), reply(null, j.msg.ref, "nomatch:1", "error", { reason: "unmatched topic" }))
        replies.push(r)
      }
      const want = [1000, 2000, 5000]
      for (let i = 0; i < 3; i++) {
        const gap = joins[i + 1].t - replies[i].t
        assert.ok(gap >= want[i] - 50 && gap < want[i] + 600, `rejoin ${i + 1} after ${gap.toFixed(0)} ms, want ~${want[i]}`)
      }
      channel.leave()
    })

    it("16: join with reject:true → error {reason: unauthorized} with J", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const T = "room:reject"
      const { channel, joinRef: J, status, response } = await s.join(socket, T, { reject: true })
      channel.leave()
      assert.equal(status, "error")
      assert.deepEqual(response, { reason: "unauthorized" })
      const r = rec.received().find((e) => e.msg?.topic === T && e.msg?.ref === J)
      assert.equal(canon(r.text), reply(J, J, T, "error", { reason: "unauthorized" }))
    })

    it("17: join with crash:true → error {reason: join crashed} with J", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const T = "room:crash"
      const { channel, joinRef: J, status, response } = await s.join(socket, T, { crash: true })
      channel.leave()
      assert.equal(status, "error")
      assert.deepEqual(response, { reason: "join crashed" })
      const r = rec.received().find((e) => e.msg?.topic === T && e.msg?.ref === J)
      assert.equal(canon(r.text), reply(J, J, T, "error", { reason: "join crashed" }))
      // The connection survives a crashing join.
      const { status: st2 } = await s.join(socket, "room:after-crash")
      assert.equal(st2, "ok")
    })

    it("18: after 100 joins the 101st topic → error {reason: too many channels joined}", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const joins = []
      for (let i = 0; i < 100; i++) {
        const ch = socket.channel(`room:c${i}`)
        joins.push(outcome(ch.join()))
      }
      const results = await Promise.all(joins)
      assert.deepEqual(results.map((r) => r.status), Array(100).fill("ok"))
      const T = "room:c100"
      const { channel, joinRef: J, status, response } = await s.join(socket, T)
      channel.leave()
      assert.equal(status, "error")
      assert.deepEqual(response, { reason: "too many channels joined" })
      const r = rec.received().find((e) => e.msg?.topic === T && e.msg?.ref === J)
      assert.equal(canon(r.text), reply(J, J, T, "error", { reason: "too many channels joined" }))
    })

    it("20: a second channel for a joined topic sends leave(J_old) then join(J_new); the new join is ok", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const T = "room:d"
      const { joinRef: J_old } = await s.join(socket, T)
      const mark = rec.events.length
      const ch2 = socket.channel(T)
      const res = outcome(ch2.join())
      const J_new = ch2.joinRef()
      const sends = await rec.waitForCount((e) => e.type === "send" && e.msg?.topic === T, 2, { from: mark, label: "leave + join" })
      assert.equal(sends[0].msg.event, "phx_leave")
      assert.equal(canon(sends[0].text), v2(J_old, sends[0].msg.ref, T, "phx_leave", {}))
      assert.equal(canon(sends[1].text), v2(J_new, J_new, T, "phx_join", {}))
      assert.notEqual(J_new, J_old)
      assert.equal((await res).status, "ok")
      const r = await rec.waitFor(recvMsg({ ref: J_new, event: "phx_reply" }), { label: "new join reply" })
      assert.equal(canon(r.text), reply(J_new, J_new, T, "ok", {}))
      assert.ok(rec.events.some(sendMsg({ event: "phx_leave", topic: T })))
    })
  })
}

describe("raw: join", () => {
  const fx = useFixture(RAW)

  it("19: duplicate join → new join's ok reply, then phx_close with the old join_ref; old channel gone", async () => {
    const s = await fx.session()
    const c = await s.raw()
    c.send("1", "1", "room:dup", "phx_join", {})
    await c.waitMsg({ ref: "1", event: "phx_reply" })
    c.send("2", "2", "room:dup", "phx_join", {})
    const r2 = await c.waitMsg({ ref: "2", event: "phx_reply" })
    assert.equal(canon(r2.text), reply("2", "2", "room:dup", "ok", {}))
    const close = await c.waitMsg({ event: "phx_close", join_ref: "1" })
    assert.equal(canon(close.text), v2("1", "1", "room:dup", "phx_close", {}))
    assert.ok(r2.index < close.index, "new join reply precedes the old channel's phx_close")
    // The old channel terminated and unsubscribed: a broadcast now reaches the
    // connection once. Broadcasts from one sender keep their order, so by the
    // time "y" arrives every copy of "x" has arrived.
    await s.server.broadcast("room:dup", "x", {})
    await s.server.broadcast("room:dup", "y", {})
    await c.waitMsg({ event: "y" })
    assert.equal(c.rec.received().filter((e) => e.msg?.event === "x").length, 1)
    // And the new generation is the registered one.
    c.send("2", "3", "room:dup", "new_msg", { body: "z" })
    const r3 = await c.waitMsg({ ref: "3" })
    assert.equal(canon(r3.text), reply("2", "3", "room:dup", "ok", {}))
  })
})
