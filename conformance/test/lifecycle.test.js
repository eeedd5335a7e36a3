// Checklist items 38–44: connection lifecycle and close codes.
import { describe, it } from "node:test"
import assert from "node:assert/strict"
import { loadClients, useFixture, RAW, outcome, recvMsg, quietWindow, withTimeout, encodeClientPush, canon, reply } from "../lib/index.js"

const clients = await loadClients()
const closeOf = (rec, conn) => rec.waitFor((e) => e.type === "close" && e.conn === conn, { timeout: 5000, label: `close of conn ${conn}` })

for (const client of clients) {
  describe(`phoenix ${client.version}: connection lifecycle`, () => {
    const fx = useFixture(client)

    it("38: disconnect broadcast to users:7 closes with 1001 (no phx_close/phx_error); client reconnects ~10 ms later and rejoins", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect({ params: { user_id: "7" } })
      const other = await s.connect({ params: { user_id: "8" } }, { name: "user8" })
      const j1 = await s.join(socket, "room:38a")
      const j2 = await s.join(socket, "room:38b")

      // Any other event on the socket-id topic changes nothing.
      await s.server.broadcast("users:7", "something_else", {})
      const pong = await new Promise((resolve) => socket.ping(resolve))
      assert.ok(pong >= 0)
      assert.equal(rec.filter((e) => e.type === "close").length, 0)
      assert.equal((await outcome(j1.channel.push("new_msg", { body: "still" }))).status, "ok")

      const mark = rec.events.length
      await s.server.broadcast("users:7", "disconnect", {})
      const close = await closeOf(rec, 1)
      assert.equal(close.code, 1001)
      const between = rec.received(1).filter((e) => e.index >= mark)
      assert.ok(!between.some((e) => e.msg?.event === "phx_close" || e.msg?.event === "phx_error"),
        `no channel frames before the close:\n${rec.dump()}`)

      const attempt = await rec.waitFor((e) => e.type === "attempt" && e.conn === 2, { timeout: 2000, label: "reconnect" })
      const gap = attempt.t - close.t
      assert.ok(gap >= 5 && gap < 300, `reconnect ${gap.toFixed(0)} ms after close, want ~10`)
      for (const { channel, joinRef } of [j1, j2]) {
        const rj = await rec.waitFor((e) => e.type === "send" && e.conn === 2 && e.msg?.event === "phx_join" && e.msg.topic === channel.topic,
          { label: `rejoin ${channel.topic}` })
        assert.notEqual(rj.msg.join_ref, joinRef, "rejoin uses a new join ref")
        const ok = await rec.waitFor(recvMsg({ ref: rj.msg.ref, event: "phx_reply" }, 2), { label: "rejoin reply" })
        assert.equal(ok.msg.payload.status, "ok")
      }
      // A connection of another user is untouched.
      assert.equal(other.rec.filter((e) => e.type === "close").length, 0)
      assert.equal(other.socket.isConnected(), true)
    })

    it("40: with heartbeat 200 ms and idle timeout 600 ms the client is never idle-closed over 1.2 s", async () => {
      const s = await fx.session(["-idle-timeout", "600ms"])
      const { rec } = await s.connect({ heartbeatIntervalMs: 200 })
      // The point of the item is a bounded window of 2× the idle timeout.
      await quietWindow(1200)
      assert.equal(rec.filter((e) => e.type === "close").length, 0, rec.dump())
      const hbs = rec.filter((e) => e.type === "send" && e.msg?.event === "heartbeat")
      assert.ok(hbs.length >= 4, `heartbeats sent: ${hbs.length}`)
      assert.equal(rec.filter((e) => e.type === "attempt").length, 1)
    })

    it("43: graceful shutdown closes a connection with channels with 1012; the client tries to reconnect; server exits 0", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      await s.join(socket, "room:43")
      await s.server.shutdown()
      const close = await closeOf(rec, 1)
      assert.equal(close.code, 1012)
      const attempt = await rec.waitFor((e) => e.type === "attempt" && e.conn === 2, { timeout: 2000, label: "reconnect attempt" })
      assert.ok(attempt.t - close.t < 1000)
      const exit = await withTimeout(s.server.exited, 10000, "server exit")
      assert.deepEqual(exit, { code: 0, signal: null })
    })

    it("44: socket.disconnect() without code → server closes with 1002; no reconnect", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      await s.join(socket, "room:44")
      socket.disconnect()
      const close = await closeOf(rec, 1)
      assert.equal(close.code, 1002)
      // A reconnect would start ~10 ms after the close; 300 ms bounds it.
      await quietWindow(300)
      assert.equal(rec.filter((e) => e.type === "attempt").length, 1)
    })

    it("44: socket.disconnect(cb, 1000) → server closes with 1000; no reconnect", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      await s.join(socket, "room:44")
      socket.disconnect(undefined, 1000, "bye")
      const close = await closeOf(rec, 1)
      assert.equal(close.code, 1000)
      // A reconnect would start ~10 ms after the close; 300 ms bounds it.
      await quietWindow(300)
      assert.equal(rec.filter((e) => e.type === "attempt").length, 1)
    })
  })
}

describe("raw: connection lifecycle", () => {
  const fx = useFixture(RAW)

  it("39: a client that sends nothing is closed after the idle timeout with 1002", async () => {
    const s = await fx.session(["-idle-timeout", "300ms"])
    const c = await s.raw()
    const open = c.rec.events.find((e) => e.type === "open")
    const { code, t } = await c.waitClose(3000)
    assert.equal(code, 1002)
    const after = t - open.t
    assert.ok(after >= 250 && after < 2000, `closed after ${after.toFixed(0)} ms, want ~300`)
  })

  it("39: any client frame resets the idle timer", async () => {
    const s = await fx.session(["-idle-timeout", "300ms"])
    const c = await s.raw()
    const open = c.rec.events.find((e) => e.type === "open")
    for (let i = 1; i <= 4; i++) {
      await new Promise((r) => setTimeout(r, 150))
      c.send(null, String(i), "phoenix", "heartbeat", {})
    }
    const { code, t } = await c.waitClose(3000)
    assert.equal(code, 1002)
    assert.ok(t - open.t >= 800, `closed ${(t - open.t).toFixed(0)} ms after open despite frames every 150 ms`)
  })

  for (const [name, frame] of [
    ["invalid JSON", "[not json"],
    ["a 4-element array", JSON.stringify([null, "1", "phoenix", "heartbeat"])],
    ["a JSON object (V1 shape on V2)", JSON.stringify({ topic: "phoenix", event: "heartbeat", payload: {}, ref: "1" })],
    ["a binary frame of kind 1", Buffer.from([1, 0, 1, 6, 2, ...Buffer.from("1room:1ok"), 1])],
    ["a binary frame of kind 2", Buffer.from([2, 6, 1, ...Buffer.from("room:1x"), 1])],
  ]) {
    it(`41: ${name} closes the connection with 1011`, async () => {
      const s = await fx.session()
      const c = await s.raw()
      c.sendRaw(frame)
      const { code } = await c.waitClose(3000)
      assert.equal(code, 1011)
    })
  }

  it("§3.1: extra array elements after the fifth are ignored", async () => {
    const s = await fx.session()
    const c = await s.raw()
    c.sendRaw(JSON.stringify([null, "1", "phoenix", "heartbeat", {}, "extra"]))
    const r = await c.waitMsg({ ref: "1" })
    assert.equal(canon(r.text), reply(null, "1", "phoenix", "ok", {}))
  })

  it("41 (control): a valid kind-0 binary frame does not close the connection", async () => {
    const s = await fx.session()
    const c = await s.raw()
    c.send("1", "1", "room:1", "phx_join", {})
    await c.waitMsg({ ref: "1" })
    c.sendRaw(encodeClientPush({ joinRef: "1", ref: "2", topic: "room:1", event: "new_msg", data: [5] }))
    await c.rec.waitFor((e) => e.type === "recv" && (e.msg?.ref === "2" || (e.binary && e.data[0] === 1)), { label: "reply to binary push" })
    c.send(null, "3", "phoenix", "heartbeat", {})
    await c.waitMsg({ ref: "3" })
  })

  it("42: a text frame larger than -max-frame-size closes with 1009; a smaller one is fine", async () => {
    const s = await fx.session(["-max-frame-size", "1024"])
    const c = await s.raw()
    c.send(null, "1", "phoenix", "heartbeat", { pad: "x".repeat(900) })
    await c.waitMsg({ ref: "1" })
    c.send(null, "2", "phoenix", "heartbeat", { pad: "x".repeat(2000) })
    const { code } = await c.waitClose(3000)
    assert.equal(code, 1009)
  })

  it("43: graceful shutdown closes a raw connection with a channel with 1012", async () => {
    const s = await fx.session()
    const c = await s.raw()
    c.send("1", "1", "room:43", "phx_join", {})
    await c.waitMsg({ ref: "1" })
    await s.server.shutdown()
    const { code } = await c.waitClose(5000)
    assert.equal(code, 1012)
    assert.deepEqual(await withTimeout(s.server.exited, 10000, "server exit"), { code: 0, signal: null })
  })

  for (const [sent, want] of [[undefined, 1002], [1000, 1000], [1001, 1000], [3000, 1000], [4000, 1000]]) {
    it(`${sent === undefined || sent === 1000 ? "44" : "§4.6 (Bandit rule)"}: client close ${sent ?? "without code"} → server answers ${want}`, async () => {
      const s = await fx.session()
      const c = await s.raw()
      if (sent === undefined) c.close(); else c.close(sent)
      const { code } = await c.waitClose(3000)
      assert.equal(code, want)
    })
  }
})
