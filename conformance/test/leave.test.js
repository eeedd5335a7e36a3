// Checklist items 33–37: leave, close, error.
import { describe, it } from "node:test"
import assert from "node:assert/strict"
import { loadClients, useFixture, RAW, canon, v2, reply, outcome, recvMsg, deferred, withTimeout, quietWindow } from "../lib/index.js"

const clients = await loadClients()

for (const client of clients) {
  describe(`phoenix ${client.version}: leave, close, error`, () => {
    const fx = useFixture(client)

    it("33: leave → reply ok then phx_close; a later push to T gets unmatched topic", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const T = "room:33"
      const { channel, joinRef: J } = await s.join(socket, T)
      const leave = channel.leave()
      const R = leave.ref
      const sent = await rec.waitFor((e) => e.type === "send" && e.msg?.event === "phx_leave", { label: "leave frame" })
      assert.equal(canon(sent.text), v2(J, R, T, "phx_leave", {}))
      const rep = await rec.waitFor(recvMsg({ ref: R, topic: T }), { label: "leave reply" })
      assert.equal(canon(rep.text), reply(J, R, T, "ok", {}))
      const close = await rec.waitFor(recvMsg({ topic: T, event: "phx_close" }), { label: "phx_close" })
      assert.equal(canon(close.text), v2(J, J, T, "phx_close", {}))
      assert.ok(rep.index < close.index, "reply before phx_close")
      // The channel is gone client-side; push at socket level with the old join_ref.
      const R2 = socket.makeRef()
      socket.push({ topic: T, event: "new_msg", payload: { body: "late" }, ref: R2, join_ref: J })
      const late = await rec.waitFor(recvMsg({ ref: R2 }), { label: "unmatched reply" })
      assert.equal(canon(late.text), reply(null, R2, T, "error", { reason: "unmatched topic" }))
    })

    it("36: stop → [J,J,T,\"phx_close\",{}]; onClose fires and the channel does not rejoin", async () => {
      const s = await fx.session()
      // Short rejoin interval, so the no-rejoin window below can be short.
      const { socket, rec } = await s.connect({ rejoinAfterMs: () => 50 })
      const T = "room:36"
      const { channel, joinRef: J } = await s.join(socket, T)
      const closed = deferred()
      channel.onClose((payload) => closed.resolve(payload))
      channel.push("stop", {})
      const f = await rec.waitFor(recvMsg({ topic: T, event: "phx_close" }), { label: "phx_close" })
      assert.equal(canon(f.text), v2(J, J, T, "phx_close", {}))
      assert.deepEqual(await withTimeout(closed.promise, 1000, "onClose"), {})
      assert.equal(channel.state, "closed")
      assert.ok(!socket.channels.includes(channel), "channel removed from the socket")
      const mark = rec.events.length
      // 8× the configured 50 ms rejoin interval: a rejoin would have been sent.
      await quietWindow(400)
      assert.equal(rec.filter((e) => e.type === "send" && e.msg?.event === "phx_join", mark).length, 0)
    })

    it("37: boom → [J,J,T,\"phx_error\",{\"reason\":\"channel_crash\"}]; onError; rejoin ~1 s later with a new J and ok", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const T = "room:37"
      const { channel, joinRef: J } = await s.join(socket, T)
      const errored = deferred()
      channel.onError((payload) => errored.resolve(payload))
      channel.push("boom", {})
      const f = await rec.waitFor(recvMsg({ topic: T, event: "phx_error" }), { label: "phx_error" })
      assert.equal(canon(f.text), v2(J, J, T, "phx_error", { reason: "channel_crash" }))
      assert.deepEqual(await withTimeout(errored.promise, 1000, "onError"), { reason: "channel_crash" })
      const rejoin = await rec.waitFor((e) => e.type === "send" && e.msg?.event === "phx_join" && e.msg.topic === T,
        { from: f.index, timeout: 3000, label: "rejoin" })
      const J2 = rejoin.msg.ref
      assert.notEqual(J2, J)
      assert.equal(canon(rejoin.text), v2(J2, J2, T, "phx_join", {}))
      const gap = rejoin.t - f.t
      assert.ok(gap >= 900 && gap < 1600, `rejoin after ${gap.toFixed(0)} ms, want ~1000`)
      const ok = await rec.waitFor(recvMsg({ ref: J2, event: "phx_reply" }), { label: "rejoin reply" })
      assert.equal(canon(ok.text), reply(J2, J2, T, "ok", {}))
    })
  })
}

describe("raw: leave", () => {
  const fx = useFixture(RAW)

  it("34: phx_leave for a topic that is not joined → ok reply echoing J", async () => {
    const s = await fx.session()
    const c = await s.raw()
    c.send("9", "10", "room:34", "phx_leave", {})
    const r = await c.waitMsg({ ref: "10" })
    assert.equal(canon(r.text), reply("9", "10", "room:34", "ok", {}))
  })

  it("35: phx_leave with a stale join_ref gets no frame at all", async () => {
    const s = await fx.session()
    const c = await s.raw()
    const T = "room:35"
    c.send("1", "1", T, "phx_join", {})
    await c.waitMsg({ ref: "1" })
    await c.waitMsg({ event: "joined" })
    const mark = c.rec.events.length
    c.send("99", "4", T, "phx_leave", {})
    c.send("1", "5", T, "new_msg", { body: "m" })
    // Frames of one connection are handled in order: had the leave been
    // processed, its reply and phx_close would precede the reply to "5".
    await c.waitMsg({ ref: "5" })
    const after = c.rec.received().filter((e) => e.index >= mark)
    assert.deepEqual(after.map((e) => canon(e.text)).sort(), [
      v2(null, null, T, "new_msg", { body: "m" }),
      reply("1", "5", T, "ok", {}),
    ].sort())
  })
})
