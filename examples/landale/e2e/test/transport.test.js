// §10 Transport: A1-A11. A6 runs in idle.test.js against a server started
// with a short -idle-timeout (Landale's 90 s is over this suite's budget).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { VERSIONS, isPush } from '../lib/client.js';
import { useServer, client, raw, upgrade } from '../lib/fixture.js';

const ctx = useServer();
const WS = '/socket/websocket?vsn=2.0.0&environment=development';

describe('raw: transport', () => {
  test('A1: an allowed Origin or none upgrades (101)', async () => {
    assert.equal((await upgrade(ctx.srv, WS, { Origin: 'http://localhost:5173' })).status, 101);
    assert.equal((await upgrade(ctx.srv, WS)).status, 101);
  });

  test('A2: Origin http://evil.example is refused with 403, no upgrade', async () => {
    const r = await upgrade(ctx.srv, WS, { Origin: 'http://evil.example' });
    assert.equal(r.status, 403);
  });

  test('A3: the Landale origins are accepted', async () => {
    for (const origin of ['http://saya:8008', 'http://localhost:8008', 'https://saya.tailnet-dffc.ts.net:5173', 'http://127.0.0.1:5174']) {
      assert.equal((await upgrade(ctx.srv, WS, { Origin: origin })).status, 101, origin);
    }
  });

  test('A4: /socket/longpoll is not served (404)', async () => {
    const res = await fetch(`${ctx.srv.url}/socket/longpoll?vsn=2.0.0`);
    await res.arrayBuffer();
    assert.equal(res.status, 404);
  });

  test('A5: heartbeat gets an ok reply on topic phoenix', async (t) => {
    const c = await raw(t, ctx.srv);
    c.send([null, '1', 'phoenix', 'heartbeat', {}]);
    assert.deepEqual(await c.reply('1'), [null, '1', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
  });

  test('A7: permessage-deflate is negotiated when offered, not otherwise', async (t) => {
    const on = await raw(t, ctx.srv, { perMessageDeflate: true });
    const up = on.rec.records.find((r) => r.dir === 'upgrade');
    assert.match(up.headers['sec-websocket-extensions'] ?? '', /permessage-deflate/);
    const off = await raw(t, ctx.srv, { perMessageDeflate: false });
    assert.equal(off.rec.records.find((r) => r.dir === 'upgrade').headers['sec-websocket-extensions'], undefined);
    // Compressed frames still carry the protocol.
    on.send([null, '2', 'phoenix', 'heartbeat', {}]);
    assert.equal((await on.reply('2'))[4].status, 'ok');
  });

  test('A9: a push on a topic that was not joined gets unmatched topic', async (t) => {
    const c = await raw(t, ctx.srv);
    c.send(['5', '6', 'dashboard:main', 'ping', {}]);
    // join_ref null: Phoenix answers a push on a topic that is not joined
    // without a join_ref (conformance/README.md, items 15 and 27).
    assert.deepEqual(await c.reply('6'), [null, '6', 'dashboard:main', 'phx_reply', { status: 'error', response: { reason: 'unmatched topic' } }]);
  });

  // Phoenix answers the new join first, then sends phx_close for the old
  // join_ref (conformance/README.md, item 19).
  test('A10: a second join of the same topic replies ok and closes the first join_ref', async (t) => {
    const c = await raw(t, ctx.srv);
    c.send(['1', '1', 'dashboard:main', 'phx_join', {}]);
    assert.deepEqual((await c.reply('1'))[4], { status: 'ok', response: {} });
    const mark = c.rec.mark();
    c.send(['2', '2', 'dashboard:main', 'phx_join', {}]);
    const reply = await c.reply('2', { from: mark });
    assert.deepEqual(reply, ['2', '2', 'dashboard:main', 'phx_reply', { status: 'ok', response: {} }]);
    const close = await c.rec.waitFor(isPush('dashboard:main', 'phx_close'), { from: mark });
    assert.deepEqual(close.frame, ['1', '1', 'dashboard:main', 'phx_close', {}]);
    // The new join is the live one: it answers pushes with its join_ref.
    c.send(['2', '3', 'dashboard:main', 'ping', {}]);
    const pong = await c.reply('3');
    assert.equal(pong[0], '2');
    assert.equal(pong[4].status, 'ok');
  });
});

for (const version of VERSIONS) {
  describe(`phoenix ${version}: transport`, () => {
    test('A5: the client heartbeat is answered', async (t) => {
      const c = await client(t, ctx.srv, version);
      const mark = c.rec.mark();
      c.socket.sendHeartbeat();
      const out = await c.rec.waitFor((r) => r.dir === 'out' && r.frame[3] === 'heartbeat', { from: mark });
      const ref = out.frame[1];
      const reply = await c.rec.waitFor((r) => r.dir === 'in' && r.frame[1] === ref, { from: mark });
      assert.deepEqual(reply.frame, [null, ref, 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
    });

    test('A8: joining foo:bar is refused with unmatched topic', async (t) => {
      const c = await client(t, ctx.srv, version);
      const r = await c.join('foo:bar');
      assert.equal(r.status, 'error');
      assert.deepEqual(r.response, { reason: 'unmatched topic' });
      r.ch.leave();
    });

    test('A11: leave is answered ok {} and followed by phx_close', async (t) => {
      const c = await client(t, ctx.srv, version);
      const { ch, joinRef } = await c.join('dashboard:main');
      const mark = c.rec.mark();
      const left = new Promise((resolve) => ch.leave().receive('ok', resolve));
      const out = await c.rec.waitFor((r) => r.dir === 'out' && r.frame[3] === 'phx_leave', { from: mark });
      const ref = out.frame[1];
      const reply = await c.rec.waitFor((r) => r.dir === 'in' && r.frame[1] === ref, { from: mark });
      assert.deepEqual(reply.frame, [joinRef, ref, 'dashboard:main', 'phx_reply', { status: 'ok', response: {} }]);
      const close = await c.rec.waitFor(isPush('dashboard:main', 'phx_close'), { from: mark });
      assert.deepEqual(close.frame, [joinRef, joinRef, 'dashboard:main', 'phx_close', {}]);
      assert.ok(close.index > reply.index, 'phx_close follows the reply');
      await left;
    });
  });
}
