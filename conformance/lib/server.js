// Starts the pyre conformance server binary and talks to its control API.
import { spawn, execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { withTimeout } from "./wait.js"

const here = path.dirname(fileURLToPath(import.meta.url))
export const conformanceDir = path.resolve(here, "..")
export const repoRoot = path.resolve(conformanceDir, "..")
const defaultBin = path.resolve(conformanceDir, "../bin/conformance-server")

/** The server binary: $PYRE_SERVER_BIN, else ../bin/conformance-server (built when missing). */
export function serverBin() {
  return process.env.PYRE_SERVER_BIN ? path.resolve(conformanceDir, process.env.PYRE_SERVER_BIN) : defaultBin
}

/** Builds the server from the repo root with `go build`. */
export function buildServer(out = defaultBin) {
  execFileSync("go", ["build", "-o", out, "./conformance/server"], { cwd: repoRoot, stdio: "inherit" })
}

export function ensureServerBuilt() {
  const bin = serverBin()
  if (!existsSync(bin)) {
    if (process.env.PYRE_SERVER_BIN) throw new Error(`PYRE_SERVER_BIN=${bin} does not exist`)
    buildServer(bin)
  }
  return bin
}

const running = new Set()
process.on("exit", () => { for (const p of running) try { p.kill("SIGKILL") } catch { /* gone */ } })

/**
 * A running server. Fields: port, origin ("http://127.0.0.1:PORT"),
 * socketUrl ("ws://127.0.0.1:PORT/socket", what the JS client takes),
 * wsUrl (socketUrl + "/websocket"), exited (promise of {code, signal}).
 */
export class TestServer {
  static async start(flags = [], { timeout = 10000 } = {}) {
    const bin = ensureServerBuilt()
    // -control: the control API (broadcast, push, shutdown below) is off by default.
    const proc = spawn(bin, ["-addr", "127.0.0.1:0", "-control", ...flags], { stdio: ["ignore", "pipe", "pipe"] })
    running.add(proc)
    const srv = new TestServer(proc, flags)
    const line = await withTimeout(srv.#firstLine(), timeout, `server start (${bin} ${flags.join(" ")})`).catch((err) => {
      proc.kill("SIGKILL")
      throw new Error(`${err.message}\nstderr:\n${srv.stderr}`)
    })
    const m = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(line)
    if (!m) { proc.kill("SIGKILL"); throw new Error(`unexpected first line from server: ${line}`) }
    srv.origin = m[1]
    srv.port = Number(m[2])
    srv.host = `127.0.0.1:${srv.port}`
    srv.socketUrl = `ws://${srv.host}/socket`
    srv.wsUrl = `${srv.socketUrl}/websocket`
    return srv
  }

  constructor(proc, flags) {
    this.proc = proc
    this.flags = flags
    this.stdout = ""
    this.stderr = ""
    proc.stderr.on("data", (d) => { this.stderr += d })
    this.exited = new Promise((resolve) => proc.on("exit", (code, signal) => { running.delete(proc); resolve({ code, signal }) }))
  }

  #firstLine() {
    return new Promise((resolve, reject) => {
      const onData = (d) => {
        this.stdout += d
        const nl = this.stdout.indexOf("\n")
        if (nl >= 0) { this.proc.stdout.off("data", onData); resolve(this.stdout.slice(0, nl)) }
      }
      this.proc.stdout.on("data", onData)
      this.proc.on("exit", (code) => reject(new Error(`server exited with ${code} before listening`)))
    })
  }

  async #post(pathname, body) {
    const res = await fetch(`${this.origin}${pathname}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body ?? {}),
    })
    const text = await res.text()
    if (res.status !== 204 && res.status !== 200) {
      throw new Error(`POST ${pathname} → HTTP ${res.status}: ${text}`)
    }
    return text ? JSON.parse(text) : null
  }

  /** Endpoint broadcast of `event` with `payload` on `topic` (also a socket id such as users:7). */
  broadcast(topic, event, payload = {}) { return this.#post("/control/broadcast", { topic, event, payload }) }

  /** Pushes the raw frame [join_ref, null, topic, event, payload] to every socket joined to `topic`. */
  push(topic, event, payload = {}, joinRef = null) {
    return this.#post("/control/push", { topic, event, payload, join_ref: joinRef })
  }

  /** Starts a graceful shutdown (sockets closed with 1012, then exit 0). */
  shutdown() { return this.#post("/control/shutdown", {}) }

  async stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return
    this.proc.kill("SIGTERM")
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 2000)
    await this.exited
    clearTimeout(t)
  }
}
