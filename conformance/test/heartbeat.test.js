// Checklist items 9–12: heartbeat and the LongPoll-fallback health check.
import { describe, it } from "node:test"
import assert from "node:assert/strict"
import { loadClients, useFixture, RAW, canon, v2, reply, MapStorage, waitUntil, quietWindow } from "../lib/index.js"

const clients = await loadClients()
const isHeartbeat = (e) => e.type === "send" && e.msg?.topic === "phoenix" && e.msg?.event === "heartbeat"

for (const client of clients) {
  describe(`phoenix ${client.version}: heartbeat`, () => {
    const fx = useFixture(client)

    it("9: heartbeat ~300 ms after open; reply is exactly [null,R,\"phoenix\",\"phx_reply\",{\"response\":{},\"status\":\"ok\"}]", async () => {
      const s = await fx.session()
      const { rec } = await s.connect({ heartbeatIntervalMs: 300 })
      const open = rec.events.find((e) => e.type === "open")
      const hb = await rec.waitFor(isHeartbeat, { timeout: 2000, label: "heartbeat" })
      const R = hb.msg.ref
      assert.equal(canon(hb.text), v2(null, R, "phoenix", "heartbeat", {}))
      const delay = hb.t - open.t
      assert.ok(delay >= 250 && delay < 800, `heartbeat ${delay.toFixed(0)} ms after open, want ~300`)
      const rep = await rec.waitFor((e) => e.type === "recv" && e.msg?.ref === R, { label: "heartbeat reply" })
      assert.equal(rep.binary, false, "text frame")
      // canon() keeps key order, so this also checks "response" before "status".
      assert.equal(canon(rep.text), reply(null, R, "phoenix", "ok", {}))
      assert.ok(rep.text.indexOf('"response"') < rep.text.indexOf('"status"'))
    })

    it("11: the next heartbeat follows ~300 ms after the reply; the server never pings or sends heartbeats", async () => {
      const s = await fx.session()
      const { rec } = await s.connect({ heartbeatIntervalMs: 300 })
      const [hb1, hb2] = await rec.waitForCount(isHeartbeat, 2, { timeout: 3000, label: "heartbeats" })
      const rep1 = rec.events.find((e) => e.type === "recv" && e.msg?.ref === hb1.msg.ref)
      assert.ok(rep1 && rep1.index < hb2.index, "first heartbeat answered before the second was sent")
      const gap = hb2.t - rep1.t
      assert.ok(gap >= 250 && gap < 800, `second heartbeat ${gap.toFixed(0)} ms after first reply, want ~300`)
      await rec.waitFor((e) => e.type === "recv" && e.msg?.ref === hb2.msg.ref, { label: "second reply" })
      assert.equal(rec.filter((e) => e.type === "ping").length, 0, "no WebSocket pings from the server")
      const sentRefs = new Set(rec.sent().map((e) => e.msg?.ref))
      for (const e of rec.received()) {
        assert.ok(e.msg && e.msg.event === "phx_reply" && sentRefs.has(e.msg.ref), `unsolicited server frame: ${e.text}`)
      }
    })

    it("12: with longPollFallbackMs 2500 the health-check ping is answered; no phx:fallback:LongPoll stored", async () => {
      const s = await fx.session()
      const storage = new MapStorage()
      const { socket, rec } = await s.connect({ longPollFallbackMs: 2500, sessionStorage: storage })
      const ping = await rec.waitFor(isHeartbeat, { timeout: 1000, label: "health-check ping" })
      await rec.waitFor((e) => e.type === "recv" && e.msg?.ref === ping.msg.ref, { label: "ping reply" })
      await waitUntil(() => socket.primaryPassedHealthCheck, { timeout: 1000, label: "primaryPassedHealthCheck" })
      // The passed health check cleared the fallback timer; a short window makes
      // sure nothing else (e.g. a close) flips the socket to LongPoll.
      await quietWindow(200)
      assert.equal(storage.getItem("phx:fallback:LongPoll"), null)
      assert.equal(storage.length, 0)
      assert.notEqual(socket.transport, client.LongPoll)
      assert.equal(socket.isConnected(), true)
      assert.equal(rec.filter((e) => e.type === "attempt").length, 1)
    })
  })
}

describe("raw: heartbeat", () => {
  const fx = useFixture(RAW)

  it("10: the heartbeat reply has join_ref null even when the heartbeat carried one", async () => {
    const s = await fx.session()
    const c = await s.raw()
    c.send("5", "7", "phoenix", "heartbeat", {})
    const rep = await c.waitMsg({ ref: "7" })
    assert.equal(canon(rep.text), reply(null, "7", "phoenix", "ok", {}))
    c.send(null, "8", "phoenix", "heartbeat", { any: "payload" })
    const rep2 = await c.waitMsg({ ref: "8" })
    assert.equal(canon(rep2.text), reply(null, "8", "phoenix", "ok", {}))
  })
})
