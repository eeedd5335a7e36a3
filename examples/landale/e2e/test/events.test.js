// §10 Events (events:<filter>): A32-A38, A80; plus the client filters and
// batching the README adds beyond Landale.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { VERSIONS } from '../lib/client.js';
import { useServer, client } from '../lib/fixture.js';
import { envelopeOk, pong, normalized } from '../lib/expect.js';

const ctx = useServer();

const B = { broadcaster_user_id: '123456', broadcaster_user_login: 'streamer', broadcaster_user_name: 'Streamer' };
const U = { user_id: '789012', user_login: 'follower', user_name: 'Follower' };

// One event of every kind the filter table distinguishes, with the push
// name events:all uses for it (A33).
const FIXTURES = [
  [{ type: 'channel.chat.message', ...B, ...U, message_id: 'm-1', message: 'hi', fragments: [], emotes: [], native_emotes: [] }, 'chat_message'],
  [{ type: 'channel.chat.clear', ...B }, 'chat_clear'],
  [{ type: 'channel.chat.message_delete', ...B, target_user_id: '789012', message_id: 'm-1' }, 'message_delete'],
  [{ type: 'channel.chat.notification', ...B, notification_type: 'sub' }, 'twitch_event'],
  [{ type: 'channel.follow', ...B, ...U }, 'follower'],
  [{ type: 'channel.subscribe', ...B, ...U, tier: '1000', is_gift: false }, 'subscription'],
  [{ type: 'channel.subscription.gift', ...B, ...U, tier: '1000', total: 5 }, 'gift_subscription'],
  [{ type: 'channel.cheer', ...B, ...U, bits: 100, message: 'Cheer100 nice' }, 'cheer'],
  [{ type: 'channel.update', ...B, title: 'Building pyre', category_id: '509660', category_name: 'Art' }, 'channel_update'],
  [{ type: 'stream.online', ...B, stream_type: 'live' }, 'twitch_event'],
  [{ type: 'stream.offline', ...B }, 'twitch_event'],
  [{ type: 'channel.goal.begin', ...B, goal_type: 'follow', target_amount: 50 }, 'twitch_event'],
  [{ type: 'channel.raid', from_broadcaster_user_name: 'Raider', viewers: 12 }, 'twitch_event'],
  [{ type: 'obs.scene_changed', scene_name: 'Coding', previous_scene: 'Starting' }, 'obs_event'],
  [{ type: 'system.service_started', service_name: 'seed', service_status: 'started' }, 'system_event'],
  [{ type: 'rainwave.update', station_id: 2, station_name: 'Covers' }, 'rainwave_event'],
  [{ type: 'ironmon.checkpoint', checkpoint_id: '5', checkpoint_name: 'BROCK' }, 'ironmon_event'],
  [{ type: 'stream.emote_increment', emotes: ['Kappa'], native_emotes: [], user_name: 'Follower' }, 'stream_event'],
];

const INTERACTIONS = ['channel.follow', 'channel.subscribe', 'channel.subscription.gift', 'channel.cheer'];

// The filter table of §5.3.
const FILTERS = {
  all: () => true,
  twitch: (e) => e.source === 'twitch',
  obs: (e) => e.source === 'obs',
  ironmon: (e) => e.source === 'ironmon',
  system: (e) => e.source === 'system',
  stream: (e) => e.source === 'stream',
  rainwave: (e) => e.source === 'rainwave',
  music: (e) => e.source === 'rainwave',
  chat: (e) => e.source === 'twitch' && e.type.startsWith('channel.chat.'),
  goals: (e) => e.source === 'twitch' && e.type.startsWith('channel.goal.'),
  interactions: (e) => e.source === 'twitch' && INTERACTIONS.includes(e.type),
  dashboard: (e) => (e.source === 'twitch' ? ['stream.online', 'stream.offline', 'channel.update'].includes(e.type)
    : ['obs', 'system', 'rainwave', 'ironmon'].includes(e.source)),
  general: () => false,
};

for (const version of VERSIONS) {
  describe(`phoenix ${version}: EventsChannel`, () => {
    test('A32: any events:<x> joins ok {} with no initial push; ping; unknown events get no reply', async (t) => {
      const c = await client(t, ctx.srv, version);
      const { ch, status, response } = await c.join('events:anything');
      assert.equal(status, 'ok');
      assert.deepEqual(response, {});
      pong(await c.push(ch, 'ping', {}));
      assert.equal((await c.push(ch, 'foo', {}, 1000)).status, 'timeout');
      assert.deepEqual(c.rec.received((f) => f[2] === 'events:anything' && f[1] === null), [], 'no push');
    });

    test('A33-A38, A80: every filter gets exactly its events, under the mapped push names', async (t) => {
      const c = await client(t, ctx.srv, version);
      const chans = {};
      for (const f of Object.keys(FILTERS)) chans[f] = await c.joinOk(`events:${f}`);
      const mark = c.rec.mark();
      const published = [];
      for (const [ev, push] of FIXTURES) published.push({ e: await ctx.srv.publish(ev), push });
      const ours = new Set(published.map((p) => p.e.id));

      for (const [f, accepts] of Object.entries(FILTERS)) {
        const want = published.filter((p) => accepts(p.e));
        if (want.length) {
          const last = want.at(-1).e;
          await c.next(`events:${f}`, want.at(-1).push, { from: mark, where: (x) => x.id === last.id });
        }
      }
      // Ordering marker: a ping answered by each channel after everything
      // was published comes after any event that channel was sent.
      for (const ch of Object.values(chans)) assert.equal((await c.push(ch, 'ping', {})).status, 'ok');

      for (const [f, accepts] of Object.entries(FILTERS)) {
        const topic = `events:${f}`;
        const frames = c.rec.received((fr) => fr[2] === topic && fr[3] !== 'phx_reply', mark);
        const mine = frames.filter((fr) => ours.has(fr[4]?.id));
        const want = published.filter((p) => accepts(p.e));
        assert.deepEqual(mine.map((fr) => fr[4].type), want.map((p) => p.e.type), `${topic} receives exactly its events`);
        for (const [i, fr] of mine.entries()) {
          assert.equal(fr[3], want[i].push, `${topic}: ${want[i].e.type} is pushed as ${want[i].push}`);
          assert.deepEqual(fr[4], want[i].e, `${topic}: the payload is the normalized event unchanged`);
        }
        // Events the server made itself (the producer's stream.* updates) only reach all and stream.
        const foreign = frames.filter((fr) => !ours.has(fr[4]?.id));
        for (const fr of foreign) {
          assert.ok(['all', 'stream'].includes(f), `${topic} got a foreign ${fr[4]?.type}`);
          assert.equal(fr[3], 'stream_event');
          assert.equal(fr[4].source, 'stream');
        }
      }
      // A33: the producer's stream.state_updated arrives on events:all as stream_event.
      assert.ok(c.rec.received((fr) => fr[2] === 'events:all' && fr[3] === 'stream_event' && fr[4].type === 'stream.state_updated', mark).length > 0);
      // A80: every event pushed on events:all has the core fields.
      for (const fr of c.rec.received((x) => x[2] === 'events:all' && x[3] !== 'phx_reply', mark)) normalized(fr[4]);
    });

    test('client filter: sources, types and prefixes in the join params, then the filter event', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk('events:all', { sources: ['twitch', 'obs'], types: ['obs.scene_changed'], type_prefixes: ['channel.chat.'] });
      const mark = c.rec.mark();
      const chat = await ctx.srv.publish(FIXTURES[0][0]);
      await ctx.srv.publish({ type: 'channel.follow', ...B, ...U }); // twitch, but neither listed type nor prefix
      await ctx.srv.publish({ type: 'system.service_started', service_name: 'seed' }); // source not listed
      const scene = await ctx.srv.publish({ type: 'obs.scene_changed', scene_name: 'BRB' });
      await c.next('events:all', 'obs_event', { from: mark, where: (x) => x.id === scene.id });
      assert.deepEqual(c.rec.received((f) => f[2] === 'events:all', mark).map((f) => f[4].id), [chat.id, scene.id]);

      const r = await c.push(ch, 'filter', { sources: ['system'] });
      envelopeOk(r, (d) => {
        assert.equal(d.topic_filter, 'all');
        assert.deepEqual(d.filter.sources, ['system']);
        assert.equal(d.batch, false);
      });
      const m2 = c.rec.mark();
      await ctx.srv.publish({ type: 'obs.scene_changed', scene_name: 'Coding' });
      const sys = await ctx.srv.publish({ type: 'system.service_started', service_name: 'seed' });
      await c.next('events:all', 'system_event', { from: m2, where: (x) => x.id === sys.id });
      assert.deepEqual(c.rec.received((f) => f[2] === 'events:all', m2).map((f) => f[4].id), [sys.id]);

      const bad = await c.push(ch, 'filter', { sources: ['nope'] });
      assert.equal(bad.status, 'error');
      assert.equal(bad.response.error.code, 'invalid_filter');
      const refused = await c.join('events:all', { sources: 'twitch' });
      assert.equal(refused.status, 'error');
      assert.match(refused.response.reason, /^invalid filter: /);
      refused.ch.leave();
    });

    test('batch: events arrive as event_batch with count and timestamp', async (t) => {
      const c = await client(t, ctx.srv, version);
      await c.joinOk('events:obs', { batch: true, batch_size: 3, batch_interval_ms: 50 });
      const mark = c.rec.mark();
      const sent = [];
      for (let i = 0; i < 4; i++) sent.push((await ctx.srv.publish({ type: 'obs.scene_changed', scene_name: `S${i}` })).id);
      const got = [];
      let from = mark;
      while (got.length < sent.length) {
        const rec = await c.rec.waitFor((x) => x.dir === 'in' && x.frame[2] === 'events:obs' && x.frame[3] === 'event_batch',
          { from, what: 'an event_batch' });
        from = rec.index + 1;
        const b = rec.frame[4];
        assert.deepEqual(Object.keys(b).sort(), ['count', 'events', 'timestamp']);
        assert.equal(b.count, b.events.length);
        assert.ok(b.count >= 1 && b.count <= 3, `1..batch_size events, got ${b.count}`);
        assert.ok(Number.isInteger(b.timestamp) && Math.abs(b.timestamp - Date.now()) < 60000, 'unix ms');
        got.push(...b.events.map((e) => e.id));
      }
      assert.deepEqual(got, sent, 'every event once, in order');
      assert.equal(c.rec.received((f) => f[2] === 'events:obs' && f[3] === 'obs_event', mark).length, 0, 'nothing unbatched');
    });
  });
}
