// Clients for the acceptance suite: the official phoenix.js Socket on a
// recording `ws` transport, and a raw `ws` client for frames phoenix.js
// never sends. Both log every frame in a Recorder, which tests wait on.
import WebSocket from 'ws';

export const VERSIONS = (process.env.PHOENIX_VERSIONS || '1.8.0,1.8.16').split(',').map((v) => v.trim()).filter(Boolean);

const modules = new Map();

/** phoenix imports the Socket class of one client version (npm alias phoenix-<v>). */
export async function phoenix(version) {
  if (!modules.has(version)) modules.set(version, import(`phoenix-${version}`));
  return modules.get(version);
}

/** Recorder keeps the frames of one connection, in order. */
export class Recorder {
  constructor() {
    this.records = []; // {dir: 'in'|'out'|'close'|'upgrade', frame?, at}
    this.waiters = new Set();
  }

  /** mark returns a position: waits `from` it only see later records. */
  mark() { return this.records.length; }

  add(rec) {
    rec.at = Date.now();
    rec.index = this.records.length;
    this.records.push(rec);
    for (const w of this.waiters) {
      if (w.pred(rec)) {
        this.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(rec);
      }
    }
  }

  /** waitFor resolves with the first record from `from` on that matches pred. */
  waitFor(pred, { from = 0, timeout = 3000, what = 'a matching frame' } = {}) {
    for (let i = from; i < this.records.length; i++) if (pred(this.records[i])) return Promise.resolve(this.records[i]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`timed out after ${timeout} ms waiting for ${what}; last frames:\n${this.tail()}`));
      }, timeout);
      this.waiters.add(w);
    });
  }

  /** received returns the incoming frames from `from` on matching pred. */
  received(pred = () => true, from = 0) {
    return this.records.slice(from).filter((r) => r.dir === 'in' && pred(r.frame)).map((r) => r.frame);
  }

  tail(n = 8) {
    return this.records.slice(-n).map((r) => `  ${r.dir} ${r.frame ? JSON.stringify(r.frame).slice(0, 300) : r.code ?? ''}`).join('\n');
  }
}

function parse(data) {
  try { return JSON.parse(String(data)); } catch { return ['<unparsable>', null, null, null, String(data)]; }
}

/** recordingTransport returns a ws subclass that phoenix.js uses as its transport. */
function recordingTransport(rec, wsOptions) {
  return class RecordingWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, wsOptions);
      rec.url = url;
      this.on('upgrade', (res) => rec.add({ dir: 'upgrade', status: res.statusCode, headers: res.headers }));
      this.on('message', (data) => rec.add({ dir: 'in', frame: parse(data) }));
      this.on('close', (code, reason) => rec.add({ dir: 'close', code, reason: String(reason) }));
    }

    send(data, ...rest) {
      rec.add({ dir: 'out', frame: parse(data) });
      return super.send(data, ...rest);
    }
  };
}

// Frame predicates: frames are [join_ref, ref, topic, event, payload].
export const isPush = (topic, event) => (r) => r.dir === 'in' && r.frame[2] === topic && r.frame[3] === event;

/**
 * Client is one phoenix.js Socket of a given version, connected to a Landale
 * server, with every frame recorded.
 */
export class Client {
  static async connect(srv, version, { params = { environment: 'development' }, headers, heartbeatIntervalMs = 15000 } = {}) {
    const { Socket } = await phoenix(version);
    const c = new Client(version);
    c.socket = new Socket(srv.wsURL, {
      transport: recordingTransport(c.rec, headers ? { headers } : undefined),
      params,
      heartbeatIntervalMs,
      reconnectAfterMs: () => 60000, // a test that loses its socket should fail, not reconnect
      rejoinAfterMs: () => 60000,
    });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('socket did not open within 5 s')), 5000);
      c.socket.onOpen(() => { clearTimeout(timer); resolve(); });
      c.socket.connect();
    });
    return c;
  }

  constructor(version) {
    this.version = version;
    this.rec = new Recorder();
    this.channels = [];
  }

  /** join joins topic and resolves {ch, status, response, joinRef}. */
  join(topic, params = {}, timeout = 3000) {
    const ch = this.socket.channel(topic, params);
    this.channels.push(ch);
    return new Promise((resolve) => {
      const done = (status) => (response) => resolve({ ch, status, response, joinRef: ch.joinRef() });
      ch.join(timeout).receive('ok', done('ok')).receive('error', done('error')).receive('timeout', done('timeout'));
    });
  }

  /** joinOk joins and fails unless the reply is ok. */
  async joinOk(topic, params = {}) {
    const r = await this.join(topic, params);
    if (r.status !== 'ok') throw new Error(`join ${topic}: ${r.status} ${JSON.stringify(r.response)}`);
    return r.ch;
  }

  /** push pushes and resolves {status: 'ok'|'error'|'timeout', response}. */
  push(ch, event, payload = {}, timeout = 3000) {
    return new Promise((resolve) => {
      ch.push(event, payload, timeout)
        .receive('ok', (response) => resolve({ status: 'ok', response }))
        .receive('error', (response) => resolve({ status: 'error', response }))
        .receive('timeout', () => resolve({ status: 'timeout' }));
    });
  }

  /** next waits for a server push of event on topic (from a mark) and returns its payload. */
  async next(topic, event, { from = 0, timeout = 3000, where = () => true } = {}) {
    const r = await this.rec.waitFor((x) => isPush(topic, event)(x) && where(x.frame[4], x.frame),
      { from, timeout, what: `push ${event} on ${topic}` });
    return r.frame[4];
  }

  /** nextFrame is next, returning the whole frame. */
  async nextFrame(topic, event, opts = {}) {
    const { from = 0, timeout = 3000, where = () => true } = opts;
    const r = await this.rec.waitFor((x) => isPush(topic, event)(x) && where(x.frame[4], x.frame),
      { from, timeout, what: `push ${event} on ${topic}` });
    return r.frame;
  }

  close() {
    return new Promise((resolve) => {
      for (const ch of this.channels) ch.rejoinTimer?.reset?.();
      this.socket.disconnect(() => resolve(), 1000, 'test done');
    });
  }
}

/** RawClient is a plain ws client for frames phoenix.js never sends. */
export class RawClient {
  static connect(srv, { params = 'vsn=2.0.0&environment=development', headers, perMessageDeflate = true } = {}) {
    const c = new RawClient();
    return new Promise((resolve, reject) => {
      c.ws = new WebSocket(`${srv.wsURL}/websocket?${params}`, { headers, perMessageDeflate });
      c.ws.on('upgrade', (res) => c.rec.add({ dir: 'upgrade', status: res.statusCode, headers: res.headers }));
      c.ws.on('message', (data) => c.rec.add({ dir: 'in', frame: parse(data) }));
      c.ws.on('close', (code, reason) => c.rec.add({ dir: 'close', code, reason: String(reason) }));
      c.ws.once('open', () => resolve(c));
      c.ws.once('error', reject);
      c.ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
    });
  }

  constructor() { this.rec = new Recorder(); }

  send(frame) {
    this.rec.add({ dir: 'out', frame });
    this.ws.send(JSON.stringify(frame));
  }

  /** reply waits for the phx_reply to ref. */
  async reply(ref, opts = {}) {
    const r = await this.rec.waitFor((x) => x.dir === 'in' && x.frame[1] === ref && x.frame[3] === 'phx_reply',
      { what: `reply to ref ${ref}`, ...opts });
    return r.frame;
  }

  close() {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close(1000);
    });
  }
}
