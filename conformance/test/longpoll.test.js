// Checklist items 45–55: the LongPoll transport (phoenix.js with
// transport: LongPoll over Node's fetch), and the longPollFallbackMs
// fallback when WebSocket is blocked.
import { describe, it } from "node:test"
import assert from "node:assert/strict"
import {
  loadClients, useFixture, RAW, outcome, v2, reply, encodeClientPush, decodeServerBinary, hex, MapStorage,
  waitUntil, quietWindow, httpUpgrade, recvMsg, TestServer,
  FetchRecorder, useFetchRecording, connectLongPoll, trackedLongPoll, lpRequest, RawLongPoll, startProxy,
  dropFetchConnectionsOnCleanup,
} from "../lib/index.js"

const clients = await loadClients()
useFetchRecording()

const isGet = (e) => e.type === "request" && e.method === "GET"
const isPost = (e) => e.type === "request" && e.method === "POST"
const FALLBACK_KEY = "phx:fallback:LongPoll"

for (const client of clients) {
  describe(`phoenix ${client.version}: longpoll`, () => {
    const fx = useFixture(client)

    it("45: the first request is GET /socket/longpoll?vsn=2.0.0& and the answer exactly {\"messages\":[],\"status\":410,\"token\":T} with HTTP 200 and the headers", async () => {
      const s = await fx.session()
      const { rec } = await connectLongPoll(s)
      const first = rec.requests()[0]
      assert.equal(first.method, "GET")
      assert.equal(first.url, `${s.server.origin}/socket/longpoll?vsn=2.0.0&`)
      assert.equal(first.headers.accept, "application/json")
      const res = await rec.responseTo(first)
      assert.equal(res.status, 200)
      assert.match(res.json.token, /^[A-Za-z0-9._-]+$/, "URL-safe token")
      assert.equal(res.text, `{"messages":[],"status":410,"token":"${res.json.token}"}`)
      assert.equal(res.headers["content-type"], "application/json; charset=utf-8")
      assert.equal(res.headers["access-control-allow-origin"], "*")
      assert.equal(res.headers["cache-control"], "no-store")

      // With params, they come first and vsn last.
      const p = await connectLongPoll(s, { params: { token: "abc", user: { id: 7 } } })
      const pf = p.rec.requests()[0]
      assert.equal(pf.url, `${s.server.origin}/socket/longpoll?token=abc&user%5Bid%5D=7&vsn=2.0.0&`)
    })

    it("46: later polls carry &token=<t> (the session token, last, after the app's own token param)", async () => {
      const s = await fx.session()
      const { socket, rec } = await connectLongPoll(s, { params: { token: "abc" } })
      const [, second] = await rec.waitForCount(isGet, 2, { label: "second poll" })
      const t = (await rec.responseTo(rec.requests()[0])).json.token
      assert.equal(second.url, `${s.server.origin}/socket/longpoll?token=abc&vsn=2.0.0&token=${encodeURIComponent(t)}`)
      // The app's token is still the connect param the server saw.
      const { channel } = await s.join(socket, "room:46")
      const info = await outcome(channel.push("info", {}))
      assert.equal(info.response.params.token, "abc")
      // (The ~10 s idle poll answered 204 is checked once, in "raw: longpoll".)
    })

    it("47: a join is a POST (application/x-ndjson) of [J,J,T,\"phx_join\",{}] answered {\"status\":200}; the reply comes in a poll as a JSON string", async () => {
      const s = await fx.session()
      const { socket, rec } = await connectLongPoll(s)
      const token = (await rec.responseTo(rec.requests()[0])).json.token
      const { joinRef: J, status } = await s.join(socket, "room:47")
      assert.equal(status, "ok")
      const post = rec.requests("POST").find((e) => e.body === v2(J, J, "room:47", "phx_join", {}))
      assert.ok(post, `join POST with body [J,J,T,"phx_join",{}]:\n${rec.dump()}`)
      assert.equal(post.headers["content-type"], "application/x-ndjson")
      const pres = await rec.responseTo(post)
      assert.equal(pres.status, 200)
      assert.equal(pres.text, `{"status":200}`)
      const replyText = reply(J, J, "room:47", "ok", {})
      const poll = rec.responses("GET").find((e) => e.json?.messages?.includes(replyText))
      assert.ok(poll, `poll carrying the join reply:\n${rec.dump()}`)
      assert.ok(poll.text.startsWith(`{"messages":[${JSON.stringify(replyText)}`), poll.text)
      assert.ok(poll.text.endsWith(`],"status":200,"token":"${token}"}`), poll.text)
      assert.ok(poll.json.messages.every((m) => typeof m === "string"), "messages are JSON strings")
    })

    it("48: three pushes in one tick go as one POST of three lines; the binary one is base64 of the kind-0 layout; all are handled", async () => {
      const s = await fx.session()
      const { socket, rec } = await connectLongPoll(s)
      const { channel, joinRef: J } = await s.join(socket, "room:48")
      // A WebSocket client of the same topic sees the broadcasts, binary included.
      const ws = await s.connect({}, { name: "ws" })
      await s.join(ws.socket, "room:48")
      const from = rec.events.length
      const pushes = [
        channel.push("new_msg", { n: 1 }),
        channel.push("new_msg", { n: 2 }),
        channel.push("new_msg", new Uint8Array([1, 2]).buffer),
      ]
      const results = await Promise.all(pushes.map((p) => outcome(p)))
      assert.deepEqual(results.map((r) => r.status), ["ok", "ok", "ok"])
      const posts = rec.filter(isPost, from)
      assert.equal(posts.length, 1, `one POST:\n${rec.dump()}`)
      const lines = posts[0].body.split("\n")
      assert.equal(lines.length, 3)
      assert.equal(lines[0], v2(J, pushes[0].ref, "room:48", "new_msg", { n: 1 }))
      assert.equal(lines[1], v2(J, pushes[1].ref, "room:48", "new_msg", { n: 2 }))
      assert.equal(hex(Buffer.from(lines[2], "base64")),
        hex(encodeClientPush({ joinRef: J, ref: pushes[2].ref, topic: "room:48", event: "new_msg", data: [1, 2] })))
      await ws.rec.waitFor(recvMsg({ event: "new_msg", topic: "room:48" }), { label: "text broadcast" })
      const bin = await ws.rec.waitFor((e) => e.type === "recv" && e.binary, { label: "binary broadcast" })
      const d = decodeServerBinary(bin.data)
      assert.deepEqual({ kind: d.kind, topic: d.topic, event: d.event, data: hex(d.data) },
        { kind: 2, topic: "room:48", event: "new_msg", data: "01 02" })
    })

    it("50: a poll with an unknown token gets 410 with a new token; the client errors, closes 3410, starts a new session and rejoins", async (t) => {
      if (client.version === "1.8.0") return t.skip("1.8.0 predates session_gone: it takes the 410 as a fresh open")
      const s = await fx.session()
      const LP = trackedLongPoll(client.LongPoll)
      const { socket, rec } = await connectLongPoll(s, {}, { transport: LP })
      const { channel, joinRef } = await s.join(socket, "room:50a")
      const lp = LP.instances.at(-1)
      const old = lp.token
      // The next poll carries a session token the server never issued; a
      // broadcast ends the poll in flight.
      lp.nextPollToken = "unknown-session"
      const from = rec.events.length
      await s.server.broadcast("room:50a", "wake", {})
      const bad = await rec.waitFor((e) => isGet(e) && e.url.endsWith("token=unknown-session"), { from, label: "poll with the unknown token" })
      const res = await rec.responseTo(bad)
      assert.equal(res.json.status, 410)
      assert.ok(res.json.token && res.json.token !== old && res.json.token !== "unknown-session", "a new token")
      assert.deepEqual(res.json.messages, [])
      const close = await rec.waitFor((e) => e.type === "close", { from, label: "close" })
      assert.equal(close.code, 3410)
      assert.equal(close.reason, "session_gone")
      assert.ok(rec.filter((e) => e.type === "error", from).length >= 1, "error before close")
      await rec.waitFor((e) => isGet(e) && e.url.endsWith("vsn=2.0.0&"), { from, timeout: 3000, label: "new session request" })
      await rec.waitFor((e) => e.type === "open", { from, timeout: 3000, label: "reopen" })
      await waitUntil(() => channel.state === "joined" && channel.joinRef() !== joinRef, { timeout: 5000, label: "rejoin" })
      assert.equal((await outcome(channel.push("new_msg", { after: true }))).status, "ok")
    })

    it("50: a POST with an unknown token gets {\"status\":410}; the client errors, closes 1011, starts a new session and rejoins", async (t) => {
      if (client.version === "1.8.0") return t.skip("1.8.0 predates session_gone: its recovery differs")
      const s = await fx.session()
      const LP = trackedLongPoll(client.LongPoll)
      const { socket, rec } = await connectLongPoll(s, {}, { transport: LP })
      const { channel, joinRef } = await s.join(socket, "room:50b")
      const lp = LP.instances.at(-1)
      lp.nextPostToken = "unknown-session"
      const from = rec.events.length
      channel.push("new_msg", { lost: true })
      const post = await rec.waitFor((e) => isPost(e), { from, label: "POST" })
      assert.ok(post.url.endsWith("token=unknown-session"))
      assert.equal((await rec.responseTo(post)).text, `{"status":410}`)
      const close = await rec.waitFor((e) => e.type === "close", { from, label: "close" })
      assert.equal(close.code, 1011)
      await rec.waitFor((e) => e.type === "open", { from, timeout: 3000, label: "reopen" })
      await waitUntil(() => channel.state === "joined" && channel.joinRef() !== joinRef, { timeout: 5000, label: "rejoin" })
      assert.equal((await outcome(channel.push("new_msg", { after: true }))).status, "ok")
    })

    it("51: a connect refused by the app answers {\"status\":403} with HTTP 200; the client errors, closes 1008 and retries with backoff", async () => {
      const s = await fx.session()
      const { socket, rec } = await connectLongPoll(s, { params: { refuse: "true" } }, { connect: false })
      socket.connect()
      const first = await rec.waitFor(isGet, { label: "GET" })
      const res = await rec.responseTo(first)
      assert.equal(res.status, 200)
      assert.equal(res.text, `{"status":403}`)
      const err = await rec.waitFor((e) => e.type === "error", { label: "error" })
      assert.equal(err.error, 403)
      const close = await rec.waitFor((e) => e.type === "close", { label: "close" })
      assert.equal(close.code, 1008)
      const retry = await rec.waitFor((e) => isGet(e) && e.id > first.id, { timeout: 2000, label: "retry" })
      const gap = retry.t - close.t
      assert.ok(gap >= 5 && gap < 500, `retry ${gap.toFixed(0)} ms after the close, want ~10 (backoff)`)
      assert.equal(rec.filter((e) => e.type === "open").length, 0)
    })

    it("52: with authToken \"tok\" every GET poll carries X-Phoenix-AuthToken: tok, POSTs do not, and connect_info sees tok", async () => {
      const s = await fx.session()
      const { socket, rec } = await connectLongPoll(s, { authToken: "tok" })
      const { channel } = await s.join(socket, "room:52")
      const info = await outcome(channel.push("info", {}))
      assert.equal(info.status, "ok")
      assert.equal(info.response.auth_token, "tok")
      const gets = rec.requests("GET")
      const posts = rec.requests("POST")
      assert.ok(gets.length >= 2 && posts.length >= 2, rec.dump())
      for (const g of gets) assert.equal(g.headers["x-phoenix-authtoken"], "tok", g.url)
      for (const p of posts) assert.equal(p.headers["x-phoenix-authtoken"], undefined, p.body)
    })

    it("fallback: with WebSocket upgrades refused by a proxy, longPollFallbackMs falls back to LongPoll at once, remembers it, and channels work", async () => {
      const s = await fx.session()
      const proxy = await startProxy(s.server.host, { blockUpgrades: true })
      try {
        const storage = new MapStorage()
        const { socket, rec } = await s.connect({ longPollFallbackMs: 2500, sessionStorage: storage }, { connect: false, url: proxy.socketUrl })
        dropFetchConnectionsOnCleanup(s)
        const lp = new FetchRecorder("fallback").install().attach(socket)
        const t0 = performance.now()
        socket.connect()
        await rec.waitFor((e) => e.type === "error", { label: "WebSocket error" })
        await lp.waitFor((e) => e.type === "open", { timeout: 5000, label: "LongPoll open" })
        const firstLP = lp.requests()[0]
        assert.ok(firstLP.url.startsWith(`${proxy.origin}/socket/longpoll?vsn=2.0.0`), firstLP.url)
        assert.ok(firstLP.t - t0 < 2000, `fell back ${(firstLP.t - t0).toFixed(0)} ms after connect: on the error, not the 2.5 s timer`)
        assert.equal(rec.filter((e) => e.type === "open").length, 0, "the WebSocket never opened")
        assert.deepEqual(proxy.log[0], { kind: "upgrade", method: "GET", url: "/socket/websocket?vsn=2.0.0", blocked: true })
        assert.equal(socket.transport, client.LongPoll)
        await waitUntil(() => storage.getItem(FALLBACK_KEY) === "true", { label: "fallback remembered" })
        const { channel, status } = await s.join(socket, "room:fb1")
        assert.equal(status, "ok")
        assert.equal((await outcome(channel.push("new_msg", { over: "longpoll" }))).status, "ok")
        await lp.waitFor((e) => e.type === "recv" && e.msg.event === "new_msg" && e.msg.payload.over === "longpoll", { label: "own broadcast" })
        assert.ok(proxy.log.some((e) => e.kind === "http" && e.method === "POST"), "POSTs went through the proxy")
        assert.equal(rec.filter((e) => e.type === "attempt").length, 1, "one WebSocket attempt only")
      } finally {
        await proxy.close()
      }
    })

    it("fallback: a remembered fallback starts on LongPoll even when WebSocket works", async () => {
      const s = await fx.session()
      const storage = new MapStorage()
      storage.setItem(FALLBACK_KEY, "true")
      const { socket, rec } = await s.connect({ longPollFallbackMs: 2500, sessionStorage: storage }, { connect: false })
      dropFetchConnectionsOnCleanup(s)
      const lp = new FetchRecorder("memorized").install().attach(socket)
      socket.connect()
      await lp.waitFor((e) => e.type === "open", { label: "LongPoll open" })
      assert.equal(rec.filter((e) => e.type === "attempt").length, 0, "no WebSocket attempt")
      assert.equal((await s.join(socket, "room:fb2")).status, "ok")
    })

    it("fallback: through the same proxy with upgrades allowed, the client stays on WebSocket and remembers nothing (cf. item 12)", async () => {
      const s = await fx.session()
      const proxy = await startProxy(s.server.host, { blockUpgrades: false })
      try {
        const storage = new MapStorage()
        const { socket, rec } = await s.connect({ longPollFallbackMs: 2500, sessionStorage: storage }, { url: proxy.socketUrl })
        const lp = new FetchRecorder("no-fallback").install()
        await waitUntil(() => socket.primaryPassedHealthCheck, { timeout: 2000, label: "health check" })
        assert.equal((await s.join(socket, "room:fb3")).status, "ok")
        // The passed health check cleared the fallback timer; a short window
        // makes sure nothing flips the socket to LongPoll afterwards.
        await quietWindow(200)
        assert.notEqual(socket.transport, client.LongPoll)
        assert.equal(storage.getItem(FALLBACK_KEY), null)
        assert.equal(lp.requests().length, 0, "no LongPoll request")
        assert.equal(rec.filter((e) => e.type === "attempt").length, 1)
        assert.deepEqual(proxy.log.map((e) => e.kind), ["upgrade"])
      } finally {
        await proxy.close()
      }
    })
  })
}

describe("raw: longpoll", () => {
  const fx = useFixture(RAW)

  // The server runs with a 2 s window (Phoenix's is 10 s) so that the test
  // takes ~3 s: idle polls are answered after the window, sessions are
  // discarded after 1.5 × window without a poll, as with the defaults.
  const W = 2000
  it("46 + 55: an idle poll is answered 204 after the window; sessions without a poll for 1.5 × window are discarded", async () => {
    const s = await fx.session(["-v", "-longpoll-window", `${W}ms`])
    const t0 = performance.now()
    const idle = new RawLongPoll(s.server)
    const a = new RawLongPoll(s.server)
    const b = new RawLongPoll(s.server)
    await Promise.all([idle.open(), a.open(), b.open()])
    for (const c of [a, b]) {
      assert.equal((await c.post([v2("1", "1", "room:55", "phx_join", {})])).text, `{"status":200}`)
    }
    // 46: a poll with nothing to say is held for the window, then 204.
    const started = performance.now()
    const held = idle.poll().then((r) => ({ r, t: performance.now() }))
    // 55: b is still there after 1.25 × window (a POST does not count as a poll)...
    await quietWindow(1.25 * W - (performance.now() - t0)) // timing item: wait until t0 + 1.25 W
    assert.equal((await b.post([v2(null, "2", "phoenix", "heartbeat", {})])).text, `{"status":200}`, "alive at 1.25 × window")
    const { r, t } = await held
    const waited = t - started
    assert.equal(r.text, `{"messages":[],"status":204,"token":"${idle.token}"}`)
    assert.ok(waited >= 0.95 * W && waited < 1.15 * W + 300, `idle poll answered after ${waited.toFixed(0)} ms, want ~${W}`)
    // ...and both are gone after 1.5 × window without a poll.
    await quietWindow(1.7 * W - (performance.now() - t0)) // timing item: wait until t0 + 1.7 W
    const gone = await a.poll()
    assert.equal(gone.json.status, 410)
    assert.notEqual(gone.json.token, a.token, "a new session")
    assert.equal((await b.post([v2(null, "3", "phoenix", "heartbeat", {})])).text, `{"status":410}`)
    // Their channels terminated with the sessions (checked in the Go tests
    // through OnTerminate; here the server log shows both sessions reaped).
    const reaped = s.server.stderr.split("\n").filter((l) => l.includes("longpoll session idle, closing"))
    assert.ok(reaped.length >= 2, `reaped sessions in the log:\n${s.server.stderr.slice(-2000)}`)
  })

  it("49: a POST of 101 lines handles only the first 100", async () => {
    const s = await fx.session()
    const c = new RawLongPoll(s.server)
    await c.open()
    const lines = Array.from({ length: 101 }, (_, i) => v2(null, `h${i + 1}`, "phoenix", "heartbeat", {}))
    assert.equal((await c.post(lines)).text, `{"status":200}`)
    assert.equal((await c.post([v2(null, "marker", "phoenix", "heartbeat", {})])).text, `{"status":200}`)
    const seen = await c.pollUntil((m) => m[1] === "marker")
    const refs = seen.map((m) => m[1])
    assert.deepEqual(refs, [...Array.from({ length: 100 }, (_, i) => `h${i + 1}`), "marker"])
  })

  it("50: a poll with an unknown token gets 410 and a new token; a POST gets {\"status\":410}; so does a closed session's token", async () => {
    const s = await fx.session()
    const other = await TestServer.start()
    try {
      const foreign = new RawLongPoll(other)
      await foreign.open()
      const closed = new RawLongPoll(s.server, "user_id=50&vsn=2.0.0&")
      await closed.open()
      await s.server.broadcast("users:50", "disconnect", {})
      for (const token of ["bogus", foreign.token, closed.token]) {
        const c = new RawLongPoll(s.server)
        c.token = token
        assert.equal((await c.post([v2(null, "1", "phoenix", "heartbeat", {})])).text, `{"status":410}`, token)
        const r = await c.poll()
        assert.equal(r.status, 200)
        assert.equal(r.json.status, 410, token)
        assert.deepEqual(r.json.messages, [])
        assert.ok(r.json.token && r.json.token !== token, "a new token")
        assert.equal(r.text, `{"messages":[],"status":410,"token":"${r.json.token}"}`)
      }
    } finally {
      await other.stop()
    }
  })

  it("51: refused connect, unsupported vsn and a check_origin failure all answer {\"status\":403} with HTTP 200", async () => {
    const s = await fx.session(["-allowed-origins", "http://good.example"])
    for (const [query, headers] of [
      ["refuse=true&vsn=2.0.0&", {}],
      ["vsn=3.0.0&", {}],
      ["vsn=2.0.0&", { origin: "http://evil.example" }],
    ]) {
      const r = await lpRequest(s.server, { query, headers })
      assert.equal(r.status, 200, query)
      assert.equal(r.text, `{"status":403}`, `${query} ${JSON.stringify(headers)}`)
      assert.equal(r.headers["content-type"], "application/json; charset=utf-8")
    }
    const ok = await lpRequest(s.server, { query: "vsn=2.0.0&", headers: { origin: "http://good.example" } })
    assert.equal(ok.json.status, 410, "an allowed origin gets a session")
  })

  it("53: a poll with the token only in X-Phoenix-Longpoll-Token is accepted", async () => {
    const s = await fx.session()
    const c = new RawLongPoll(s.server)
    await c.open()
    const hdr = { "x-phoenix-longpoll-token": c.token }
    const p = await lpRequest(s.server, {
      method: "POST", query: "vsn=2.0.0", headers: { ...hdr, "content-type": "application/x-ndjson" },
      body: v2(null, "53", "phoenix", "heartbeat", {}),
    })
    assert.equal(p.text, `{"status":200}`)
    const r = await lpRequest(s.server, { query: "vsn=2.0.0", headers: hdr })
    assert.equal(r.text, `{"messages":[${JSON.stringify(reply(null, "53", "phoenix", "ok", {}))}],"status":200,"token":"${c.token}"}`)
  })

  it("54: OPTIONS answers 200 with the CORS headers and the requested headers echoed; PUT answers HTTP 400", async () => {
    const s = await fx.session()
    const url = `${s.server.origin}/socket/longpoll?vsn=2.0.0`
    const o = await httpUpgrade(url, {
      method: "OPTIONS", upgrade: false,
      headers: { "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, x-phoenix-longpoll-token" },
    })
    assert.equal(o.status, 200)
    assert.equal(o.body, "")
    assert.equal(o.headers["access-control-allow-methods"], "get, post, options")
    assert.equal(o.headers["access-control-allow-headers"], "content-type, x-phoenix-longpoll-token")
    assert.equal(o.headers["access-control-max-age"], "3600")
    assert.equal(o.headers["access-control-allow-origin"], "*")
    const put = await httpUpgrade(url, { method: "PUT", upgrade: false })
    assert.equal(put.status, 400)
    assert.equal(put.body, "")
  })
})
