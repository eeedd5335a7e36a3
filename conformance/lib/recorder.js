// Recording WebSocket transport: a subclass of ws's WebSocket that logs every
// connection attempt, handshake response, sent and received frame, ping and
// close into a Recorder, which tests query and await.
import WebSocket from "ws"
import { withTimeout } from "./wait.js"

/**
 * One event in the log. Types:
 *   attempt  {conn, url, protocols}        transport constructed (connection attempt)
 *   upgrade  {conn, status, headers}       HTTP 101 received
 *   open     {conn}
 *   send     {conn, binary, data, text?, msg?}   frame sent by the client
 *   recv     {conn, binary, data, text?, msg?}   frame received from the server
 *   ping     {conn}                         WebSocket ping from the server
 *   error    {conn, message}
 *   close    {conn, code, reason}
 * Every event has `index` (position in the log) and `t` (performance.now()).
 * For text frames `text` is the raw string and `msg` the parsed V2 frame
 * {join_ref, ref, topic, event, payload} (or `json` for non-array JSON).
 */
export class Recorder {
  constructor(name = "rec") {
    this.name = name
    this.events = []
    this.listeners = new Set()
    this.connCount = 0
  }

  add(ev) {
    ev.index = this.events.length
    ev.t = performance.now()
    this.events.push(ev)
    for (const l of [...this.listeners]) l(ev)
    return ev
  }

  /** Events matching `pred` (optionally from index `from`). */
  filter(pred, from = 0) {
    return this.events.slice(from).filter(pred)
  }

  /** Received text frames, optionally restricted to a connection. */
  received(conn) {
    return this.events.filter((e) => e.type === "recv" && (conn === undefined || e.conn === conn))
  }

  sent(conn) {
    return this.events.filter((e) => e.type === "send" && (conn === undefined || e.conn === conn))
  }

  /**
   * Resolves with the first event at index >= `from` matching `pred`;
   * already-logged events count. Rejects after `timeout` ms.
   */
  waitFor(pred, { from = 0, timeout = 3000, label = "matching event" } = {}) {
    for (let i = from; i < this.events.length; i++) if (pred(this.events[i])) return Promise.resolve(this.events[i])
    let listener
    const p = new Promise((resolve) => {
      listener = (ev) => { if (ev.index >= from && pred(ev)) resolve(ev) }
      this.listeners.add(listener)
    })
    return withTimeout(p, timeout, `${this.name}: ${label}`).finally(() => this.listeners.delete(listener))
  }

  /** Waits for `n` events matching `pred` and returns them. */
  async waitForCount(pred, n, { from = 0, timeout = 3000, label = "events" } = {}) {
    let matched = this.filter(pred, from)
    if (matched.length >= n) return matched.slice(0, n)
    let listener
    const p = new Promise((resolve) => {
      listener = (ev) => {
        if (ev.index >= from && pred(ev)) {
          matched.push(ev)
          if (matched.length >= n) resolve(matched.slice(0, n))
        }
      }
      this.listeners.add(listener)
    })
    return withTimeout(p, timeout, `${this.name}: ${n} × ${label} (have ${matched.length})`).finally(() =>
      this.listeners.delete(listener))
  }

  /** Human-readable dump for assertion messages. */
  dump(last = 40) {
    return this.events.slice(-last).map((e) => {
      const body = e.text ?? (e.data ? `<bin ${Buffer.from(e.data).toString("hex")}>` : "")
      return `#${e.index} c${e.conn} ${e.type} ${e.code ?? ""} ${e.url ?? ""}${body}${e.message ?? ""}`
    }).join("\n")
  }
}

function describeFrame(data, isBinary) {
  if (isBinary) {
    const buf = Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data)
    return { binary: true, data: Uint8Array.from(buf) }
  }
  const text = typeof data === "string" ? data : Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data).toString("utf8")
  const ev = { binary: false, text }
  try {
    const v = JSON.parse(text)
    if (Array.isArray(v)) {
      const [join_ref, ref, topic, event, payload] = v
      ev.msg = { join_ref, ref, topic, event, payload }
    } else {
      ev.json = v
    }
  } catch { /* not JSON: keep text only */ }
  return ev
}

/**
 * Returns a WebSocket class (subclass of ws's) that records into `rec`.
 * Pass it as `transport` to `new Socket(url, {transport})`, or construct it
 * directly for raw clients.
 */
export function recordingTransport(rec, wsOptions = {}) {
  return class RecordingWebSocket extends WebSocket {
    constructor(url, protocols, options) {
      super(url, protocols, { ...wsOptions, ...(options || {}) })
      const conn = ++rec.connCount
      this.conn = conn
      rec.add({ type: "attempt", conn, url: String(url), protocols: protocols ?? null })
      // Registered before the phoenix client sets onmessage etc., so the log
      // always holds a frame before the client reacts to it.
      this.on("upgrade", (res) => rec.add({ type: "upgrade", conn, status: res.statusCode, headers: res.headers }))
      this.on("open", () => rec.add({ type: "open", conn }))
      this.on("message", (data, isBinary) => rec.add({ type: "recv", conn, ...describeFrame(data, isBinary) }))
      this.on("ping", () => rec.add({ type: "ping", conn }))
      this.on("error", (err) => rec.add({ type: "error", conn, message: err.message }))
      this.on("close", (code, reason) => rec.add({ type: "close", conn, code, reason: reason.toString() }))
    }

    send(data, ...rest) {
      const isBinary = typeof data !== "string"
      rec.add({ type: "send", conn: this.conn, ...describeFrame(data, isBinary) })
      return super.send(data, ...rest)
    }
  }
}

// Predicates used all over the tests.
export const isRecv = (conn) => (e) => e.type === "recv" && (conn === undefined || e.conn === conn)
export const isSend = (conn) => (e) => e.type === "send" && (conn === undefined || e.conn === conn)
/** A received V2 text frame whose fields match all given ones. */
export const recvMsg = (fields, conn) => (e) => e.type === "recv" && (conn === undefined || e.conn === conn) &&
  e.msg !== undefined && Object.entries(fields).every(([k, v]) => e.msg[k] === v)
export const sendMsg = (fields, conn) => (e) => e.type === "send" && (conn === undefined || e.conn === conn) &&
  e.msg !== undefined && Object.entries(fields).every(([k, v]) => e.msg[k] === v)
