// Private brokers for multi-node tests: a redis-server or nats-server on a
// free loopback port, killed after the test. With CI=true a missing binary
// is an error; elsewhere the caller skips.
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import net from "node:net"
import { withTimeout } from "./wait.js"

const SEARCH = (process.env.PATH || "").split(":").concat(["/usr/sbin", "/usr/local/sbin", "/usr/bin"])

export function findBinary(name) {
  for (const dir of SEARCH) if (dir && existsSync(`${dir}/${name}`)) return `${dir}/${name}`
  return null
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on("error", reject)
    srv.listen(0, "127.0.0.1", () => { const { port } = srv.address(); srv.close(() => resolve(port)) })
  })
}

function waitListening(port, timeout) {
  const attempt = () => new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1")
    s.on("connect", () => { s.destroy(); resolve(true) })
    s.on("error", () => resolve(false))
  })
  return withTimeout((async () => {
    for (;;) {
      if (await attempt()) return
      await new Promise((r) => setTimeout(r, 50))
    }
  })(), timeout, `broker on port ${port}`)
}

const KINDS = {
  redis: { bin: "redis-server", args: (p) => ["--port", String(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], url: (p) => `redis://127.0.0.1:${p}` },
  nats: { bin: "nats-server", args: (p) => ["-a", "127.0.0.1", "-p", String(p)], url: (p) => `nats://127.0.0.1:${p}` },
}

/** Starts a private broker; returns {url, stop()} or null when the binary is missing (outside CI). */
export async function startBroker(kind) {
  const k = KINDS[kind]
  const bin = findBinary(k.bin)
  if (!bin) {
    if (process.env.CI === "true") throw new Error(`${k.bin} not found; CI needs it (apt-get install ${k.bin})`)
    return null
  }
  const port = await freePort()
  const proc = spawn(bin, k.args(port), { stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  proc.stderr.on("data", (d) => { stderr += d })
  const exited = new Promise((resolve) => proc.on("exit", resolve))
  try {
    await waitListening(port, 10000)
  } catch (err) {
    proc.kill("SIGKILL")
    throw new Error(`${err.message}\n${stderr}`)
  }
  return {
    url: k.url(port),
    async stop() { proc.kill("SIGKILL"); await exited },
  }
}
