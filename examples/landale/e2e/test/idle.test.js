// §10 A6 over the wire, against a server whose idle timeout is 800 ms
// instead of Landale's 90 s (-idle-timeout): a connection that sends
// nothing is closed by the server; one that heartbeats stays open. The
// phoenix.js client heartbeats every 200 ms here, as Landale's every 15 s
// against 90 s: well inside the timeout.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { VERSIONS } from '../lib/client.js';
import { useServer, client, raw } from '../lib/fixture.js';

const IDLE_MS = 800;
const ctx = useServer(['-idle-timeout', `${IDLE_MS}ms`]);

describe('raw: idle timeout', () => {
  test('A6: a connection that sends nothing is closed by the server (1002)', async (t) => {
    const c = await raw(t, ctx.srv);
    const started = Date.now();
    const closed = await c.rec.waitFor((x) => x.dir === 'close', { timeout: 10 * IDLE_MS, what: 'the server closing the idle socket' });
    assert.equal(closed.code, 1002);
    assert.ok(Date.now() - started >= IDLE_MS * 0.9, `closed after ${Date.now() - started} ms, before the idle timeout`);
  });
});

for (const version of VERSIONS) {
  describe(`phoenix ${version}: idle timeout`, () => {
    test('A6: a heartbeating client stays open past several idle timeouts', async (t) => {
      const c = await client(t, ctx.srv, version, { heartbeatIntervalMs: 200 });
      // Timing item: a bounded window of 3 × the idle timeout in which the
      // server must not close the socket (there is no event to await).
      await assert.rejects(
        c.rec.waitFor((x) => x.dir === 'close', { timeout: 3 * IDLE_MS, what: 'a close' }),
        /timed out/,
        'the heartbeating socket was closed',
      );
      const replies = c.rec.records.filter((x) => x.dir === 'in' && x.frame[2] === 'phoenix' && x.frame[3] === 'phx_reply');
      assert.ok(replies.length >= 5, `only ${replies.length} heartbeat replies in ${3 * IDLE_MS} ms`);
    });
  });
}
