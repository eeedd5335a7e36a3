// Per-file fixtures: one server for the file, clients closed after each test.
import { before, after } from 'node:test';
import http from 'node:http';
import crypto from 'node:crypto';
import { LandaleServer } from './server.js';
import { Client, RawClient } from './client.js';

/**
 * useServer starts one server (with args) for the test file and returns a
 * getter-backed handle: ctx.srv is the server.
 */
export function useServer(args = []) {
  const ctx = {};
  before(async () => { ctx.srv = await LandaleServer.start({ args }); });
  after(async () => { await ctx.srv?.stop(); });
  return ctx;
}

/** client connects a phoenix.js client closed when test t ends. */
export async function client(t, srv, version, opts) {
  const c = await Client.connect(srv, version, opts);
  t.after(() => c.close());
  return c;
}

/** raw connects a raw ws client closed when test t ends. */
export async function raw(t, srv, opts) {
  const c = await RawClient.connect(srv, opts);
  t.after(() => c.close());
  return c;
}

/**
 * upgrade sends one HTTP upgrade request and resolves {status, headers}
 * (101 on success, the refusal otherwise); the socket is then destroyed.
 */
export function upgrade(srv, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(srv.url + path, {
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'), ...headers,
      },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode, headers: res.headers }); });
    req.on('response', (res) => { res.resume(); resolve({ status: res.statusCode, headers: res.headers }); });
    req.on('error', reject);
    req.end();
  });
}
