// Frame helpers: canonical JSON text, V2 binary encoding/decoding.

/**
 * Re-serialises JSON text without whitespace while keeping object key order,
 * so two frames can be compared byte-for-byte including key order.
 */
export function canon(text) {
  return JSON.stringify(JSON.parse(text))
}

/** The canonical text of the V2 array [join_ref, ref, topic, event, payload]. */
export function v2(joinRef, ref, topic, event, payload) {
  return JSON.stringify([joinRef, ref, topic, event, payload])
}

/** The canonical text of a V2 reply frame, response first then status (Phoenix order). */
export function reply(joinRef, ref, topic, status, response = {}) {
  return JSON.stringify([joinRef, ref, topic, "phx_reply", { response, status }])
}

/** Lower-case hex of a Buffer/ArrayBuffer/Uint8Array, bytes separated by spaces. */
export function hex(data) {
  return Buffer.from(toU8(data)).toString("hex").replace(/(..)(?!$)/g, "$1 ")
}

export function toU8(data) {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (Array.isArray(data)) return Uint8Array.from(data)
  throw new TypeError("not binary data")
}

/** Encodes a client→server kind-0 push (with ref). */
export function encodeClientPush({ joinRef = "", ref = "", topic, event, data }) {
  const parts = [joinRef ?? "", ref ?? "", topic, event].map((s) => Buffer.from(s, "utf8"))
  for (const p of parts) if (p.length > 255) throw new Error("field too long")
  return Buffer.concat([Buffer.from([0, ...parts.map((p) => p.length)]), ...parts, Buffer.from(toU8(data))])
}

/**
 * Decodes a server→client V2 binary frame:
 * kind 0 push {kind, joinRef, topic, event, data}, kind 1 reply
 * {kind, joinRef, ref, topic, status, data}, kind 2 broadcast {kind, topic, event, data}.
 */
export function decodeServerBinary(data) {
  const b = Buffer.from(toU8(data))
  const kind = b[0]
  const take = (lens, start) => {
    let off = start
    return lens.map((n) => { const s = b.subarray(off, off + n).toString("utf8"); off += n; return s })
      .concat([b.subarray(lens.reduce((a, n) => a + n, start))])
  }
  switch (kind) {
    case 0: {
      const [joinRef, topic, event, rest] = take([b[1], b[2], b[3]], 4)
      return { kind, joinRef, topic, event, data: rest }
    }
    case 1: {
      const [joinRef, ref, topic, status, rest] = take([b[1], b[2], b[3], b[4]], 5)
      return { kind, joinRef, ref, topic, status, data: rest }
    }
    case 2: {
      const [topic, event, rest] = take([b[1], b[2]], 3)
      return { kind, topic, event, data: rest }
    }
    default:
      return { kind, data: b }
  }
}
