// Raw clients for frames and handshakes the official JS client never produces.
import http from "node:http"
import { Recorder, recordingTransport } from "./recorder.js"
import { withTimeout } from "./wait.js"

/**
 * A plain ws client that records like the JS client's transport does.
 * `RawClient.open(url)` resolves once the connection is open.
 */
export class RawClient {
  static async open(url, { protocols, headers, name = "raw", timeout = 3000 } = {}) {
    const rec = new Recorder(name)
    const T = recordingTransport(rec, { headers })
    const ws = new T(url, protocols)
    ws.binaryType = "arraybuffer"
    const c = new RawClient(ws, rec)
    await rec.waitFor((e) => e.type === "open" || e.type === "close", { timeout, label: "raw open" })
    if (ws.readyState !== ws.constructor.OPEN) throw new Error(`raw client did not open: ${rec.dump()}`)
    return c
  }

  constructor(ws, rec) {
    this.ws = ws
    this.rec = rec
    this.closed = rec.waitFor((e) => e.type === "close", { timeout: 3600_000, label: "close" })
    this.closed.catch(() => {})
  }

  /** Sends a V2 text frame [join_ref, ref, topic, event, payload]. */
  send(joinRef, ref, topic, event, payload = {}) { this.ws.send(JSON.stringify([joinRef, ref, topic, event, payload])) }

  sendRaw(data) { this.ws.send(data) }

  /** Resolves with the first received text frame matching `fields` (V2 msg fields). */
  waitMsg(fields, opts = {}) {
    return this.rec.waitFor((e) => e.type === "recv" && e.msg !== undefined &&
      Object.entries(fields).every(([k, v]) => e.msg[k] === v), { label: JSON.stringify(fields), ...opts })
  }

  /** Resolves with {code, reason} once the connection closed; rejects after `timeout`. */
  async waitClose(timeout = 3000) {
    const ev = await withTimeout(this.closed, timeout, "raw close")
    return { code: ev.code, reason: ev.reason, t: ev.t }
  }

  close(...args) { try { this.ws.close(...args) } catch { /* already closed */ } }
  terminate() { try { this.ws.terminate() } catch { /* already closed */ } }
}

/**
 * Sends one HTTP request to `url` (ws:// or http://) with the WebSocket upgrade
 * headers (unless `upgrade: false`) and reports {status, headers, body}.
 * A 101 answer is reported without reading further and the socket is destroyed.
 */
export function httpUpgrade(url, { method = "GET", headers = {}, upgrade = true, timeout = 3000 } = {}) {
  const u = new URL(url.replace(/^ws/, "http"))
  const h = upgrade
    ? {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": Buffer.from("0123456789abcdef").toString("base64"),
        ...headers,
      }
    : headers
  const p = new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h })
    req.on("upgrade", (res, socket) => {
      socket.destroy()
      resolve({ status: res.statusCode, headers: res.headers, body: "" })
    })
    req.on("response", (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (d) => { body += d })
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }))
    })
    req.on("error", reject)
    req.end()
  })
  return withTimeout(p, timeout, `${method} ${url}`)
}
