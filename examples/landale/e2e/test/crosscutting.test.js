// §10 Cross-cutting: A78-A81, and the pages' vendored client.
// A78's "garbage internal messages" cannot be sent over the wire; the Go
// channeltest suites send them (every channel's catch-all). Here: dozens of
// unknown pushes on every channel, then ping.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { VERSIONS } from '../lib/client.js';
import { useServer, client } from '../lib/fixture.js';
import { HEX8, normalized } from '../lib/expect.js';
import { files } from '../lib/vendor.js';

const ctx = useServer();

// Topics with the push that follows their join reply.
const INITIAL = {
  'dashboard:main': 'initial_state',
  'overlay:obs': 'initial_state',
  'overlay:twitch': 'initial_state',
  'overlay:system': 'initial_state',
  'stream:overlays': 'stream_state',
  'stream:queue': 'queue_state',
  'transcription:live': 'connection_established',
  'transcription:session:x': 'connection_established',
};

for (const version of VERSIONS) {
  describe(`phoenix ${version}: cross-cutting`, () => {
    test('A78: every channel still answers ping after dozens of unknown pushes', async (t) => {
      const c = await client(t, ctx.srv, version);
      const topics = ['dashboard:main', 'dashboard:services', 'events:all', 'overlay:obs', 'stream:overlays', 'transcription:live'];
      for (const topic of topics) {
        const ch = await c.joinOk(topic);
        const junk = [];
        for (let i = 0; i < 30; i++) junk.push(c.push(ch, `junk:${i}`, { n: i, nested: { deep: [1, 2, 3] } }, 300));
        await Promise.all(junk);
        const r = await c.push(ch, 'ping', {});
        assert.equal(r.status, 'ok', `${topic} answers ping`);
      }
      assert.equal(c.rec.received((f) => f[3] === 'phx_error').length, 0, 'no channel crashed');
    });

    test('A79: initial pushes arrive after the join reply', async (t) => {
      const c = await client(t, ctx.srv, version);
      for (const [topic, event] of Object.entries(INITIAL)) {
        const mark = c.rec.mark();
        const { joinRef } = await c.join(topic);
        const reply = await c.rec.waitFor((r) => r.dir === 'in' && r.frame[2] === topic && r.frame[1] === joinRef && r.frame[3] === 'phx_reply', { from: mark });
        const push = await c.rec.waitFor((r) => r.dir === 'in' && r.frame[2] === topic && r.frame[3] === event, { from: mark });
        assert.ok(push.index > reply.index, `${topic}: ${event} after the reply`);
        assert.equal(push.frame[0], joinRef, `${topic}: ${event} carries the join_ref`);
      }
    });

    test('A80: events pushed by every channel kind carry the normalized core fields', async (t) => {
      const c = await client(t, ctx.srv, version);
      const topics = { 'dashboard:main': 'twitch_event', 'events:twitch': 'follower', 'overlay:twitch': 'twitch_event' };
      for (const topic of Object.keys(topics)) await c.joinOk(topic);
      const mark = c.rec.mark();
      const e = await ctx.srv.publish({ type: 'channel.follow', user_name: 'Core', user_login: 'core', user_id: '1' });
      for (const [topic, push] of Object.entries(topics)) {
        const p = await c.next(topic, push, { from: mark, where: (x) => x.id === e.id });
        normalized(p);
        assert.equal(p.source_id, null);
        assert.equal(p.raw_type, 'channel.follow');
        assert.match(p.correlation_id, HEX8);
      }
    });

    test('A81: the channels of one socket share one 8-hex correlation id', async (t) => {
      const a = await client(t, ctx.srv, version);
      const b = await client(t, ctx.srv, version);
      const name = `a81-${version}-${Math.random().toString(16).slice(2, 8)}`;
      const live = await a.joinOk('transcription:live');
      await a.joinOk('stream:overlays', { overlay_type: name });
      await a.joinOk('overlay:obs');
      await b.joinOk('stream:overlays', { overlay_type: `${name}-b` });
      const mark = a.rec.mark();
      const r = await a.push(live, 'submit_transcription', { timestamp: new Date().toISOString(), duration: 1, text: 'a81' });
      assert.equal(r.status, 'ok');
      const tr = await a.next('transcription:live', 'new_transcription', { from: mark, where: (p) => p.id === r.response.transcription_id });
      assert.match(tr.correlation_id, HEX8);
      const { body } = await ctx.srv.api('GET', '/api/overlays');
      const mine = body.overlays.filter((o) => o.correlation_id === tr.correlation_id);
      assert.deepEqual(mine.map((o) => o.topic).sort(), ['overlay:obs', 'stream:overlays'], 'both overlay channels of the socket');
      assert.equal(mine.find((o) => o.topic === 'stream:overlays').name, name);
      assert.equal(mine[0].environment, 'development', 'the environment param');
      const other = body.overlays.find((o) => o.name === `${name}-b`);
      assert.match(other.correlation_id, HEX8);
      assert.notEqual(other.correlation_id, tr.correlation_id, 'another socket has another id');
    });
  });
}

describe('pages', () => {
  test('the served phoenix client is the npm package file, unmodified', async () => {
    for (const [src, dst] of files()) {
      const want = fs.readFileSync(src);
      assert.ok(fs.readFileSync(dst).equals(want), `${dst} equals ${src} (run npm run vendor)`);
    }
    const res = await fetch(`${ctx.srv.url}/vendor/phoenix.mjs`);
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(fs.readFileSync(files()[0][0])), 'served byte for byte');
  });

  test('the pages and their scripts are served', async () => {
    for (const path of ['/overlay.html', '/dashboard.html', '/landale.js', '/overlay.js', '/dashboard.js', '/overlay.css', '/dashboard.css']) {
      const res = await fetch(ctx.srv.url + path);
      await res.arrayBuffer();
      assert.equal(res.status, 200, path);
    }
    const root = await fetch(`${ctx.srv.url}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/dashboard.html');
  });
});
