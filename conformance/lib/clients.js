// Loads the phoenix client versions under test and offers a per-test Session
// that creates recorded JS sockets and raw clients and tears them down.
import { Recorder, recordingTransport } from "./recorder.js"
import { RawClient } from "./raw.js"
import { deferred, withTimeout } from "./wait.js"

export const ALL_VERSIONS = ["1.8.0", "1.8.12", "1.8.16"]

/** Versions from $PHOENIX_VERSIONS (comma list), default all three. */
export function selectedVersions() {
  const env = process.env.PHOENIX_VERSIONS
  if (!env) return ALL_VERSIONS
  const vs = env.split(",").map((s) => s.trim()).filter(Boolean)
  for (const v of vs) if (!ALL_VERSIONS.includes(v)) throw new Error(`unknown phoenix version ${v} (have ${ALL_VERSIONS})`)
  return vs
}

/**
 * [{version, Socket, LongPoll, Presence}] for each selected version.
 * Note (spec §4.6, §12): 1.8.0–1.8.15 do not reconnect after a server close
 * with code 1000, 1.8.16 does. No server close in the test app uses 1000
 * (disconnect 1001, idle 1002, shutdown 1012), so no test branches on it.
 */
export async function loadClients() {
  return Promise.all(selectedVersions().map(async (version) => {
    const mod = await import(`phoenix-${version}`)
    return {
      version,
      Socket: mod.Socket,
      LongPoll: mod.LongPoll,
      Presence: mod.Presence,
    }
  }))
}

/** Resolves with {status, response} of a Push (ok/error/timeout/custom). */
export function outcome(push, statuses = ["ok", "error", "timeout"], timeout = 5000) {
  const d = deferred()
  for (const s of statuses) push.receive(s, (response) => d.resolve({ status: s, response }))
  return withTimeout(d.promise, timeout, `push outcome (${push.event})`)
}

/** A Map-backed Storage stand-in (getItem/setItem/removeItem). */
export class MapStorage {
  constructor() { this.map = new Map() }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null }
  setItem(k, v) { this.map.set(k, String(v)) }
  removeItem(k) { this.map.delete(k) }
  clear() { this.map.clear() }
  get length() { return this.map.size }
  key(i) { return [...this.map.keys()][i] ?? null }
}

/**
 * Resources of one test. `await s.connect(opts)` → {socket, rec}; `s.raw(query)`
 * → RawClient. `s.cleanup()` disconnects everything (call from afterEach / t.after).
 */
export class Session {
  constructor(server, client) {
    this.server = server
    this.client = client
    this.sockets = []
    this.raws = []
  }

  /**
   * Creates a socket with a recording transport. Unless `connect: false`,
   * connects and waits for the client's open callbacks to have run.
   */
  async connect(opts = {}, { connect = true, name = "js", url } = {}) {
    const rec = new Recorder(`${name}@${this.client.version}`)
    const socket = new this.client.Socket(url ?? this.server.socketUrl, { transport: recordingTransport(rec), ...opts })
    this.sockets.push(socket)
    if (connect) {
      socket.connect()
      await rec.waitFor((e) => e.type === "open", { label: "socket open" })
    }
    return { socket, rec }
  }

  /** Joins `topic`; resolves {channel, joinRef, status, response}. */
  async join(socket, topic, params = {}) {
    const channel = socket.channel(topic, params)
    const res = await outcome(channel.join())
    return { channel, joinRef: channel.joinRef(), ...res }
  }

  async raw(query = "vsn=2.0.0", opts = {}) {
    const c = await RawClient.open(`${this.server.wsUrl}?${query}`, opts)
    this.raws.push(c)
    return c
  }

  cleanup() {
    for (const socket of this.sockets) {
      try {
        socket.reconnectTimer.reset()
        for (const ch of socket.channels) ch.rejoinTimer.reset()
        socket.disconnect()
        socket.reconnectTimer.reset()
      } catch { /* best effort */ }
    }
    for (const r of this.raws) r.terminate()
    this.sockets = []
    this.raws = []
  }
}

let topicCounter = 0
/** A topic name unique within this process, e.g. room:t12-join. */
export function uniqueTopic(label = "t", prefix = "room") {
  return `${prefix}:${label}-${++topicCounter}-${process.pid}`
}
