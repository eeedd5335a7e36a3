// Checklist items 21–28: pushes, replies, broadcasts, intercepts, join_ref filtering.
import { describe, it } from "node:test"
import assert from "node:assert/strict"
import { loadClients, useFixture, RAW, canon, v2, reply, outcome, recvMsg, sendMsg } from "../lib/index.js"

const clients = await loadClients()

for (const client of clients) {
  describe(`phoenix ${client.version}: pushes, replies, broadcasts`, () => {
    const fx = useFixture(client)

    it("21: new_msg push frame, ok reply, and the sender's own broadcast copy before the reply", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const T = "room:21"
      const { channel, joinRef: J } = await s.join(socket, T)
      const push = channel.push("new_msg", { body: "hi" })
      const res = await outcome(push)
      assert.equal(res.status, "ok")
      assert.deepEqual(res.response, {})
      const R = push.ref
      const sent = rec.events.find(sendMsg({ ref: R }))
      assert.equal(canon(sent.text), v2(J, R, T, "new_msg", { body: "hi" }))
      const rep = rec.events.find(recvMsg({ ref: R, event: "phx_reply" }))
      assert.equal(canon(rep.text), reply(J, R, T, "ok", {}))
      const bc = rec.events.find(recvMsg({ topic: T, event: "new_msg" }))
      assert.ok(bc, "sender receives its own broadcast")
      assert.equal(canon(bc.text), v2(null, null, T, "new_msg", { body: "hi" }))
      assert.ok(bc.index < rep.index, "broadcast copy arrives before the reply")
    })

    it("22: the broadcast reaches every joined client as identical bytes [null,null,T,\"new_msg\",…]", async () => {
      const s = await fx.session()
      const T = "room:22"
      const a = await s.connect({}, { name: "a" })
      const b = await s.connect({}, { name: "b" })
      const c = await s.connect({}, { name: "c" })
      const { channel } = await s.join(a.socket, T)
      await s.join(b.socket, T)
      await s.join(c.socket, T)
      assert.equal((await outcome(channel.push("new_msg", { body: "hi" }))).status, "ok")
      const frames = await Promise.all([a, b, c].map((x) => x.rec.waitFor(recvMsg({ topic: T, event: "new_msg" }), { label: "broadcast" })))
      for (const f of frames) assert.equal(canon(f.text), v2(null, null, T, "new_msg", { body: "hi" }))
      assert.equal(frames[1].text, frames[0].text, "identical bytes for b")
      assert.equal(frames[2].text, frames[0].text, "identical bytes for c")
    })

    it("23: new_msg_from skips the sender's client, reaches others incl. a second connection of the same user", async () => {
      const s = await fx.session()
      const T = "room:23"
      const a = await s.connect({ params: { user_id: "7" } }, { name: "a" })
      const a2 = await s.connect({ params: { user_id: "7" } }, { name: "a2" })
      const b = await s.connect({ params: { user_id: "8" } }, { name: "b" })
      const { channel } = await s.join(a.socket, T)
      await s.join(a2.socket, T)
      await s.join(b.socket, T)
      const res = await outcome(channel.push("new_msg_from", { body: "x" }))
      assert.equal(res.status, "ok")
      for (const x of [a2, b]) {
        const f = await x.rec.waitFor(recvMsg({ topic: T, event: "new_msg_from" }), { label: "broadcast_from copy" })
        assert.equal(canon(f.text), v2(null, null, T, "new_msg_from", { body: "x" }))
      }
      // Marker: broadcasts from the sender's channel reach its own connection in
      // order, so once the marker arrives a new_msg_from copy would have too.
      await outcome(channel.push("new_msg", { body: "marker" }))
      await a.rec.waitFor(recvMsg({ topic: T, event: "new_msg" }), { label: "marker" })
      assert.equal(a.rec.filter(recvMsg({ event: "new_msg_from" })).length, 0, "sender got its own broadcast_from")
    })

    it("24: intercepted `filtered` reaches nobody; `decorated` arrives as a push with each client's own join_ref, keys sorted", async () => {
      const s = await fx.session()
      const T = "room:24"
      const a = await s.connect({}, { name: "a" })
      const b = await s.connect({}, { name: "b" })
      a.socket.channel("room:24-pad").join() // different ref numbering between the two sockets
      const ja = await s.join(a.socket, T)
      const jb = await s.join(b.socket, T)
      assert.notEqual(ja.joinRef, jb.joinRef)
      await s.server.broadcast(T, "filtered", { y: 1 })
      await s.server.broadcast(T, "decorated", { x: 1 })
      for (const [x, J] of [[a, ja.joinRef], [b, jb.joinRef]]) {
        const f = await x.rec.waitFor(recvMsg({ topic: T, event: "decorated" }), { label: "decorated" })
        assert.equal(canon(f.text), v2(J, null, T, "decorated", { decorated: true, x: 1 }))
        assert.ok(f.text.indexOf('"decorated":true') < f.text.indexOf('"x":1'), `keys sorted: ${f.text}`)
      }
      // Both events go through each subscriber's channel (handle_out) in order,
      // so a pushed `filtered` would have arrived before `decorated`.
      await s.server.broadcast(T, "after", {})
      await Promise.all([a, b].map((x) => x.rec.waitFor(recvMsg({ topic: T, event: "after" }), { label: "after" })))
      for (const x of [a, b]) assert.equal(x.rec.filter(recvMsg({ event: "filtered" })).length, 0)
    })

    it("25: async → two phx_reply frames with the same ref ({n:1} then {n:2})", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const T = "room:25"
      const { channel, joinRef: J } = await s.join(socket, T)
      const push = channel.push("async", {})
      const res = await outcome(push)
      assert.deepEqual(res, { status: "ok", response: { n: 1 } })
      const [r1, r2] = await rec.waitForCount(recvMsg({ ref: push.ref, event: "phx_reply" }), 2, { label: "two async replies" })
      assert.equal(canon(r1.text), reply(J, push.ref, T, "ok", { n: 1 }))
      assert.equal(canon(r2.text), reply(J, push.ref, T, "ok", { n: 2 }))
    })

    it("28: a control push with a stale join_ref is dropped by the client; join_ref null is delivered", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect()
      const T = "room:28"
      const { channel, joinRef: J } = await s.join(socket, T)
      const got = []
      channel.on("pushed", (payload) => got.push(payload))
      await s.server.push(T, "pushed", { n: "stale" }, "stale")
      await s.server.push(T, "pushed", { n: "null" }, null)
      await s.server.push(T, "pushed", { n: "own" }, J)
      const frames = await rec.waitForCount(recvMsg({ topic: T, event: "pushed" }), 3, { label: "control pushes" })
      assert.equal(canon(frames[0].text), v2("stale", null, T, "pushed", { n: "stale" }))
      assert.equal(canon(frames[1].text), v2(null, null, T, "pushed", { n: "null" }))
      assert.deepEqual(got, [{ n: "null" }, { n: "own" }])
    })
  })
}

describe("raw: pushes and join_ref", () => {
  const fx = useFixture(RAW)

  it("26: push with a stale join_ref gets nothing; join_ref null on a joined topic is handled", async () => {
    const s = await fx.session()
    const c = await s.raw()
    const T = "room:26"
    c.send("1", "1", T, "phx_join", {})
    await c.waitMsg({ ref: "1" })
    c.send("1", "2", T, "phx_leave", {})
    await c.waitMsg({ event: "phx_close", join_ref: "1" })
    c.send("3", "3", T, "phx_join", {})
    await c.waitMsg({ ref: "3" })
    const mark = c.rec.events.length
    c.send("1", "4", T, "new_msg", { body: "stale" })
    c.send(null, "5", T, "new_msg", { body: "null" })
    const r5 = await c.waitMsg({ ref: "5" })
    assert.equal(canon(r5.text), reply("3", "5", T, "ok", {}))
    // Both go to the same channel in order, so a reply to "4" would precede "5".
    const after = c.rec.received().filter((e) => e.index >= mark)
    assert.equal(after.filter((e) => e.msg?.ref === "4").length, 0, "no reply to the stale push")
    assert.equal(after.filter((e) => e.msg?.payload?.body === "stale").length, 0, "stale push not broadcast")
    assert.ok(after.some((e) => e.msg?.event === "new_msg" && e.msg.payload.body === "null"))
  })

  it("22 (§9): on one topic a V1 subscriber gets the object form, V2 subscribers the same array bytes", async () => {
    const s = await fx.session()
    const T = "room:22-mixed"
    const v1 = await s.raw("")
    const a = await s.raw()
    const b = await s.raw()
    v1.sendRaw(JSON.stringify({ topic: T, event: "phx_join", payload: {}, ref: "1" }))
    await v1.rec.waitFor((e) => e.type === "recv" && e.json?.ref === "1", { label: "V1 join reply" })
    for (const c of [a, b]) {
      c.send("1", "1", T, "phx_join", {})
      await c.waitMsg({ ref: "1" })
    }
    a.send("1", "2", T, "new_msg", { body: "mixed" })
    const fa = await a.waitMsg({ event: "new_msg" })
    const fb = await b.waitMsg({ event: "new_msg" })
    const f1 = await v1.rec.waitFor((e) => e.type === "recv" && e.json?.event === "new_msg", { label: "V1 broadcast" })
    assert.equal(canon(fa.text), v2(null, null, T, "new_msg", { body: "mixed" }))
    assert.equal(fb.text, fa.text)
    assert.equal(canon(f1.text), JSON.stringify({ event: "new_msg", payload: { body: "mixed" }, ref: null, topic: T }))
  })

  it("27: push to a never-joined topic → [null,R,T,\"phx_reply\",{unmatched topic, error}]", async () => {
    const s = await fx.session()
    const c = await s.raw()
    c.send(null, "9", "room:never", "new_msg", {})
    const r = await c.waitMsg({ ref: "9" })
    assert.equal(canon(r.text), reply(null, "9", "room:never", "error", { reason: "unmatched topic" }))
    c.send("4", "10", "room:never", "new_msg", {})
    const r2 = await c.waitMsg({ ref: "10" })
    assert.equal(canon(r2.text), reply(null, "10", "room:never", "error", { reason: "unmatched topic" }))
  })
})
