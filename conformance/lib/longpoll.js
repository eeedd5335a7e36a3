// LongPoll helpers: a recorder of the HTTP requests phoenix.js makes through
// global fetch, a LongPoll socket factory, raw LongPoll requests, and an
// HTTP proxy that refuses WebSocket upgrades (a network where WebSocket is
// blocked).
import http from "node:http"
import net from "node:net"
import { afterEach } from "node:test"
import { Recorder } from "./recorder.js"
import { withTimeout } from "./wait.js"

const installed = new Set()

/**
 * Records every request made through globalThis.fetch while installed
 * (phoenix.js looks fetch up on each request). Events:
 *   request  {id, method, url, headers, body}
 *   response {id, method, url, status, headers, text, json}
 *   failure  {id, method, url, message}      (network error or abort)
 *   open / close {code, reason} / error {error} / recv {msg}   from attach()
 * Header names are lower-case. Uninstalled after each test by useFetchRecording().
 */
export class FetchRecorder extends Recorder {
  constructor(name = "fetch") {
    super(name)
    this.nextId = 0
  }

  install() {
    const orig = globalThis.fetch
    this.orig = orig
    globalThis.fetch = async (input, init = {}) => {
      const id = ++this.nextId
      const method = (init.method ?? "GET").toUpperCase()
      const url = String(input)
      const headers = {}
      for (const [k, v] of new Headers(init.headers ?? {})) headers[k] = v
      this.add({ type: "request", id, method, url, headers, body: init.body ?? null })
      let res, text
      try {
        res = await orig(input, init)
        text = await res.text()
      } catch (err) {
        this.add({ type: "failure", id, method, url, message: err.name === "AbortError" ? "abort" : err.message })
        throw err
      }
      let json
      try { json = JSON.parse(text) } catch { json = undefined }
      const rh = {}
      for (const [k, v] of res.headers) rh[k] = v
      this.add({ type: "response", id, method, url, status: res.status, headers: rh, text, json })
      const nullBody = [101, 103, 204, 205, 304].includes(res.status)
      return new Response(nullBody ? null : text, { status: res.status, statusText: res.statusText, headers: res.headers })
    }
    installed.add(this)
    return this
  }

  uninstall() {
    if (this.orig && installed.has(this)) {
      globalThis.fetch = this.orig
      installed.delete(this)
    }
  }

  /** Logs the socket's open/close/error events and every decoded message. */
  attach(socket) {
    socket.onOpen(() => this.add({ type: "open" }))
    socket.onClose((e) => this.add({ type: "close", code: e?.code, reason: e?.reason }))
    socket.onError((error) => this.add({ type: "error", error }))
    socket.onMessage((msg) => this.add({ type: "recv", msg }))
    return this
  }

  requests(method) { return this.events.filter((e) => e.type === "request" && (!method || e.method === method)) }
  responses(method) { return this.events.filter((e) => e.type === "response" && (!method || e.method === method)) }
  /** The response to request event `req`. */
  responseTo(req, opts = {}) {
    return this.waitFor((e) => (e.type === "response" || e.type === "failure") && e.id === req.id, { label: `response to #${req.id}`, ...opts })
  }

  dump(last = 40) {
    return this.events.slice(-last).map((e) => {
      switch (e.type) {
        case "request": return `#${e.index} → ${e.method} ${e.url} ${e.body ?? ""}`
        case "response": return `#${e.index} ← ${e.method} ${e.status} ${e.text}`
        case "recv": return `#${e.index} recv ${JSON.stringify(e.msg)}`
        default: return `#${e.index} ${e.type} ${e.code ?? ""} ${e.message ?? e.error ?? ""}`
      }
    }).join("\n")
  }
}

/** Call once per file: uninstalls the fetch recorders of each test after it. */
export function useFetchRecording() {
  afterEach(() => {
    for (const r of [...installed].reverse()) r.uninstall()
  })
}

const undiciDispatcher = Symbol.for("undici.globalDispatcher.1")

/**
 * Makes `session.cleanup()` drop the connections Node's fetch keeps in its
 * pool (after the sockets are disconnected). A request aborted while its
 * connection was being set up leaves a connection on which no request was
 * ever sent; net/http's Shutdown waits up to 5 s for such a connection, so
 * the server would not stop in time. Uses undici's global-dispatcher slot,
 * which setGlobalDispatcher also writes; does nothing where it is absent.
 */
export function dropFetchConnectionsOnCleanup(session) {
  // Kept last in session.sockets, so it runs after every socket disconnected.
  const dropper = session.fetchDropper ?? {
    reconnectTimer: { reset() {} },
    channels: [],
    disconnect() {
      const d = globalThis[undiciDispatcher]
      if (!d || typeof d.destroy !== "function") return
      globalThis[undiciDispatcher] = new d.constructor()
      d.destroy().catch(() => {})
    },
  }
  session.fetchDropper = dropper
  const i = session.sockets.indexOf(dropper)
  if (i >= 0) session.sockets.splice(i, 1)
  session.sockets.push(dropper)
}

/**
 * A phoenix.js Socket on the LongPoll transport of `session`'s server, its
 * fetches and events recorded. Unless `connect: false`, connects and waits
 * for onOpen. Returns {socket, rec}.
 */
export async function connectLongPoll(session, opts = {}, { connect = true, url, transport } = {}) {
  const rec = new FetchRecorder(`lp@${session.client.version}`).install()
  const socket = new session.client.Socket(url ?? session.server.socketUrl, { transport: transport ?? session.client.LongPoll, ...opts })
  rec.attach(socket)
  session.sockets.push(socket)
  dropFetchConnectionsOnCleanup(session)
  if (connect) {
    socket.connect()
    await rec.waitFor((e) => e.type === "open", { label: "longpoll open" })
  }
  return { socket, rec }
}

/**
 * A LongPoll subclass that keeps its instances, so that tests can reach the
 * live transport, and that can send its next poll (nextPollToken) or next
 * POST (nextPostToken) with a session token of the test's choosing, as a
 * client whose session the server lost would.
 */
export function trackedLongPoll(LongPoll) {
  const T = class TrackedLongPoll extends LongPoll {
    constructor(...args) {
      super(...args)
      this.nextPollToken = null
      this.nextPostToken = null
      T.instances.push(this)
    }

    poll() {
      if (this.nextPollToken) { this.token = this.nextPollToken; this.nextPollToken = null }
      return super.poll()
    }

    batchSend(...args) {
      if (this.nextPostToken) { this.token = this.nextPostToken; this.nextPostToken = null }
      return super.batchSend(...args)
    }
  }
  T.instances = []
  return T
}

/**
 * One raw LongPoll request with fetch (bypassing recorders):
 * {status, headers, text, json}. `query` is appended to /socket/longpoll?.
 */
export async function lpRequest(server, { method = "GET", query = "vsn=2.0.0&", headers = {}, body, timeout = 15000 } = {}) {
  const res = await withTimeout(fetch(`${server.origin}/socket/longpoll?${query}`, { method, headers, body }), timeout, `${method} longpoll`)
  const text = await res.text()
  let json
  try { json = JSON.parse(text) } catch { json = undefined }
  const h = {}
  for (const [k, v] of res.headers) h[k] = v
  return { status: res.status, headers: h, text, json }
}

/** A raw LongPoll session: open(), poll(), post(lines). */
export class RawLongPoll {
  constructor(server, params = "vsn=2.0.0&") {
    this.server = server
    this.params = params
    this.token = null
  }

  get query() { return this.token ? `${this.params}token=${encodeURIComponent(this.token)}` : this.params }

  async open() {
    const r = await lpRequest(this.server, { query: this.params })
    if (r.json?.status !== 410) throw new Error(`no session: ${r.status} ${r.text}`)
    this.token = r.json.token
    return r
  }

  poll(opts = {}) { return lpRequest(this.server, { query: this.query, ...opts }) }

  post(lines, opts = {}) {
    return lpRequest(this.server, {
      method: "POST", query: this.query, headers: { "content-type": "application/x-ndjson" }, body: lines.join("\n"), ...opts,
    })
  }

  /** Polls until a message (parsed V2 array) matches `pred`; returns all parsed messages seen. */
  async pollUntil(pred, { polls = 20 } = {}) {
    const seen = []
    for (let i = 0; i < polls; i++) {
      const r = await this.poll()
      if (r.json?.status !== 200 && r.json?.status !== 204) throw new Error(`poll: ${r.text}`)
      for (const m of r.json.messages) {
        const v = JSON.parse(m)
        seen.push(v)
        if (pred(v)) return seen
      }
    }
    throw new Error(`no matching message in ${JSON.stringify(seen)}`)
  }
}

/**
 * An HTTP proxy in front of `target` ("127.0.0.1:PORT") that forwards plain
 * HTTP requests and, while `blockUpgrades` is true, answers every WebSocket
 * upgrade with HTTP 403 (as a corporate proxy that blocks WebSocket would);
 * otherwise it tunnels the upgrade. `log` lists {kind: "http"|"upgrade", method, url, blocked}.
 */
export async function startProxy(target, { blockUpgrades = true } = {}) {
  const [host, port] = target.split(":")
  const sockets = new Set()
  const proxy = {
    blockUpgrades,
    log: [],
    async close() {
      for (const s of sockets) s.destroy()
      server.closeAllConnections?.()
      await new Promise((r) => server.close(() => r()))
    },
  }
  const server = http.createServer((req, res) => {
    proxy.log.push({ kind: "http", method: req.method, url: req.url })
    const up = http.request({ host, port, method: req.method, path: req.url, headers: req.headers, agent: false }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers)
      ur.pipe(res)
    })
    up.on("error", () => res.destroy())
    res.on("close", () => up.destroy())
    req.pipe(up)
  })
  server.on("connection", (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)) })
  server.on("upgrade", (req, socket, head) => {
    const blocked = proxy.blockUpgrades
    proxy.log.push({ kind: "upgrade", method: req.method, url: req.url, blocked })
    if (blocked) {
      socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
      return
    }
    const up = net.connect(Number(port), host, () => {
      let head1 = `${req.method} ${req.url} HTTP/1.1\r\n`
      for (let i = 0; i < req.rawHeaders.length; i += 2) head1 += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`
      up.write(head1 + "\r\n")
      if (head.length) up.write(head)
      up.pipe(socket)
      socket.pipe(up)
    })
    sockets.add(up)
    up.on("close", () => { sockets.delete(up); socket.destroy() })
    up.on("error", () => socket.destroy())
    socket.on("error", () => up.destroy())
    socket.on("close", () => up.destroy())
  })
  await new Promise((r) => server.listen(0, "127.0.0.1", r))
  const { port: p } = server.address()
  proxy.host = `127.0.0.1:${p}`
  proxy.origin = `http://${proxy.host}`
  proxy.socketUrl = `ws://${proxy.host}/socket`
  return proxy
}
