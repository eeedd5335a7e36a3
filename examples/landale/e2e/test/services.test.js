// §10 Services (dashboard:services): A23-A31.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { VERSIONS } from '../lib/client.js';
import { useServer, client } from '../lib/fixture.js';
import { envelopeErr, errorEnvelope, pong, unixS, unixMs, ISO_US } from '../lib/expect.js';

const ctx = useServer();
const T = 'dashboard:services';

for (const version of VERSIONS) {
  describe(`phoenix ${version}: ServicesChannel`, () => {
    test('A23: join replies ok {} with no initial push', async (t) => {
      const c = await client(t, ctx.srv, version);
      const { ch, status, response } = await c.join(T);
      assert.equal(status, 'ok');
      assert.deepEqual(response, {});
      // Ordering marker: the ping reply comes after anything pushed after join.
      pong(await c.push(ch, 'ping', {}));
      assert.deepEqual(c.rec.received((f) => f[2] === T && f[1] === null), [], 'nothing pushed');
    });

    test('A24: ping answers the envelope', async (t) => {
      const c = await client(t, ctx.srv, version);
      pong(await c.push(await c.joinOk(T), 'ping', {}));
    });

    test('A25-A27: invalid service and unknown commands', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      envelopeErr(await c.push(ch, 'start', { service: 'obs' }), 'invalid_service', 'Service obs is not controllable');
      envelopeErr(await c.push(ch, 'frobnicate', { service: 'seed' }), 'unknown_command', 'Unknown command: frobnicate');
      envelopeErr(await c.push(ch, 'frobnicate', {}), 'unknown_command', 'Unknown command: frobnicate');
      // A service key sends even ping to the service clause (§5.2 row 5).
      envelopeErr(await c.push(ch, 'ping', { service: 'obs' }), 'invalid_service', 'Service obs is not controllable');
    });

    test('A28: start seed: no reply; service_starting to all clients, then command_result to the requester', async (t) => {
      const a = await client(t, ctx.srv, version);
      const b = await client(t, ctx.srv, version);
      const cha = await a.joinOk(T);
      await b.joinOk(T);
      const ma = a.rec.mark();
      const mb = b.rec.mark();
      const reply = a.push(cha, 'start', { service: 'seed' }, 1500);
      const result = await a.nextFrame(T, 'command_result', { from: ma });
      const bcastA = await a.nextFrame(T, 'service_starting', { from: ma });
      const bcastB = await b.nextFrame(T, 'service_starting', { from: mb });
      assert.deepEqual(bcastA, bcastB);
      assert.deepEqual(bcastA.slice(0, 2), [null, null], 'a broadcast');
      const p = bcastA[4];
      assert.deepEqual(Object.keys(p).sort(), ['action', 'response', 'service', 'timestamp']);
      assert.equal(p.service, 'seed');
      assert.equal(p.action, 'starting');
      unixS(p.timestamp);
      const r = result[4];
      assert.equal(r.success, true);
      assert.deepEqual(r.data, p.response, 'command_result carries the same Nurvus JSON');
      assert.match(r.meta.timestamp, ISO_US);
      assert.equal(r.meta.server_version, '0.1.0');
      assert.equal(result[1], null, 'a push, not a reply');
      const order = a.rec.received((f) => f[2] === T && ['service_starting', 'command_result'].includes(f[3]), ma).map((f) => f[3]);
      assert.deepEqual(order, ['service_starting', 'command_result'], 'broadcast first, then the result');
      assert.equal(b.rec.received((f) => f[3] === 'command_result', mb).length, 0, 'only the requester gets command_result');
      assert.equal((await reply).status, 'timeout', 'start never replies');
    });

    test('stop and restart broadcast service_stopping / service_restarting', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      for (const [cmd, ev, action] of [['stop', 'service_stopping', 'stopping'], ['restart', 'service_restarting', 'restarting'],
        ['start', 'service_starting', 'starting']]) {
        const mark = c.rec.mark();
        ch.push(cmd, { service: 'phononmaser' });
        const b = await c.next(T, ev, { from: mark });
        assert.equal(b.service, 'phononmaser');
        assert.equal(b.action, action);
        assert.equal((await c.next(T, 'command_result', { from: mark })).success, true);
      }
    });

    test('A29: with Nurvus down, stop gets a nurvus_error command_result and no broadcast', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      await ctx.srv.simulate('nurvus', 'down');
      t.after(() => ctx.srv.simulate('nurvus', 'up'));
      const mark = c.rec.mark();
      ch.push('stop', { service: 'seed' });
      errorEnvelope(await c.next(T, 'command_result', { from: mark }), 'nurvus_error', 'Nurvus not running on port 4001');
      // Ordering marker: a broadcast would be sent before the result (A28).
      assert.equal(c.rec.received((f) => f[3] === 'service_stopping', mark).length, 0);
    });

    test('A30: get_status pushes command_result only', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      const mark = c.rec.mark();
      const reply = c.push(ch, 'get_status', { service: 'phononmaser' }, 1500);
      const r = await c.next(T, 'command_result', { from: mark });
      assert.equal(r.success, true);
      assert.equal(typeof r.data, 'object');
      assert.equal((await reply).status, 'timeout', 'get_status never replies');
      assert.deepEqual(c.rec.received((f) => f[3].startsWith('service_'), mark), []);
    });

    test('A31: get_telemetry pushes telemetry_update with the documented keys', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      const mark = c.rec.mark();
      const reply = c.push(ch, 'get_telemetry', {}, 1500);
      const p = await c.next(T, 'telemetry_update', { from: mark });
      assert.deepEqual(Object.keys(p).sort(), ['overlays', 'services', 'system', 'timestamp', 'transcription']);
      unixMs(p.timestamp);
      assert.deepEqual(Object.keys(p.services).sort(), ['obs', 'phononmaser', 'seed', 'twitch']);
      for (const s of Object.values(p.services)) assert.equal(typeof s.connected, 'boolean');
      assert.deepEqual(Object.keys(p.system).sort(), ['environment', 'status', 'uptime', 'version']);
      assert.equal(p.system.version, '0.1.0');
      assert.ok(['healthy', 'degraded', 'unhealthy'].includes(p.system.status));
      assert.deepEqual(p.overlays, []);
      for (const k of ['timestamp', 'total_transcriptions_24h', 'confidence', 'duration', 'trends']) {
        assert.ok(k in p.transcription, `transcription.${k}`);
      }
      assert.equal((await reply).status, 'timeout', 'get_telemetry never replies');
    });
  });
}
