// §10 Transcription: A68-A77.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { VERSIONS } from '../lib/client.js';
import { useServer, client } from '../lib/fixture.js';
import { ISO_US, HEX8, UUID } from '../lib/expect.js';

const ctx = useServer();
const L = 'transcription:live';

for (const version of VERSIONS) {
  describe(`phoenix ${version}: TranscriptionChannel`, () => {
    test('A68: transcription:live joins ok {} then pushes connection_established', async (t) => {
      const c = await client(t, ctx.srv, version);
      const { status, response, joinRef } = await c.join(L);
      assert.equal(status, 'ok');
      assert.deepEqual(response, {});
      const f = await c.nextFrame(L, 'connection_established');
      assert.equal(f[0], joinRef);
      assert.deepEqual({ ...f[4], timestamp: 'T' }, { type: 'transcription:live', timestamp: 'T', status: 'connected' });
      assert.match(f[4].timestamp, ISO_US);
    });

    test('A69: transcription:session:s1 pushes connection_established with the session id', async (t) => {
      const c = await client(t, ctx.srv, version);
      await c.joinOk('transcription:session:s1');
      const p = await c.next('transcription:session:s1', 'connection_established');
      assert.deepEqual({ ...p, timestamp: 'T' }, { type: 'transcription:session', session_id: 's1', timestamp: 'T', status: 'connected' });
      assert.match(p.timestamp, ISO_US);
    });

    test('A70: transcription:bogus is refused', async (t) => {
      const c = await client(t, ctx.srv, version);
      const r = await c.join('transcription:bogus');
      assert.equal(r.status, 'error');
      assert.deepEqual(r.response, { reason: "Invalid transcription channel. Use 'transcription:live' or 'transcription:session:{session_id}'" });
      r.ch.leave();
    });

    test('A71: ping echoes with an ISO timestamp and the channel type', async (t) => {
      const c = await client(t, ctx.srv, version);
      const live = await c.joinOk(L);
      const s1 = await c.joinOk('transcription:session:s1');
      const a = await c.push(live, 'ping', { a: 1 });
      assert.equal(a.status, 'ok');
      assert.deepEqual({ ...a.response, timestamp: 'T' }, { a: 1, pong: true, timestamp: 'T', channel_type: 'live' });
      assert.match(a.response.timestamp, ISO_US);
      const b = await c.push(s1, 'ping', { a: 1 });
      assert.equal(b.response.channel_type, 'session:s1');
    });

    test('A72: submit_transcription reaches live and the session, not other sessions', async (t) => {
      const sender = await client(t, ctx.srv, version);
      const other = await client(t, ctx.srv, version);
      const ch = await sender.joinOk(L);
      await other.joinOk('transcription:session:s1');
      await other.joinOk('transcription:session:s2');
      await other.next('transcription:session:s2', 'connection_established');
      const ms = sender.rec.mark();
      const mo = other.rec.mark();
      const r = await sender.push(ch, 'submit_transcription', { timestamp: '2024-01-01T00:00:00Z', duration: 1.5, text: 'hi', stream_session_id: 's1' });
      assert.equal(r.status, 'ok');
      assert.deepEqual(Object.keys(r.response), ['transcription_id']);
      assert.match(r.response.transcription_id, UUID);
      const want = (p) => {
        assert.deepEqual(Object.keys(p).sort(), ['confidence', 'correlation_id', 'duration', 'id', 'source_id', 'stream_session_id', 'text', 'timestamp']);
        assert.deepEqual({ ...p, timestamp: 'T', correlation_id: 'C' }, {
          id: r.response.transcription_id, correlation_id: 'C', timestamp: 'T', duration: 1.5, text: 'hi', source_id: null,
          stream_session_id: 's1', confidence: null,
        });
        assert.match(p.correlation_id, HEX8);
        assert.equal(new Date(p.timestamp).toISOString(), '2024-01-01T00:00:00.000Z');
      };
      want(await sender.next(L, 'new_transcription', { from: ms }));
      want(await other.next('transcription:session:s1', 'new_transcription', { from: mo }));
      // Ordering marker: s2's ping reply comes after anything it was sent.
      assert.equal((await other.push(other.channels[1], 'ping', {})).status, 'ok');
      assert.equal(other.rec.received((f) => f[2] === 'transcription:session:s2' && f[3] === 'new_transcription', mo).length, 0);
    });

    test('A73-A74: validation errors, sorted by field, with the exact texts', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(L);
      assert.deepEqual(await c.push(ch, 'submit_transcription', { text: 'x' }), { status: 'error', response: { errors: [
        { field: 'duration', messages: ['is required'] }, { field: 'timestamp', messages: ['is required'] }] } });
      const base = { timestamp: '2024-01-01T00:00:00Z', duration: 1, text: 'x' };
      const cases = [
        [{ timestamp: 'yesterday' }, 'timestamp', ['must be a valid ISO 8601 datetime']],
        [{ timestamp: '' }, 'timestamp', ['is required', 'must be a valid ISO 8601 datetime']],
        [{ duration: 0 }, 'duration', ['must be greater than 0']],
        [{ duration: -1 }, 'duration', ['must be greater than 0']],
        [{ text: 'a'.repeat(10001) }, 'text', ['is too long (maximum is 10000 characters)']],
        [{ confidence: 1.5 }, 'confidence', ['must be between 0.0 and 1.0']],
        [{ text: '' }, 'text', ['is required']],
      ];
      for (const [patch, field, messages] of cases) {
        assert.deepEqual(await c.push(ch, 'submit_transcription', { ...base, ...patch }),
          { status: 'error', response: { errors: [{ field, messages }] } }, JSON.stringify(patch).slice(0, 60));
      }
      // Numeric strings are accepted for duration and confidence.
      assert.equal((await c.push(ch, 'submit_transcription', { ...base, duration: '2.5', confidence: '0.9' })).status, 'ok');
    });

    test('A75: get_recent lists the last 5 minutes, newest first', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(L);
      const now = Date.now();
      for (const [i, ago] of [[1, 60000], [2, 30000], [3, 10 * 60000]].values()) {
        const r = await c.push(ch, 'submit_transcription', { timestamp: new Date(now - ago).toISOString(), duration: 1, text: `recent ${i} ${version}` });
        assert.equal(r.status, 'ok');
      }
      const r = await c.push(ch, 'get_recent', {});
      assert.equal(r.status, 'ok');
      assert.deepEqual(Object.keys(r.response).sort(), ['count', 'transcriptions']);
      assert.equal(r.response.count, r.response.transcriptions.length);
      const mine = r.response.transcriptions.filter((x) => x.text.endsWith(version) && x.text.startsWith('recent'));
      assert.deepEqual(mine.map((x) => x.text), [`recent 2 ${version}`, `recent 1 ${version}`], 'within 5 minutes, newest first');
      const times = r.response.transcriptions.map((x) => Date.parse(x.timestamp));
      assert.deepEqual(times, [...times].sort((a, b) => b - a));
      for (const x of r.response.transcriptions) assert.ok(now - Date.parse(x.timestamp) <= 5 * 60000 + 5000);
      const wide = await c.push(ch, 'get_recent', { minutes: 15 });
      assert.ok(wide.response.transcriptions.some((x) => x.text === `recent 3 ${version}`));
    });

    test('A76: get_session_transcriptions only on session channels, ascending', async (t) => {
      const c = await client(t, ctx.srv, version);
      const live = await c.joinOk(L);
      assert.deepEqual(await c.push(live, 'get_session_transcriptions', {}),
        { status: 'error', response: { message: 'Session transcriptions only available on session channels' } });
      const sid = `a76-${version}`;
      const s = await c.joinOk(`transcription:session:${sid}`);
      for (const [i, ts] of ['2024-01-01T00:00:02Z', '2024-01-01T00:00:01Z'].entries()) {
        await c.push(live, 'submit_transcription', { timestamp: ts, duration: 1, text: `t${i}`, stream_session_id: sid });
      }
      const r = await c.push(s, 'get_session_transcriptions', {});
      assert.equal(r.status, 'ok');
      assert.equal(r.response.session_id, sid);
      assert.equal(r.response.count, 2);
      assert.deepEqual(r.response.transcriptions.map((x) => x.text), ['t1', 't0'], 'ascending by timestamp');
      const one = await c.push(s, 'get_session_transcriptions', { limit: 1 });
      assert.equal(one.response.count, 1);
    });

    test('A77: an unknown event is answered Unknown command', async (t) => {
      const c = await client(t, ctx.srv, version);
      const ch = await c.joinOk(L);
      assert.deepEqual(await c.push(ch, 'frobnicate', {}), { status: 'error', response: { message: 'Unknown command: frobnicate' } });
    });
  });
}
