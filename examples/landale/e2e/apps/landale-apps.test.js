// Landale's own apps (its overlays and dashboard, built from its repository
// with its own toolchain by landale-apps/build.mjs) in Chromium against the
// Go server: each page connects with its phoenix.js 1.8.0, joins its
// channels and renders what the server pushes; the dashboard's Activity Log
// loads its history over HTTP without an error.
//
// Not part of `make test`: Landale's repository has no licence, so its
// apps cannot be vendored here and CI (which reaches no GitHub) cannot
// build them. Run `make landale-apps` (or `npm run test:landale-apps`)
// after `npm run build:landale-apps [-- --src <checkout>]`; a missing build
// or Chromium then fails the run. Run without LANDALE_APPS=required (plain
// `node --test apps/`) it skips instead.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LandaleServer } from '../lib/server.js';
import { AppsServer } from '../lib/apps-server.js';
import { Client } from '../lib/client.js';
import { findChromium, launch } from '../lib/browser.js';
import { current, outDir, LANDALE_COMMIT } from '../landale-apps/build.mjs';

const chromiumPath = findChromium();
const required = process.env.LANDALE_APPS === 'required';
const built = current();
let skip = false;
if (!built) skip = `Landale's apps are not built (${outDir}); run: npm run build:landale-apps [-- --src <landale checkout at ${LANDALE_COMMIT.slice(0, 7)}>]`;
else if (!chromiumPath) skip = 'Chromium not found; install it with: apt-get install -y chromium';
if (required) skip = false;

let srv;
let overlays;
let dashboardApp;
let browser;
let shots;
const pageErrors = [];

before(async () => {
  if (skip) return;
  if (!built) throw new Error(`LANDALE_APPS=required but ${outDir} holds no current build`);
  if (!chromiumPath) throw new Error('LANDALE_APPS=required but Chromium is missing');
  shots = fs.mkdtempSync(path.join(os.tmpdir(), 'landale-apps-shots-'));
  // The apps are served from their own origins, which the Go server must
  // allow (-origins): it trusts no Host header, only its list.
  overlays = await AppsServer.start(path.join(outDir, 'overlays'), 0);
  dashboardApp = await AppsServer.start(path.join(outDir, 'dashboard'), 0);
  srv = await LandaleServer.start({ args: ['-origins', `${overlays.url},${dashboardApp.url}`] });
  overlays.upstreamPort = srv.port;
  dashboardApp.upstreamPort = srv.port;
  browser = await launch(chromiumPath);
});

after(async () => {
  await browser?.close();
  await overlays?.stop();
  await dashboardApp?.stop();
  await srv?.stop();
  if (shots) console.log(`screenshots: ${shots}`);
});

async function page(name, width, height) {
  const p = await browser.context.newPage();
  await p.setViewportSize({ width, height });
  p.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
  return p;
}

// A Node phoenix.js client, to drive the commands the pages only display.
async function driver(t) {
  const c = await Client.connect(srv, '1.8.0');
  t.after(() => c.close());
  return c;
}

test("Landale's overlays and dashboard against the Go server", { skip, timeout: 150000 }, async (t) => {
  await t.test('dashboard: connects, loads the Activity Log history, shows live events and the queue', async (t) => {
    await srv.publish({ type: 'channel.follow', user_id: '1001', user_login: 'historyfollower', user_name: 'HistoryFollower' });
    const d = await page('dashboard', 1440, 900);
    await d.goto(`${dashboardApp.url}/`);
    await d.getByText('WebSocket: Connected').waitFor({ timeout: 20000 });
    // History: GET /api/activity/events?limit=50 (404 before the Go server served it).
    await d.getByText('HistoryFollower followed').waitFor({ timeout: 10000 });
    assert.equal(await d.getByText(/^Error: /).count(), 0, 'the Activity Log shows no error');
    assert.ok(dashboardApp.requests.includes('GET /api/activity/events?limit=50 200'), dashboardApp.requests.join('\n'));
    // Live: a twitch_event pushed on dashboard:main.
    await srv.publish({ type: 'channel.follow', user_id: '1002', user_login: 'livefollower', user_name: 'LiveFollower' });
    await d.getByText('LiveFollower followed').waitFor({ timeout: 10000 });
    // Queue: a force_content from another client shows in the dashboard's
    // stream:queue list (queue_state pushes).
    const c = await driver(t);
    const ch = await c.joinOk('stream:overlays');
    const r = await c.push(ch, 'force_content', { type: 'manual_override', data: { message: 'from the test' }, duration: 60000 });
    assert.equal(r.status, 'ok');
    const st = await c.next('stream:overlays', 'stream_state', { where: (p) => p.alerts.length > 0 });
    await d.getByText(st.alerts[0].id).waitFor({ timeout: 10000 });
    await d.screenshot({ path: path.join(shots, 'landale-dashboard.png') });
  });

  await t.test('dashboard OAuth page reads /api/oauth/status', async () => {
    const d = await page('oauth', 1280, 800);
    const status = d.waitForResponse((res) => res.url().endsWith('/api/oauth/status'));
    await d.goto(`${dashboardApp.url}/oauth`);
    const res = await status;
    assert.equal(res.status(), 200);
    assert.deepEqual(await res.json(), { connected: false });
    await d.screenshot({ path: path.join(shots, 'landale-oauth.png') });
  });

  await t.test('omnibar: connects, renders the stream state and follows a show change', async () => {
    const o = await page('omnibar', 1920, 1080);
    await o.goto(`${overlays.url}/omnibar`);
    const root = o.locator('.omnibar');
    await o.waitForSelector('.omnibar[data-connected="true"]', { state: 'attached', timeout: 20000 });
    assert.equal(await root.getAttribute('data-show'), 'variety');
    await srv.publish({ type: 'channel.update', broadcaster_user_id: '123456', broadcaster_user_login: 'streamer',
      broadcaster_user_name: 'Streamer', title: 'IronMON', category_id: '490100', category_name: 'Pokémon FireRed/LeafGreen' });
    await o.waitForSelector('.omnibar[data-show="ironmon"]', { state: 'attached', timeout: 10000 });
    await o.screenshot({ path: path.join(shots, 'landale-omnibar.png') });
  });

  await t.test('takeover: shows a takeover pushed on stream:overlays and clears it', async (t) => {
    const joins = async () => (await srv.api('GET', '/api/overlays')).body.overlays.filter((x) => x.topic === 'stream:overlays').length;
    const before = await joins();
    const o = await page('takeover', 1920, 1080);
    await o.goto(`${overlays.url}/takeover`);
    await o.waitForSelector('.takeover-overlay[data-connected="true"]', { state: 'attached', timeout: 20000 });
    // The page joins stream:overlays on its own socket; wait until the server tracks that join.
    for (let i = 0; (await joins()) <= before; i++) {
      assert.ok(i < 200, 'the takeover page never joined stream:overlays');
      await new Promise((r) => setTimeout(r, 50));
    }
    const c = await driver(t);
    const ch = await c.joinOk('stream:overlays');
    const r = await c.push(ch, 'takeover', { type: 'technical-difficulties', message: 'Back soon, from pyre', duration: 60000 });
    assert.equal(r.status, 'ok');
    await o.waitForSelector('.takeover-overlay[data-active="true"][data-type="technical-difficulties"]', { state: 'attached', timeout: 10000 });
    await o.getByText('Back soon, from pyre').waitFor({ state: 'attached', timeout: 10000 });
    await o.screenshot({ path: path.join(shots, 'landale-takeover.png') });
    assert.equal((await c.push(ch, 'takeover_clear', {})).status, 'ok');
    await o.waitForSelector('.takeover-overlay[data-active="false"]', { state: 'attached', timeout: 10000 });
  });

  if (pageErrors.length) console.log(`page errors (the apps' own):\n${pageErrors.join('\n')}`);
});
