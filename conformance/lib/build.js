// `npm test` runs this first: rebuilds ../bin/conformance-server from the repo
// so the suite never runs a stale binary. Skipped when $PYRE_SERVER_BIN is set.
import { buildServer } from "./server.js"

if (process.env.PYRE_SERVER_BIN) {
  console.log(`using PYRE_SERVER_BIN=${process.env.PYRE_SERVER_BIN}`)
} else {
  buildServer()
}
