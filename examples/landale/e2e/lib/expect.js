// Shapes of the spec (§10 notation) as assertions.
import assert from 'node:assert/strict';

export const ISO_US = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
export const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
export const HEX8 = /^[0-9a-f]{8}$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** unixS asserts an integer unix timestamp in seconds close to now. */
export function unixS(v, what = 'timestamp') {
  assert.ok(Number.isInteger(v), `${what} is an integer, got ${JSON.stringify(v)}`);
  assert.ok(Math.abs(v - Date.now() / 1000) < 120, `${what} ${v} is unix seconds near now`);
}

/** unixMs asserts an integer unix timestamp in milliseconds close to now. */
export function unixMs(v, what = 'timestamp') {
  assert.ok(Number.isInteger(v), `${what} is an integer, got ${JSON.stringify(v)}`);
  assert.ok(Math.abs(v - Date.now()) < 120000, `${what} ${v} is unix milliseconds near now`);
}

/** envelopeOk asserts {status: ok, response: envelope-ok(data)}; data may be a function checking it. */
export function envelopeOk(reply, data) {
  assert.equal(reply.status, 'ok', `status ok, got ${JSON.stringify(reply)}`);
  const r = reply.response;
  assert.deepEqual(Object.keys(r).sort(), ['data', 'meta', 'success']);
  assert.equal(r.success, true);
  assert.deepEqual(Object.keys(r.meta).sort(), ['server_version', 'timestamp']);
  assert.equal(r.meta.server_version, '0.1.0');
  assert.match(r.meta.timestamp, ISO_US);
  if (typeof data === 'function') data(r.data);
  else assert.deepEqual(r.data, data);
  return r.data;
}

/** envelopeErr asserts {status: error, response: envelope-err(code, message)}. */
export function envelopeErr(reply, code, message) {
  assert.equal(reply.status, 'error', `status error, got ${JSON.stringify(reply)}`);
  errorEnvelope(reply.response, code, message);
}

/** errorEnvelope asserts an error envelope value (as pushed in command_result). */
export function errorEnvelope(r, code, message) {
  assert.deepEqual(Object.keys(r).sort(), ['error', 'success']);
  assert.equal(r.success, false);
  assert.deepEqual(Object.keys(r.error).sort(), ['code', 'message', 'timestamp']);
  assert.equal(r.error.code, code);
  if (message instanceof RegExp) assert.match(r.error.message, message);
  else assert.equal(r.error.message, message);
  assert.match(r.error.timestamp, ISO_US);
}

/** pong asserts the envelope ping reply. */
export function pong(reply) {
  envelopeOk(reply, (d) => {
    assert.deepEqual(Object.keys(d).sort(), ['pong', 'timestamp']);
    assert.equal(d.pong, true);
    unixS(d.timestamp);
  });
}

/** normalized asserts the core fields of a normalized event (A80). */
export function normalized(e) {
  for (const k of ['id', 'type', 'timestamp', 'correlation_id', 'source', 'source_id', 'raw_type']) {
    assert.ok(k in e, `event has ${k}: ${JSON.stringify(e).slice(0, 300)}`);
  }
  assert.equal(typeof e.id, 'string');
  assert.ok(e.id.length > 0);
  assert.equal(typeof e.type, 'string');
  assert.match(e.timestamp, ISO_US);
  assert.match(e.correlation_id, /^([0-9a-f]{8}|[0-9a-f]{16})$/);
  assert.ok(['twitch', 'obs', 'ironmon', 'rainwave', 'system', 'stream'].includes(e.source), `source ${e.source}`);
  assert.equal(typeof e.raw_type, 'string');
}
