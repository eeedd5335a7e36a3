// Checklist items 1–8: handshake and URL.
import { describe, it } from "node:test"
import assert from "node:assert/strict"
import { loadClients, useFixture, RAW, httpUpgrade, outcome, deferred, withTimeout, canon } from "../lib/index.js"

const clients = await loadClients()

for (const client of clients) {
  describe(`phoenix ${client.version}: handshake`, () => {
    const fx = useFixture(client)

    it("1: requests /socket/websocket?vsn=2.0.0, gets 101 without Sec-WebSocket-Protocol", async () => {
      const s = await fx.session()
      const { rec } = await s.connect()
      const attempt = rec.events.find((e) => e.type === "attempt")
      const u = new URL(attempt.url)
      assert.equal(u.pathname + u.search, "/socket/websocket?vsn=2.0.0")
      assert.equal(attempt.protocols, null, "client offered no subprotocols")
      const up = rec.events.find((e) => e.type === "upgrade")
      assert.equal(up.status, 101)
      assert.equal(up.headers["sec-websocket-protocol"], undefined)
    })

    it("2: connect params arrive decoded Plug-style, values as strings, vsn included", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect({ params: { token: "abc", user: { id: 7 } } })
      const u = new URL(rec.events.find((e) => e.type === "attempt").url)
      assert.equal(u.search, "?token=abc&user%5Bid%5D=7&vsn=2.0.0")
      const { channel, status } = await s.join(socket, "room:info")
      assert.equal(status, "ok")
      const info = await outcome(channel.push("info", {}))
      assert.equal(info.status, "ok")
      assert.deepEqual(info.response.params, { token: "abc", user: { id: "7" }, vsn: "2.0.0" })
      assert.equal(info.response.auth_token, null)
      assert.equal(info.response.socket_id, null, "no user_id param → no socket id")
    })

    it("2 (§1.2): arrays become maps with numeric keys, empty strings stay empty", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect({ params: { user: { id: 7, tags: ["x", "y"] }, empty: "" } })
      const u = new URL(rec.events.find((e) => e.type === "attempt").url)
      assert.equal(u.search, "?user%5Bid%5D=7&user%5Btags%5D%5B0%5D=x&user%5Btags%5D%5B1%5D=y&empty=&vsn=2.0.0")
      const { channel } = await s.join(socket, "room:info")
      const info = await outcome(channel.push("info", {}))
      assert.deepEqual(info.response.params, { user: { id: "7", tags: { 0: "x", 1: "y" } }, empty: "", vsn: "2.0.0" })
    })

    it("2 (test app): user_id param gives socket id users:<id>", async () => {
      const s = await fx.session()
      const { socket } = await s.connect({ params: { user_id: "7" } })
      const { channel } = await s.join(socket, "room:info")
      const info = await outcome(channel.push("info", {}))
      assert.equal(info.response.socket_id, "users:7")
      assert.deepEqual(info.response.params, { user_id: "7", vsn: "2.0.0" })
    })

    it("3: authToken is offered as phoenix,base64url.bearer.phx.<b64>, echoed as phoenix, visible as auth_token", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect({ authToken: "s3cret+/=?" }, { connect: false })
      const opened = deferred()
      socket.onOpen(() => opened.resolve())
      socket.connect()
      await withTimeout(opened.promise, 3000, "onOpen")
      const attempt = rec.events.find((e) => e.type === "attempt")
      assert.deepEqual(attempt.protocols, ["phoenix", "base64url.bearer.phx.czNjcmV0Ky89Pw"])
      // ws sends the offered list joined by "," in the Sec-WebSocket-Protocol request header.
      assert.equal(attempt.protocols.join(","), "phoenix,base64url.bearer.phx.czNjcmV0Ky89Pw")
      const up = rec.events.find((e) => e.type === "upgrade")
      assert.equal(up.status, 101)
      assert.equal(up.headers["sec-websocket-protocol"], "phoenix")
      assert.equal(socket.conn.protocol, "phoenix")
      const { channel } = await s.join(socket, "room:auth")
      const info = await outcome(channel.push("info", {}))
      assert.equal(info.response.auth_token, "s3cret+/=?")
      assert.equal(info.response.params.vsn, "2.0.0")
    })

    it("4: vsn 3.0.0 → onError then onClose 1006, retries after ~10 ms, ~50 ms", async () => {
      const s = await fx.session()
      const { socket, rec } = await s.connect({ vsn: "3.0.0" }, { connect: false })
      const calls = []
      socket.onError(() => calls.push("error"))
      socket.onClose((ev) => calls.push(`close:${ev.code}`))
      socket.connect()
      const attempts = await rec.waitForCount((e) => e.type === "attempt", 3, { timeout: 3000, label: "3 connection attempts" })
      socket.disconnect()
      assert.match(new URL(attempts[0].url).search, /vsn=3\.0\.0$/)
      const closes = rec.filter((e) => e.type === "close")
      assert.ok(closes.length >= 2, rec.dump())
      assert.equal(closes[0].code, 1006)
      assert.equal(closes[1].code, 1006)
      const errs = rec.filter((e) => e.type === "error" && e.conn === 1)
      assert.match(errs[0].message, /403/, "handshake refused with HTTP 403")
      assert.deepEqual(calls.slice(0, 4), ["error", "close:1006", "error", "close:1006"])
      const gap1 = attempts[1].t - closes[0].t
      const gap2 = attempts[2].t - closes[1].t
      // Default schedule 10, 50, 100… ms; loose bounds for a loaded 2-core machine.
      assert.ok(gap1 >= 5 && gap1 < 150, `first retry after ${gap1.toFixed(1)} ms, want ~10`)
      assert.ok(gap2 >= 40 && gap2 < 250, `second retry after ${gap2.toFixed(1)} ms, want ~50`)
      assert.ok(rec.filter((e) => e.type === "open").length === 0, "never opened")
    })
  })
}

describe("raw: handshake", () => {
  const fx = useFixture(RAW)

  for (const vsn of ["3.0.0", "2.1.0", "abc"]) {
    it(`4: raw upgrade with vsn=${vsn} gets HTTP 403`, async () => {
      const s = await fx.session()
      const res = await httpUpgrade(`${s.server.wsUrl}?vsn=${vsn}`)
      assert.equal(res.status, 403)
    })
  }

  for (const q of ["vsn=2", "vsn%5B%5D=x", "vsn=1.1.0"]) {
    it(`§1.3: raw upgrade with ${q} gets HTTP 403`, async () => {
      const s = await fx.session()
      const res = await httpUpgrade(`${s.server.wsUrl}?${q}`)
      assert.equal(res.status, 403)
    })
  }

  for (const vsn of ["2.0.0", "2.0.5", "1.0.0"]) {
    it(`§1.3: raw upgrade with vsn=${vsn} is accepted`, async () => {
      const s = await fx.session()
      const res = await httpUpgrade(`${s.server.wsUrl}?vsn=${vsn}`)
      assert.equal(res.status, 101)
    })
  }

  it("5: without vsn the server speaks V1 JSON objects", async () => {
    const s = await fx.session()
    const c = await s.raw("")
    c.sendRaw(JSON.stringify({ topic: "room:v1", event: "phx_join", payload: {}, ref: "1" }))
    const joinReply = await c.rec.waitFor((e) => e.type === "recv" && e.json?.ref === "1", { label: "V1 join reply" })
    assert.equal(canon(joinReply.text), '{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:v1"}')
    const joined = await c.rec.waitFor((e) => e.type === "recv" && e.json?.event === "joined", { label: "V1 joined push" })
    assert.equal(canon(joined.text), '{"event":"joined","payload":{"status":"connected"},"ref":null,"topic":"room:v1"}')
    c.sendRaw(JSON.stringify({ topic: "phoenix", event: "heartbeat", payload: {}, ref: "2" }))
    const hb = await c.rec.waitFor((e) => e.type === "recv" && e.json?.ref === "2", { label: "V1 heartbeat reply" })
    assert.equal(canon(hb.text), '{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"2","topic":"phoenix"}')
    c.sendRaw(JSON.stringify({ topic: "room:v1", event: "new_msg", payload: { body: "hi" }, ref: "3" }))
    await c.rec.waitFor((e) => e.type === "recv" && e.json?.ref === "3", { label: "V1 new_msg reply" })
    for (const e of c.rec.received()) {
      assert.equal(e.binary, false)
      assert.ok(e.json && !Array.isArray(e.json), `V1 frame must be an object: ${e.text}`)
      assert.ok(!("join_ref" in e.json), `V1 frames carry no join_ref: ${e.text}`)
    }
  })

  it("6: Origin not in the allowed list gets 403; no Origin or an allowed one succeeds", async () => {
    const s = await fx.session(["-allowed-origins", "http://allowed.example"])
    const evil = await httpUpgrade(`${s.server.wsUrl}?vsn=2.0.0`, { headers: { Origin: "http://evil.example" } })
    assert.equal(evil.status, 403)
    assert.equal(evil.body, "")
    const none = await httpUpgrade(`${s.server.wsUrl}?vsn=2.0.0`)
    assert.equal(none.status, 101)
    const ok = await httpUpgrade(`${s.server.wsUrl}?vsn=2.0.0`, { headers: { Origin: "http://allowed.example" } })
    assert.equal(ok.status, 101)
    const same = await httpUpgrade(`${s.server.wsUrl}?vsn=2.0.0`, { headers: { Origin: s.server.origin } })
    assert.equal(same.status, 101, "same-host origin allowed")
    const nullOrigin = await httpUpgrade(`${s.server.wsUrl}?vsn=2.0.0`, { headers: { Origin: "null" } })
    assert.equal(nullOrigin.status, 403, "an Origin without a host is rejected (§1.5)")
  })

  it("§1.5: origin list entries compare only the parts they name; *.x matches x and its subdomains", async () => {
    const s = await fx.session(["-allowed-origins", "//*.other.com,https://example.com,//another.com:888"])
    const cases = [
      ["https://a.other.com", 101], ["http://other.com", 101], ["http://xother.com", 403],
      ["http://example.com", 403], ["https://example.com:8443", 101],
      ["http://another.com:888", 101], ["http://another.com:889", 403], ["http://another.com", 403],
    ]
    for (const [origin, want] of cases) {
      const res = await httpUpgrade(`${s.server.wsUrl}?vsn=2.0.0`, { headers: { Origin: origin } })
      assert.equal(res.status, want, `Origin ${origin}`)
    }
  })

  it("§1.4 step 5: offered subprotocols that include phoenix get phoenix echoed; none acceptable → 403", async () => {
    const s = await fx.session()
    const url = `${s.server.wsUrl}?vsn=2.0.0`
    const both = await httpUpgrade(url, { headers: { "Sec-WebSocket-Protocol": "foo, phoenix" } })
    assert.equal(both.status, 101)
    assert.equal(both.headers["sec-websocket-protocol"], "phoenix")
    // With auth tokens enabled the allowed list is ["phoenix"]; Phoenix refuses
    // a client whose offer contains nothing from it.
    const foo = await httpUpgrade(url, { headers: { "Sec-WebSocket-Protocol": "foo" } })
    assert.equal(foo.status, 403)
  })

  it("7: a connect refused by the app gets HTTP 403 with an empty body", async () => {
    const s = await fx.session()
    const res = await httpUpgrade(`${s.server.wsUrl}?refuse=true&vsn=2.0.0`)
    assert.equal(res.status, 403)
    assert.equal(res.body, "")
  })

  it("8: a non-GET request to /socket/websocket gets HTTP 400", async () => {
    const s = await fx.session()
    const res = await httpUpgrade(`${s.server.wsUrl}?vsn=2.0.0`, { method: "POST", headers: { "Content-Length": "0" } })
    assert.equal(res.status, 400)
  })
})
