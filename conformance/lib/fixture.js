// Per-describe fixture: `const fx = useFixture(client)` inside a describe
// block; `await fx.session(flags)` starts a fresh server with those flags and
// returns a Session bound to it. Everything is torn down after each test.
import { afterEach } from "node:test"
import { Session } from "./clients.js"
import { TestServer } from "./server.js"

export function useFixture(client) {
  let sessions = []
  let servers = []
  afterEach(async () => {
    for (const s of sessions) s.cleanup()
    await Promise.all(servers.map((srv) => srv.stop()))
    sessions = []
    servers = []
  })
  return {
    /** Starts a fresh server (extra CLI flags) and returns a Session for `client`. */
    async session(flags = []) {
      const srv = await TestServer.start(flags)
      servers.push(srv)
      const s = new Session(srv, client)
      sessions.push(s)
      return s
    },
  }
}

/** Placeholder client for raw-protocol describes that do not use the JS client. */
export const RAW = { version: "raw" }
