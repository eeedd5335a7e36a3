// §10 Dashboard (dashboard:main): A12-A22.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { VERSIONS, isPush } from '../lib/client.js';
import { useServer, client } from '../lib/fixture.js';
import { envelopeOk, envelopeErr, pong, unixS, normalized } from '../lib/expect.js';

const ctx = useServer();
const T = 'dashboard:main';

for (const version of VERSIONS) {
  describe(`phoenix ${version}: DashboardChannel`, () => {
    test('A12: join replies ok {} then pushes initial_state', async (t) => {
      const c = await client(t, ctx.srv, version);
      const { status, response, joinRef } = await c.join(T);
      assert.equal(status, 'ok');
      assert.deepEqual(response, {});
      const frame = await c.nextFrame(T, 'initial_state');
      assert.equal(frame[0], joinRef);
      assert.equal(frame[1], null);
      assert.deepEqual(Object.keys(frame[4]).sort(), ['connected', 'timestamp']);
      assert.equal(frame[4].connected, true);
      unixS(frame[4].timestamp);
    });

    test('A13: ping answers the envelope without echoing the payload', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      pong(await c.push(ch, 'ping', { hello: 'there' }));
    });

    test('A14: shout is broadcast to every client of the topic, the sender gets no reply', async (t) => {
      const a = await client(t, ctx.srv, version);
      const b = await client(t, ctx.srv, version);
      const cha = await a.joinOk(T);
      await b.joinOk(T);
      const ma = a.rec.mark();
      const mb = b.rec.mark();
      const reply = c1Push(a, cha, 'shout', { a: 1 });
      const fa = await a.nextFrame(T, 'shout', { from: ma });
      const fb = await b.nextFrame(T, 'shout', { from: mb });
      assert.deepEqual(fa, [null, null, T, 'shout', { a: 1 }]);
      assert.deepEqual(fb, [null, null, T, 'shout', { a: 1 }]);
      assert.equal((await reply).status, 'timeout', 'shout is never answered');
    });

    test('A15: an unknown event gets no reply within 1 s', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      assert.equal((await c.push(ch, 'foo', {}, 1000)).status, 'timeout');
      pong(await c.push(ch, 'ping', {})); // still alive
    });

    test('A16: obs:set_current_scene without scene_name gets no reply', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      assert.equal((await c.push(ch, 'obs:set_current_scene', {}, 1000)).status, 'timeout');
    });

    test('A17: the 51st obs:get_status within 10 s is refused; ping is never limited', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      const started = Date.now();
      const replies = await Promise.all(Array.from({ length: 50 }, () => c.push(ch, 'obs:get_status', {})));
      assert.ok(Date.now() - started < 9000, 'the 50 commands fit in the 10 s window');
      for (const r of replies) assert.equal(r.status, 'ok');
      envelopeErr(await c.push(ch, 'obs:get_status', {}), 'backpressure', 'rate_limit_exceeded');
      envelopeErr(await c.push(ch, 'rainwave:get_status', {}), 'backpressure', 'rate_limit_exceeded');
      for (let i = 0; i < 3; i++) pong(await c.push(ch, 'ping', {}));
      // Per join: another join of the same topic starts with a fresh window.
      const c2 = await client(t, ctx.srv, version);
      const ch2 = await c2.joinOk(T);
      assert.equal((await c2.push(ch2, 'obs:get_status', {})).status, 'ok');
    });

    test('A18: a service call over 5 s is answered service_timeout after about 5 s', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      await ctx.srv.simulate('obs', 'slow'); // -slow default 6 s, past the 5 s timeout
      t.after(() => ctx.srv.simulate('obs', 'up'));
      const started = Date.now();
      const r = await c.push(ch, 'obs:get_status', {}, 9000);
      const took = Date.now() - started;
      envelopeErr(r, 'service_timeout', 'Service call timed out');
      assert.ok(took >= 4800 && took < 6000, `answered after ${took} ms, want about 5000`);
    });

    test('A19: obs:start_streaming succeeds with the operation envelope (DEV: OBS returns data)', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      envelopeOk(await c.push(ch, 'obs:start_streaming', {}), { operation: 'start_streaming' });
      envelopeOk(await c.push(ch, 'obs:stop_streaming', {}), { operation: 'stop_streaming' });
      envelopeOk(await c.push(ch, 'obs:start_recording', {}), { operation: 'start_recording' });
      envelopeOk(await c.push(ch, 'obs:stop_recording', {}), { operation: 'stop_recording' });
      envelopeOk(await c.push(ch, 'obs:set_current_scene', { scene_name: 'BRB' }), { operation: 'set_current_scene' });
      envelopeOk(await c.push(ch, 'obs:get_status', {}), (d) => {
        assert.equal(d.connected, true);
        assert.equal(d.current_scene, 'BRB');
      });
      envelopeOk(await c.push(ch, 'obs:set_current_scene', { scene_name: 'Coding' }), { operation: 'set_current_scene' });
    });

    test('A20: rainwave:set_station echoes the station id; set_enabled the flag', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      envelopeOk(await c.push(ch, 'rainwave:set_station', { station_id: 3 }), { operation: 'set_station', station_id: 3 });
      envelopeOk(await c.push(ch, 'rainwave:set_enabled', { enabled: true }), { operation: 'set_enabled', enabled: true });
      envelopeOk(await c.push(ch, 'rainwave:get_status', {}), (d) => assert.equal(d.station_id, 3));
      envelopeOk(await c.push(ch, 'rainwave:set_station', { station_id: 2 }), { operation: 'set_station', station_id: 2 });
    });

    test('service errors: service_error for status, operation_failed for actions', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(T);
      await ctx.srv.simulate('obs', 'failing');
      t.after(() => ctx.srv.simulate('obs', 'up'));
      const st = await c.push(ch, 'obs:get_status', {});
      assert.equal(st.status, 'error');
      assert.equal(st.response.error.code, 'service_error');
      const act = await c.push(ch, 'obs:start_streaming', {});
      assert.equal(act.status, 'error');
      assert.equal(act.response.error.code, 'operation_failed');
      assert.equal(typeof act.response.error.message, 'string');
    });

    test('A21: a channel.follow is pushed once as twitch_event with the flat event (DEV: once)', async (t) => {
      const c = await client(t, ctx.srv, version);
      await c.joinOk(T);
      const mark = c.rec.mark();
      const e = await ctx.srv.publish({ type: 'channel.follow', user_id: '789012', user_login: 'follower', user_name: 'Follower',
        broadcaster_user_id: '123456', broadcaster_user_login: 'streamer', broadcaster_user_name: 'Streamer' });
      const p = await c.next(T, 'twitch_event', { from: mark, where: (x) => x.id === e.id });
      assert.deepEqual(p, e);
      assert.equal(p.type, 'channel.follow');
      assert.equal(p.source, 'twitch');
      assert.equal(p.user_login, 'follower');
      normalized(p);
      // Ordering marker: once a later event arrived, a duplicate would have too.
      const marker = await ctx.srv.publish({ type: 'obs.scene_changed', scene_name: 'Coding' });
      await c.next(T, 'obs_event', { from: mark, where: (x) => x.id === marker.id });
      assert.equal(c.rec.received((f) => f[2] === T && f[4]?.id === e.id, mark).length, 1, 'pushed exactly once');
    });

    test('A22: pushes by source and type; stream events are not pushed', async (t) => {
      const c = await client(t, ctx.srv, version);
      const { joinRef } = await c.join(T);
      const mark = c.rec.mark();
      const cases = [
        [{ type: 'system.health_check', service_name: 'phononmaser', health_status: 'healthy' }, 'health_update'],
        [{ type: 'system.performance_metric', metric_name: 'cpu', metric_value: 1.5 }, 'performance_update'],
        [{ type: 'system.service_started', service_name: 'seed', service_status: 'started' }, 'system_event'],
        [{ type: 'obs.stream_started', stream_status: 'active' }, 'obs_event'],
        [{ type: 'rainwave.update', station_id: 2 }, 'rainwave_event'],
        [{ type: 'ironmon.checkpoint', checkpoint_name: 'BROCK' }, 'ironmon_event'],
        [{ type: 'stream.takeover_started', takeover_type: 'alert', message: 'x', duration: 1000 }, null],
        [{ type: 'stream.show_changed', show: 'variety' }, null],
      ];
      const published = [];
      for (const [ev, push] of cases) published.push([await ctx.srv.publish(ev), push]);
      const marker = await ctx.srv.publish({ type: 'system.health_check', service_name: 'marker', health_status: 'healthy' });
      await c.next(T, 'health_update', { from: mark, where: (x) => x.id === marker.id });
      for (const [e, push] of published) {
        const got = c.rec.received((f) => f[2] === T && f[4]?.id === e.id, mark);
        if (push === null) {
          assert.equal(got.length, 0, `${e.type} is not pushed`);
          continue;
        }
        assert.equal(got.length, 1, `${e.type} pushed once`);
        assert.equal(got[0][3], push, `${e.type} pushed as ${push}`);
        assert.deepEqual(got[0][4], e);
        assert.deepEqual(got[0].slice(0, 2), [joinRef, null], 'a channel push: join_ref, no ref');
      }
      // Nothing of source stream at all (the producer's state updates included).
      assert.equal(c.rec.received((f) => f[2] === T && f[4]?.source === 'stream', mark).length, 0);
    });
  });
}

// c1Push pushes with a 1 s window (for no-reply checks).
function c1Push(c, ch, event, payload) {
  return c.push(ch, event, payload, 1000);
}
