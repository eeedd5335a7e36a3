// §10 Stream (stream:overlays, stream:queue): A50-A67.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { VERSIONS } from '../lib/client.js';
import { useServer, client } from '../lib/fixture.js';
import { envelopeOk, envelopeErr, pong, ISO_US, ISO } from '../lib/expect.js';

const ctx = useServer();
const O = 'stream:overlays';
const Q = 'stream:queue';

// Each show's ticker rotation (§5.5).
const TICKERS = {
  variety: ['emote_stats', 'recent_follows', 'stream_goals', 'daily_stats'],
  ironmon: ['ironmon_run_stats', 'ironmon_progression'],
  coding: ['commit_stats', 'build_status', 'emote_stats', 'recent_follows'],
};

function assertState(s) {
  for (const k of ['current_show', 'base', 'alerts', 'ticker', 'timeline', 'metadata']) assert.ok(k in s, `stream_state has ${k}`);
  assert.ok(['variety', 'ironmon', 'coding'].includes(s.current_show));
  assert.ok(Array.isArray(s.alerts) && Array.isArray(s.ticker) && Array.isArray(s.timeline));
  assert.match(s.metadata.last_updated, ISO_US);
  assert.ok(Number.isInteger(s.metadata.state_version));
}

function assertQueue(q) {
  assert.deepEqual(Object.keys(q).sort(), ['is_processing', 'metrics', 'queue']);
  assert.ok(Array.isArray(q.queue));
  assert.deepEqual(Object.keys(q.metrics).sort(), ['active_items', 'average_wait_time', 'last_processed', 'pending_items', 'total_items']);
  assert.equal(q.metrics.active_items, 0);
  assert.equal(q.metrics.total_items, q.queue.length);
  assert.equal(q.metrics.pending_items, q.queue.length);
  assert.ok(Number.isInteger(q.metrics.average_wait_time));
  assert.equal(q.is_processing, q.queue.length > 0);
}

for (const version of VERSIONS) {
  describe(`phoenix ${version}: StreamChannel`, () => {
    test('A50: stream:overlays joins ok {} then pushes stream_state', async (t) => {
      const c = await client(t, ctx.srv, version);
      const { status, response, joinRef } = await c.join(O);
      assert.equal(status, 'ok');
      assert.deepEqual(response, {});
      const f = await c.nextFrame(O, 'stream_state');
      assert.deepEqual(f.slice(0, 2), [joinRef, null]);
      assertState(f[4]);
      assert.deepEqual(f[4].ticker, TICKERS[f[4].current_show], `the ${f[4].current_show} ticker`);
    });

    test('A51: stream:queue joins ok {} then pushes queue_state', async (t) => {
      const c = await client(t, ctx.srv, version);
      const { status, response } = await c.join(Q);
      assert.equal(status, 'ok');
      assert.deepEqual(response, {});
      assertQueue(await c.next(Q, 'queue_state'));
    });

    test('A52: stream:other is refused with join crashed', async (t) => {
      const c = await client(t, ctx.srv, version);
      const r = await c.join('stream:other');
      assert.equal(r.status, 'error');
      assert.deepEqual(r.response, { reason: 'join crashed' });
      r.ch.leave();
    });

    test('A53: request_state / request_queue_state push the state and never reply', async (t) => {
      const c = await client(t, ctx.srv, version);
      const o = await c.joinOk(O);
      const q = await c.joinOk(Q);
      await c.next(O, 'stream_state');
      await c.next(Q, 'queue_state');
      const mark = c.rec.mark();
      const ro = c.push(o, 'request_state', {}, 1000);
      const rq = c.push(q, 'request_queue_state', {}, 1000);
      assertState(await c.next(O, 'stream_state', { from: mark }));
      assertQueue(await c.next(Q, 'queue_state', { from: mark }));
      assert.equal((await ro).status, 'timeout');
      assert.equal((await rq).status, 'timeout');
    });

    test('A54: with the state producer down, the fallbacks are pushed', async (t) => {
      const c = await client(t, ctx.srv, version);
      const o = await c.joinOk(O);
      const q = await c.joinOk(Q);
      await c.next(O, 'stream_state');
      await c.next(Q, 'queue_state');
      await ctx.srv.simulate('stream', 'down');
      t.after(() => ctx.srv.simulate('stream', 'up'));
      const mark = c.rec.mark();
      o.push('request_state', {});
      q.push('request_queue_state', {});
      const s = await c.next(O, 'stream_state', { from: mark });
      assert.match(s.metadata.last_updated, ISO_US);
      assert.deepEqual(s, {
        current_show: 'variety', current: null, base: null, priority_level: 'ticker', alerts: [], ticker: [],
        metadata: { last_updated: s.metadata.last_updated, state_version: 0, fallback_mode: true },
      });
      assert.deepEqual(await c.next(Q, 'queue_state', { from: mark }), { queue: [], base: null, ticker: [], timeline: [], alerts: [] });
    });

    test('A55: ping answers the envelope', async (t) => {
      const c = await client(t, ctx.srv, version);
      pong(await c.push(await c.joinOk(O), 'ping', {}));
    });

    test('A56: a screen-cover takeover reaches every stream:* client', async (t) => {
      const a = await client(t, ctx.srv, version);
      const b = await client(t, ctx.srv, version);
      const ch = await a.joinOk(O);
      await b.joinOk(Q);
      const ma = a.rec.mark();
      const mb = b.rec.mark();
      envelopeOk(await a.push(ch, 'takeover', { type: 'screen-cover' }), { operation: 'takeover_sent', type: 'screen-cover' });
      for (const [c, topic, m] of [[a, O, ma], [b, Q, mb]]) {
        const p = await c.next(topic, 'takeover', { from: m });
        assert.deepEqual(Object.keys(p).sort(), ['duration', 'message', 'timestamp', 'type']);
        assert.equal(p.type, 'screen-cover');
        assert.ok(p.message === null || p.message === '', `message null or "", got ${JSON.stringify(p.message)}`);
        assert.equal(p.duration, 10000);
        assert.match(p.timestamp, ISO_US);
      }
    });

    test('A57: a technical-difficulties takeover is broadcast to stream:overlays and stream:queue (DEV)', async (t) => {
      const a = await client(t, ctx.srv, version);
      const ch = await a.joinOk(O);
      await a.joinOk(Q);
      const mark = a.rec.mark();
      envelopeOk(await a.push(ch, 'takeover', { type: 'technical-difficulties', message: 'BRB', duration: 30000 }),
        { operation: 'takeover_sent', type: 'technical-difficulties' });
      for (const topic of [O, Q]) {
        const p = await a.next(topic, 'takeover', { from: mark });
        assert.deepEqual({ ...p, timestamp: 'T' }, { type: 'technical-difficulties', message: 'BRB', duration: 30000, timestamp: 'T' });
        assert.match(p.timestamp, ISO_US);
      }
      for (const type of ['please-stand-by', 'custom']) {
        const m = a.rec.mark();
        envelopeOk(await a.push(ch, 'takeover', { type, message: 'x' }), { operation: 'takeover_sent', type });
        assert.equal((await a.next(O, 'takeover', { from: m })).type, type);
      }
    });

    test('A58: takeover validation', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(O);
      envelopeErr(await c.push(ch, 'takeover', { message: 'x' }), 'validation_failed', 'Missing required field: type');
      envelopeErr(await c.push(ch, 'takeover', { type: 'custom' }), 'validation_failed', 'Missing required field: message');
      // DEV (README deviation 1): a duration must be a positive integer.
      envelopeErr(await c.push(ch, 'takeover', { type: 'custom', message: 'x', duration: -5 }), 'validation_failed',
        "Field 'duration' must be a positive integer");
    });

    test('A59: takeover_clear is acknowledged and relayed to every stream:* client', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(O);
      await c.joinOk(Q);
      const mark = c.rec.mark();
      envelopeOk(await c.push(ch, 'takeover_clear', {}), { operation: 'takeover_cleared' });
      for (const topic of [O, Q]) {
        const p = await c.next(topic, 'takeover_clear', { from: mark });
        assert.deepEqual(Object.keys(p), ['timestamp']);
        assert.match(p.timestamp, ISO_US);
      }
    });

    test('A60: force_content adds a manual_override alert that expires after its duration', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(O);
      await c.next(O, 'stream_state');
      const mark = c.rec.mark();
      const sent = Date.now();
      envelopeOk(await c.push(ch, 'force_content', { type: 'manual_override', data: { message: 'x' }, duration: 5000 }),
        { operation: 'override_sent', type: 'manual_override' });
      const isOurs = (a) => a.type === 'manual_override' && a.data?.message === 'x';
      const added = await c.rec.waitFor((r) => r.dir === 'in' && r.frame[2] === O && r.frame[3] === 'stream_state'
        && r.frame[4].alerts.some(isOurs), { from: mark, what: 'a stream_state with the override' });
      const alert = added.frame[4].alerts.find(isOurs);
      assert.equal(alert.priority, 100);
      assert.match(alert.id, /^[0-9a-f]{16}$/);
      assert.equal(alert.duration, 5000);
      assert.deepEqual(alert.data, { type: 'manual_override', message: 'x' });
      assert.match(alert.started_at, ISO_US);
      const gone = await c.rec.waitFor((r) => r.dir === 'in' && r.frame[2] === O && r.frame[3] === 'stream_state'
        && !r.frame[4].alerts.some((a) => a.id === alert.id), { from: added.index + 1, timeout: 8000, what: 'the alert to expire' });
      const took = gone.at - sent;
      assert.ok(took >= 4500 && took < 7000, `expired after ${took} ms, want about 5000`);
    });

    test('A61: force_content missing type, data or duration gets no reply', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(O);
      const replies = await Promise.all([
        c.push(ch, 'force_content', { data: {}, duration: 1000 }, 1000),
        c.push(ch, 'force_content', { type: 'manual_override', duration: 1000 }, 1000),
        c.push(ch, 'force_content', { type: 'manual_override', data: {} }, 1000),
      ]);
      assert.deepEqual(replies.map((r) => r.status), ['timeout', 'timeout', 'timeout']);
    });

    test('A62: remove_queue_item acknowledges any id and pushes fresh states; validation', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(O);
      await c.joinOk(Q);
      await c.next(O, 'stream_state');
      await c.next(Q, 'queue_state');
      const mark = c.rec.mark();
      envelopeOk(await c.push(ch, 'remove_queue_item', { id: 'abc' }), { operation: 'item_removed', id: 'abc' });
      assertState(await c.next(O, 'stream_state', { from: mark }));
      assertQueue(await c.next(Q, 'queue_state', { from: mark }));
      envelopeErr(await c.push(ch, 'remove_queue_item', {}), 'validation_failed', 'Missing required field: id');
      envelopeErr(await c.push(ch, 'remove_queue_item', { id: '' }), 'validation_failed', 'Missing required field: id');
    });

    test('A63: update_channel_info without a valid field is refused; channel info and category search', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(O);
      envelopeErr(await c.push(ch, 'update_channel_info', { nope: 1 }), 'validation_failed',
        'At least one valid field must be provided: game_id, broadcaster_language, title, delay, tags, branded_content');
      envelopeOk(await c.push(ch, 'get_channel_info', {}), (d) => {
        assert.equal(d.broadcaster_login, 'streamer');
        assert.equal(typeof d.title, 'string');
      });
      envelopeOk(await c.push(ch, 'search_categories', { query: 'software' }), (d) => assert.ok(Array.isArray(d)));
      envelopeOk(await c.push(ch, 'update_channel_info', { title: 'pyre e2e' }), { operation: 'channel_info_updated' });
      envelopeOk(await c.push(ch, 'get_channel_info', {}), (d) => assert.equal(d.title, 'pyre e2e'));
    });

    test('A64: a stream.show_changed event is pushed as show_changed on both topics', async (t) => {
      const c = await client(t, ctx.srv, version);
      await c.joinOk(O);
      await c.joinOk(Q);
      const mark = c.rec.mark();
      await ctx.srv.publish({ type: 'stream.show_changed', show: 'coding', game_id: '509658', game_name: 'Software and Game Development',
        title: 'Building pyre', changed_at: '2024-01-01T12:00:00Z' });
      for (const topic of [O, Q]) {
        const p = await c.next(topic, 'show_changed', { from: mark });
        assert.deepEqual(p, { show: 'coding', game: { id: '509658', name: 'Software and Game Development' }, title: 'Building pyre',
          changed_at: p.changed_at });
        assert.match(p.changed_at, ISO);
        assert.equal(new Date(p.changed_at).toISOString(), '2024-01-01T12:00:00.000Z');
      }
    });

    test('A65: a stream.emote_increment event is pushed as content_update', async (t) => {
      const c = await client(t, ctx.srv, version);
      await c.joinOk(O);
      const mark = c.rec.mark();
      const e = await ctx.srv.publish({ type: 'stream.emote_increment', emotes: ['Kappa'], native_emotes: ['avalonHype'], user_name: 'Follower' });
      const p = await c.next(O, 'content_update', { from: mark });
      assert.deepEqual(p, { type: 'emote_increment', data: { emotes: ['Kappa'], native_emotes: ['avalonHype'], username: 'Follower' },
        timestamp: e.timestamp });
    });

    test('A66: any other event makes the producer push stream_state and queue_state', async (t) => {
      const c = await client(t, ctx.srv, version);
      await c.joinOk(O);
      await c.joinOk(Q);
      const s0 = await c.next(O, 'stream_state');
      await c.next(Q, 'queue_state');
      const mark = c.rec.mark();
      await ctx.srv.publish({ type: 'channel.chat.message', message_id: 'a66', message: 'hello', user_name: 'A' });
      const s1 = await c.next(O, 'stream_state', { from: mark });
      assert.ok(s1.metadata.state_version > s0.metadata.state_version, 'a newer state version');
      assertQueue(await c.next(Q, 'queue_state', { from: mark }));
    });

    test('A67: unknown events (debug:event) get no reply', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(O);
      assert.equal((await c.push(ch, 'debug:event', { type: 'x', data: {} }, 1000)).status, 'timeout');
      pong(await c.push(ch, 'ping', {}));
    });
  });
}
