// §10 Overlay (overlay:<type>): A39-A49. Replies are raw (no envelope).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { VERSIONS } from '../lib/client.js';
import { useServer, client } from '../lib/fixture.js';
import { unixS } from '../lib/expect.js';

const ctx = useServer();

for (const version of VERSIONS) {
  describe(`phoenix ${version}: OverlayChannel`, () => {
    test('A39: overlay:system pushes initial_state {type, data: {connected, timestamp}}', async (t) => {
      const c = await client(t, ctx.srv, version);
      const { status, response, joinRef } = await c.join('overlay:system');
      assert.equal(status, 'ok');
      assert.deepEqual(response, {});
      const f = await c.nextFrame('overlay:system', 'initial_state');
      assert.equal(f[0], joinRef);
      assert.deepEqual(Object.keys(f[4]).sort(), ['data', 'type']);
      assert.equal(f[4].type, 'system');
      assert.deepEqual(Object.keys(f[4].data).sort(), ['connected', 'timestamp']);
      assert.equal(f[4].data.connected, true);
      unixS(f[4].data.timestamp);
    });

    test('A40: overlay:obs initial_state with OBS up, then down', async (t) => {
      const c = await client(t, ctx.srv, version);
      await c.joinOk('overlay:obs');
      const up = await c.next('overlay:obs', 'initial_state');
      assert.equal(up.type, 'obs');
      assert.equal(up.data.connected, true);
      assert.equal(typeof up.data.status, 'object');
      assert.equal(up.data.status.current_scene, 'Coding');

      await ctx.srv.simulate('obs', 'down');
      t.after(() => ctx.srv.simulate('obs', 'up'));
      const c2 = await client(t, ctx.srv, version);
      await c2.joinOk('overlay:obs');
      assert.deepEqual(await c2.next('overlay:obs', 'initial_state'), { type: 'obs', data: { connected: false } });
    });

    test('A41: overlay:ironmon and other types push {type, data: {connected: true}}', async (t) => {
      const c = await client(t, ctx.srv, version);
      for (const type of ['ironmon', 'music', 'whatever']) {
        await c.joinOk(`overlay:${type}`);
        assert.deepEqual(await c.next(`overlay:${type}`, 'initial_state'), { type, data: { connected: true } });
      }
    });

    test('A42: ping echoes the payload with pong, timestamp and overlay_type', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk('overlay:obs');
      const r = await c.push(ch, 'ping', { hello: 'there' });
      assert.equal(r.status, 'ok');
      assert.deepEqual(Object.keys(r.response).sort(), ['hello', 'overlay_type', 'pong', 'timestamp']);
      assert.equal(r.response.hello, 'there');
      assert.equal(r.response.pong, true);
      assert.equal(r.response.overlay_type, 'obs');
      unixS(r.response.timestamp);
    });

    test('A43: obs:status answers the raw status map; a service error {message}', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk('overlay:obs');
      const r = await c.push(ch, 'obs:status', {});
      assert.equal(r.status, 'ok');
      assert.equal(r.response.connected, true);
      assert.ok(!('success' in r.response) && !('data' in r.response), 'no envelope');
      for (const ev of ['obs:scenes', 'obs:stream_status', 'obs:record_status', 'obs:stats', 'obs:version', 'obs:virtual_cam', 'obs:outputs']) {
        assert.equal((await c.push(ch, ev, {})).status, 'ok', ev);
      }
      const scenes = await c.push(ch, 'obs:scenes', {});
      assert.equal(scenes.response.currentProgramSceneName, 'Coding');
      assert.ok(Array.isArray(scenes.response.scenes));

      await ctx.srv.simulate('obs', 'failing');
      t.after(() => ctx.srv.simulate('obs', 'up'));
      const err = await c.push(ch, 'obs:status', {});
      assert.equal(err.status, 'error');
      assert.deepEqual(Object.keys(err.response), ['message']);
      assert.equal(typeof err.response.message, 'string');
      assert.ok(err.response.message.length > 0);
    });

    test('A44: ironmon:checkpoints validates challenge_id', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk('overlay:ironmon');
      assert.deepEqual(await c.push(ch, 'ironmon:checkpoints', {}),
        { status: 'error', response: { message: 'Missing required parameters: challenge_id' } });
      for (const bad of ['abc', '12a', '0', '-1', null, 0, 1.5]) {
        assert.deepEqual(await c.push(ch, 'ironmon:checkpoints', { challenge_id: bad }),
          { status: 'error', response: { message: "Parameter 'challenge_id' must be a positive integer" } }, JSON.stringify(bad));
      }
      const ok = await c.push(ch, 'ironmon:checkpoints', { challenge_id: '7' });
      assert.equal(ok.status, 'ok');
      assert.ok(Array.isArray(ok.response) && ok.response.length > 0, 'a list of checkpoints');
      assert.equal((await c.push(ch, 'ironmon:checkpoints', { challenge_id: 1 })).status, 'ok');
    });

    test('A45: ironmon:recent_results validates limit (1..100), default 10', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk('overlay:ironmon');
      for (const bad of [101, 0, 1.5, null, 'x']) {
        assert.deepEqual(await c.push(ch, 'ironmon:recent_results', { limit: bad }),
          { status: 'error', response: { message: "Parameter 'limit' must be an integer between 1 and 100" } }, JSON.stringify(bad));
      }
      const def = await c.push(ch, 'ironmon:recent_results', {});
      assert.equal(def.status, 'ok');
      assert.ok(Array.isArray(def.response) && def.response.length <= 10);
      const one = await c.push(ch, 'ironmon:recent_results', { limit: '1' });
      assert.equal(one.status, 'ok');
      assert.ok(one.response.length <= 1);
    });

    test('A46: system:status has the documented shape', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk('overlay:system');
      const r = await c.push(ch, 'system:status', {});
      assert.equal(r.status, 'ok');
      const s = r.response;
      assert.deepEqual(Object.keys(s).sort(), ['memory', 'services', 'status', 'summary', 'timestamp', 'uptime']);
      assert.ok(['healthy', 'degraded'].includes(s.status));
      unixS(s.timestamp);
      assert.equal(typeof s.uptime.seconds, 'number');
      assert.match(s.uptime.formatted, /^(\d+d \d+h \d+m|\d+h \d+m \d+s|\d+m \d+s|\d+s)$/);
      assert.equal(typeof s.memory, 'object');
      assert.deepEqual(Object.keys(s.services).sort(), ['database', 'ironmon_tcp', 'obs', 'twitch']);
      assert.equal(s.summary.total_services, 4);
      assert.equal(s.summary.health_percentage, Math.round((s.summary.healthy_services / 4) * 100));
      assert.equal(s.status, s.summary.healthy_services === 4 ? 'healthy' : 'degraded');
      const svc = await c.push(ch, 'system:services', {});
      assert.equal(svc.status, 'ok');
      assert.deepEqual(Object.keys(svc.response).sort(), ['database', 'ironmon_tcp', 'obs', 'twitch']);
    });

    test('A47: get_layer_mappings', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk('overlay:obs');
      const r = await c.push(ch, 'get_layer_mappings', {});
      assert.equal(r.status, 'ok');
      assert.equal(r.response.current_show, 'variety');
      assert.deepEqual(r.response.available_shows, ['coding', 'ironmon', 'variety']);
      for (const layer of Object.values(r.response.mappings)) assert.ok(['foreground', 'midground', 'background'].includes(layer));
      assert.equal(r.response.mappings.alert, 'foreground');
    });

    test('A48: an unknown command is answered {message: Unknown command: ...}', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk('overlay:obs');
      assert.deepEqual(await c.push(ch, 'foo:bar', {}), { status: 'error', response: { message: 'Unknown command: foo:bar' } });
    });

    test('A49: events are pushed by overlay type; mismatched sources are not', async (t) => {
      const c = await client(t, ctx.srv, version);
      const pushes = { obs: 'obs_event', twitch: 'twitch_event', ironmon: 'ironmon_event', music: 'music_event', system: 'system_event', rainwave: null };
      const chans = {};
      for (const type of Object.keys(pushes)) chans[type] = await c.joinOk(`overlay:${type}`);
      const mark = c.rec.mark();
      const events = {
        obs: await ctx.srv.publish({ type: 'obs.scene_changed', scene_name: 'Coding' }),
        twitch: await ctx.srv.publish({ type: 'channel.chat.message', message_id: 'x-1', message: 'hi', user_name: 'A' }),
        ironmon: await ctx.srv.publish({ type: 'ironmon.checkpoint', checkpoint_name: 'BROCK' }),
        rainwave: await ctx.srv.publish({ type: 'rainwave.update', station_id: 2 }),
        system: await ctx.srv.publish({ type: 'system.health_check', service_name: 'seed' }),
      };
      const source = { obs: 'obs', twitch: 'twitch', ironmon: 'ironmon', music: 'rainwave', system: 'system' };
      for (const [type, push] of Object.entries(pushes)) {
        if (!push) continue;
        const e = events[source[type]];
        assert.deepEqual(await c.next(`overlay:${type}`, push, { from: mark, where: (x) => x.id === e.id }), e);
      }
      // Ordering marker: a ping answered by each channel after the events
      // were published comes after any event that channel was sent.
      for (const ch of Object.values(chans)) assert.equal((await c.push(ch, 'ping', {})).status, 'ok');
      const ids = new Set(Object.values(events).map((e) => e.id));
      for (const type of Object.keys(pushes)) {
        const got = c.rec.received((f) => f[2] === `overlay:${type}` && ids.has(f[4]?.id), mark);
        const want = pushes[type] ? [events[source[type]].id] : [];
        assert.deepEqual(got.map((f) => f[4].id), want, `overlay:${type} gets only its source`);
      }
    });
  });
}
