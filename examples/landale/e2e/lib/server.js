// Builds and runs the Landale example server for the suites.
//
//   const bin = await build();                    // go build, once per process
//   const srv = await LandaleServer.start({ args: ['-slow', '300ms'] });
//   srv.url, srv.wsURL, srv.port; await srv.api('POST', '/api/simulate', {...});
//   await srv.restart();                          // SIGTERM, then the same port again
//   await srv.stop();
//
// LANDALE_BIN names a prebuilt binary and skips the build.
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../../..');

let built = null;

/** build compiles ./examples/landale once and returns the binary's path. */
export function build() {
  if (process.env.LANDALE_BIN) return Promise.resolve(path.resolve(process.env.LANDALE_BIN));
  built ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'landale-bin-'));
    const bin = path.join(dir, 'landale');
    await promisify(execFile)('go', ['build', '-o', bin, './examples/landale'], { cwd: repoRoot, maxBuffer: 1 << 24 });
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    return bin;
  })();
  return built;
}

const LISTENING = /listening on (http:\/\/[^\s]+)/;

export class LandaleServer {
  /**
   * start runs the server with -addr 127.0.0.1:0 -demo=false and the extra
   * args, and resolves once it printed its URL.
   */
  static async start({ args = [], addr = '127.0.0.1:0' } = {}) {
    const s = new LandaleServer(await build(), args);
    await s.#spawn(addr);
    return s;
  }

  constructor(bin, args) {
    this.bin = bin;
    this.args = args;
    this.proc = null;
    this.output = '';
  }

  get wsURL() { return `ws://127.0.0.1:${this.port}/socket`; }

  #spawn(addr) {
    return new Promise((resolve, reject) => {
      const proc = spawn(this.bin, ['-addr', addr, '-demo=false', ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.proc = proc;
      this.exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
      let out = '';
      const timer = setTimeout(() => reject(new Error(`landale did not start within 15 s:\n${out}`)), 15000);
      const onData = (chunk) => {
        out += chunk;
        this.output += chunk;
        const m = LISTENING.exec(out);
        if (m && !this.url) {
          clearTimeout(timer);
          this.url = m[1];
          this.port = Number(new URL(this.url).port);
          resolve();
        }
      };
      proc.stdout.setEncoding('utf8').on('data', onData);
      proc.stderr.setEncoding('utf8').on('data', (c) => { this.output += c; });
      proc.once('exit', (code) => {
        if (!this.url) {
          clearTimeout(timer);
          reject(new Error(`landale exited with ${code} before listening:\n${this.output}`));
        }
      });
    });
  }

  /** stop sends SIGTERM (graceful: sockets close with 1012) and waits. */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
    this.proc.kill('SIGTERM');
    await this.exited;
    clearTimeout(timer);
  }

  /** restart stops the server and starts it again on the same port. */
  async restart() {
    const port = this.port;
    await this.stop();
    this.url = undefined;
    // The port was just released; retry briefly if the kernel still holds it.
    for (let i = 0; ; i++) {
      try {
        await this.#spawn(`127.0.0.1:${port}`);
        return;
      } catch (err) {
        if (i >= 20 || !/address already in use/.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** api calls an HTTP route and returns {status, body, headers}. */
  async api(method, route, body, headers = {}) {
    const res = await fetch(this.url + route, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, body: json, text, headers: res.headers };
  }

  /** simulate sets a service's mode and checks the answer. */
  async simulate(service, mode) {
    const r = await this.api('POST', '/api/simulate', { service, mode });
    if (r.status !== 200) throw new Error(`simulate ${service}=${mode}: ${r.status} ${r.text}`);
    return r.body;
  }

  /** publish posts one event to /api/events and returns the published event. */
  async publish(event) {
    const r = await this.api('POST', '/api/events', event);
    if (r.status !== 200) throw new Error(`publish ${event.type}: ${r.status} ${r.text}`);
    return r.body.event;
  }
}
