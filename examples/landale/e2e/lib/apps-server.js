// Serves one built Landale app (a vite build: index.html + assets) the way
// its vite server would, at the root of its own origin, and forwards
// /socket (WebSocket upgrades) and /api to the Go server. The apps are
// built to use their page's own origin for both (see
// landale-apps/build.mjs), so the browser sees one origin per app, like the
// real dashboard on vite at :5174 and overlays at :8008.
//
//   const apps = await AppsServer.start(dir, srv.port);   apps.url; await apps.stop();
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json', '.woff2': 'font/woff2',
  '.ico': 'image/x-icon', '.webp': 'image/webp', '.gif': 'image/gif', '.mp3': 'audio/mpeg',
};

const proxied = (url) => url.startsWith('/socket/') || url.startsWith('/api/');

export class AppsServer {
  static async start(dir, upstreamPort) {
    const s = new AppsServer(path.resolve(dir), upstreamPort);
    await new Promise((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, '127.0.0.1', resolve);
    });
    s.url = `http://127.0.0.1:${s.server.address().port}`;
    return s;
  }

  constructor(dir, upstreamPort) {
    this.dir = dir;
    this.upstreamPort = upstreamPort;
    this.sockets = new Set();
    this.requests = []; // proxied requests: "GET /api/... 200"
    this.server = http.createServer((req, res) => this.#serve(req, res));
    this.server.on('connection', (c) => { this.sockets.add(c); c.once('close', () => this.sockets.delete(c)); });
    this.server.on('upgrade', (req, client, head) => this.#upgrade(req, client, head));
  }

  #serve(req, res) {
    if (proxied(req.url)) {
      const up = http.request({ host: '127.0.0.1', port: this.upstreamPort, method: req.method, path: req.url,
        headers: req.headers }, (ur) => {
        this.requests.push(`${req.method} ${req.url} ${ur.statusCode}`);
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => { res.writeHead(502); res.end(); });
      req.pipe(up);
      return;
    }
    // A file of the build, or index.html for the app's client-side routes.
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = path.join(this.dir, path.normalize(rel));
    if (!file.startsWith(this.dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      file = path.join(this.dir, 'index.html');
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  }

  // #upgrade forwards the upgrade request as is (Host and Origin included,
  // so the Go server checks the page's real origin) and splices the sockets.
  #upgrade(req, client, head) {
    if (!proxied(req.url)) { client.destroy(); return; }
    const up = net.connect(this.upstreamPort, '127.0.0.1', () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(raw + '\r\n');
      if (head?.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    this.sockets.add(up);
    up.once('close', () => { this.sockets.delete(up); client.destroy(); });
    client.once('close', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  }

  async stop() {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
