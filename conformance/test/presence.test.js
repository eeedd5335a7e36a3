// Checklist items 56–58: Presence, with the JS Presence class of each
// client version; plus two servers sharing a broker (issue 7).
import { describe, it, after } from "node:test"
import assert from "node:assert/strict"
import { loadClients, useFixture, outcome, recvMsg, deferred, withTimeout, uniqueTopic, Session } from "../lib/index.js"
import { TestServer } from "../lib/server.js"
import { startBroker } from "../lib/broker.js"

const clients = await loadClients()
const REF = /^[A-Za-z0-9_-]{16}$/

/** A channel on `topic` with a Presence that records its syncs. */
function presenceChannel(client, socket, topic, params = {}) {
  const channel = socket.channel(topic, params)
  const presence = new client.Presence(channel)
  const listeners = new Set()
  presence.onSync(() => { for (const l of [...listeners]) l() })
  /** Resolves with the list once a sync leaves it satisfying `pred`. */
  const synced = (pred, label = "presence sync") => {
    const d = deferred()
    const check = () => { const l = list(presence); if (pred(l)) { listeners.delete(check); d.resolve(l) } }
    listeners.add(check)
    if (presence.joinRef === channel.joinRef()) check() // already in sync
    return withTimeout(d.promise, 5000, label).finally(() => listeners.delete(check))
  }
  return { channel, presence, synced }
}

/** {key: [meta…]} of a Presence, keys sorted. */
function list(presence) {
  const out = {}
  for (const [k, metas] of presence.list((k, { metas }) => [k, metas]).sort(([a], [b]) => a.localeCompare(b))) out[k] = metas
  return out
}

const statuses = (l) => Object.fromEntries(Object.entries(l).map(([k, ms]) => [k, ms.map((m) => m.status)]))

for (const client of clients) {
  describe(`phoenix ${client.version}: presence`, () => {
    const fx = useFixture(client)

    it("56: presence_state [J,null,T,…] after join, presence_diff [null,null,T,…] per change; two lists converge", async () => {
      const s = await fx.session()
      const T = uniqueTopic("56", "presence")
      const a = await s.connect({ params: { user_id: "a" } }, { name: "A" })
      const b = await s.connect({ params: { user_id: "b" } }, { name: "B" })
      const pa = presenceChannel(client, a.socket, T)
      assert.equal((await outcome(pa.channel.join())).status, "ok")
      const J = pa.channel.joinRef()

      const state = await a.rec.waitFor(recvMsg({ topic: T, event: "presence_state" }), { label: "presence_state" })
      assert.equal(state.msg.join_ref, J)
      assert.equal(state.msg.ref, null)
      assert.deepEqual(state.msg.payload, {}, "pushed before the own track")
      const own = await a.rec.waitFor(recvMsg({ topic: T, event: "presence_diff" }), { from: state.index, label: "own join diff" })
      assert.equal(own.msg.join_ref, null)
      assert.equal(own.msg.ref, null)
      assert.deepEqual(Object.keys(own.msg.payload), ["joins", "leaves"], `keys in order: ${own.text}`)
      assert.deepEqual(own.msg.payload.leaves, {})
      const [aMeta] = own.msg.payload.joins.a.metas
      assert.equal(aMeta.status, "online")
      assert.match(aMeta.phx_ref, REF)

      const pb = presenceChannel(client, b.socket, T)
      assert.equal((await outcome(pb.channel.join())).status, "ok")
      const stateB = await b.rec.waitFor(recvMsg({ topic: T, event: "presence_state" }), { label: "B presence_state" })
      assert.equal(stateB.msg.join_ref, pb.channel.joinRef())
      assert.deepEqual(stateB.msg.payload, { a: { metas: [aMeta] } })
      const joinB = await a.rec.waitFor((e) => recvMsg({ topic: T, event: "presence_diff" })(e) && e.msg.payload.joins.b, { label: "A sees B join" })
      assert.deepEqual(Object.keys(joinB.msg.payload), ["joins", "leaves"])

      const want = (l) => Object.keys(l).length === 2
      const [la, lb] = await Promise.all([pa.synced(want, "A list"), pb.synced(want, "B list")])
      assert.deepEqual(la, lb)
      assert.deepEqual(statuses(la), { a: ["online"], b: ["online"] })

      // B leaves: A gets the leave, the lists converge again.
      await outcome(pb.channel.leave())
      const leave = await a.rec.waitFor((e) => recvMsg({ topic: T, event: "presence_diff" })(e) && e.msg.payload.leaves.b, { label: "B leave diff" })
      assert.deepEqual(leave.msg.payload.joins, {})
      assert.deepEqual(statuses(await pa.synced((l) => !l.b, "A list without B")), { a: ["online"] })
    })

    it("57: update → one diff, new meta (phx_ref_prev = old) in joins and old in leaves; one meta kept", async () => {
      const s = await fx.session()
      const T = uniqueTopic("57", "presence")
      const a = await s.connect({ params: { user_id: "a" } }, { name: "A" })
      const b = await s.connect({ params: { user_id: "b" } }, { name: "B" })
      const pa = presenceChannel(client, a.socket, T)
      await outcome(pa.channel.join())
      const own = await a.rec.waitFor(recvMsg({ topic: T, event: "presence_diff" }), { label: "own join" })
      const old = own.msg.payload.joins.a.metas[0]
      const pb = presenceChannel(client, b.socket, T)
      await outcome(pb.channel.join())
      await pb.synced((l) => l.a && l.b, "B sees both")

      const mark = a.rec.events.length
      assert.equal((await outcome(pa.channel.push("away", {}))).status, "ok")
      const upd = await a.rec.waitFor((e) => recvMsg({ topic: T, event: "presence_diff" })(e) && e.msg.payload.joins.a, { from: mark, label: "update diff" })
      assert.deepEqual(Object.keys(upd.msg.payload), ["joins", "leaves"])
      const [neu] = upd.msg.payload.joins.a.metas
      assert.equal(neu.status, "away")
      assert.match(neu.phx_ref, REF)
      assert.notEqual(neu.phx_ref, old.phx_ref)
      assert.equal(neu.phx_ref_prev, old.phx_ref)
      assert.deepEqual(upd.msg.payload.leaves, { a: { metas: [old] } })

      for (const p of [pa, pb]) {
        const l = await p.synced((l) => l.a?.[0]?.status === "away", "away applied")
        assert.equal(l.a.length, 1, "exactly one meta for a")
        assert.equal(l.a[0].phx_ref, neu.phx_ref)
      }
    })

    it("58: after a forced reconnect, a fresh presence_state with the new join ref; earlier diffs applied after it", async () => {
      const s = await fx.session()
      const T = uniqueTopic("58", "presence")
      // track_first: the server tracks before pushing the state, so the
      // own join diff arrives before presence_state and must be buffered.
      const a = await s.connect({ params: { user_id: "a" } }, { name: "A" })
      const b = await s.connect({ params: { user_id: "b" } }, { name: "B" })
      const pa = presenceChannel(client, a.socket, T, { track_first: true })
      await outcome(pa.channel.join())
      const J1 = pa.channel.joinRef()
      const pb = presenceChannel(client, b.socket, T)
      await outcome(pb.channel.join())
      const l1 = await pa.synced((l) => l.a && l.b, "A sees both")
      const oldRef = l1.a[0].phx_ref

      await s.server.broadcast("users:a", "disconnect") // closes A's connection; the client reconnects and rejoins
      const rejoin = await a.rec.waitFor((e) => e.type === "send" && e.conn === 2 && e.msg?.event === "phx_join" && e.msg.topic === T, { timeout: 5000, label: "rejoin" })
      const J2 = rejoin.msg.join_ref
      assert.notEqual(J2, J1)
      const state = await a.rec.waitFor(recvMsg({ topic: T, event: "presence_state" }, 2), { label: "fresh presence_state" })
      assert.equal(state.msg.join_ref, J2)
      const before = a.rec.filter((e) => recvMsg({ topic: T, event: "presence_diff" }, 2)(e) && e.index < state.index)
      assert.ok(before.length >= 1, "a diff arrived before the state")
      assert.ok(before.some((e) => e.msg.payload.joins.a), "the own join diff came first")

      // The state and the buffered diffs give one new meta for a and b's meta.
      const l2 = await pa.synced((l) => l.a?.length === 1 && l.a[0].phx_ref !== oldRef && l.b?.length === 1, "A list after rejoin")
      assert.deepEqual(statuses(l2), { a: ["online"], b: ["online"] })
      assert.equal(pa.presence.joinRef, J2)
      // B saw the old meta leave and the new one join.
      const lb = await pb.synced((l) => l.a?.length === 1 && l.a[0].phx_ref === l2.a[0].phx_ref, "B list after A's rejoin")
      assert.deepEqual(lb, l2)
      // Diffs after the state apply at once (the Presence is not stuck pending).
      await outcome(pb.channel.push("away", {}))
      assert.deepEqual(statuses(await pa.synced((l) => l.b?.[0]?.status === "away", "B away on A")), { a: ["online"], b: ["away"] })
    })
  })
}

const [newest] = clients.slice(-1)
for (const kind of ["redis", "nats"]) {
  describe(`presence over two servers and ${kind} (phoenix ${newest.version})`, () => {
    it("both lists converge; a killed node's presences leave after the node timeout; a new node joins the list", { timeout: 30000 }, async (t) => {
      const broker = await startBroker(kind)
      if (!broker) { t.skip(`${kind} binary not installed`); return }
      const nodes = []
      const sessions = []
      const saved = process.env.PYRE_PRESENCE_HEARTBEAT
      process.env.PYRE_PRESENCE_HEARTBEAT = "200ms" // node timeout 1 s
      after(async () => {
        for (const s of sessions) s.cleanup()
        await Promise.all(nodes.map((n) => n.stop()))
        await broker.stop()
      })
      try {
        for (let i = 0; i < 2; i++) nodes.push(await TestServer.start(["-pubsub", broker.url]))
      } finally {
        if (saved === undefined) delete process.env.PYRE_PRESENCE_HEARTBEAT
        else process.env.PYRE_PRESENCE_HEARTBEAT = saved
      }
      const [sa, sb] = nodes.map((n) => new Session(n, newest))
      sessions.push(sa, sb)
      const T = `presence:two-nodes-${kind}`
      const a = await sa.connect({ params: { user_id: "a" } }, { name: "A" })
      const b = await sb.connect({ params: { user_id: "b" } }, { name: "B" })
      const pa = presenceChannel(newest, a.socket, T)
      const pb = presenceChannel(newest, b.socket, T)
      await outcome(pa.channel.join())
      await outcome(pb.channel.join())
      const both = (l) => l.a?.length === 1 && l.b?.length === 1
      const [la, lb] = await Promise.all([pa.synced(both, "A sees both"), pb.synced(both, "B sees both")])
      assert.deepEqual(la, lb)

      const killed = Date.now()
      nodes[1].proc.kill("SIGKILL") // no goodbye: node A must time node B out
      await nodes[1].exited
      const l = await pa.synced((l) => !l.b, "B's presence leaves")
      const waited = Date.now() - killed
      assert.deepEqual(statuses(l), { a: ["online"] })
      assert.ok(waited >= 800, `left after ${waited} ms, before the 1 s node timeout`)

      process.env.PYRE_PRESENCE_HEARTBEAT = "200ms"
      try {
        nodes.push(await TestServer.start(["-pubsub", broker.url]))
      } finally {
        if (saved === undefined) delete process.env.PYRE_PRESENCE_HEARTBEAT
        else process.env.PYRE_PRESENCE_HEARTBEAT = saved
      }
      const sc = new Session(nodes[2], newest)
      sessions.push(sc)
      const c = await sc.connect({ params: { user_id: "c" } }, { name: "C" })
      const pc = presenceChannel(newest, c.socket, T)
      await outcome(pc.channel.join())
      const ac = (l) => l.a?.length === 1 && l.c?.length === 1 && !l.b
      const [la2, lc] = await Promise.all([pa.synced(ac, "A sees C"), pc.synced(ac, "C sees A")])
      assert.deepEqual(la2, lc)
    })
  })
}
