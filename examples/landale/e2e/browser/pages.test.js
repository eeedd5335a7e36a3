// The two pages in a real browser (Debian's Chromium, headless, through
// playwright-core) against a real server: connected state, a takeover
// clicked on the dashboard shown by the overlay, an event published over
// HTTP shown by both, a server restart on the same port that both pages
// recover from, and screenshots of both pages in a temporary folder.
//
// Without Chromium the test is skipped, except under CI=true where it fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LandaleServer } from '../lib/server.js';
import { findChromium, launch, CHROMIUM_CANDIDATES } from '../lib/browser.js';

const chromiumPath = findChromium();
const inCI = Boolean(process.env.CI) && process.env.CI !== 'false';
const missing = `Chromium not found (looked at ${CHROMIUM_CANDIDATES.join(', ')}); install it with: apt-get install -y chromium`;
const skip = !chromiumPath && !inCI ? missing : false;

let srv;
let browser;
let overlay;
let dashboard;
let shots;
const pageErrors = [];

const CID = /^[0-9a-f]{8}$/;

before(async () => {
  if (skip) return;
  if (!chromiumPath) throw new Error(`${missing} (CI=true: a missing browser fails this test)`);
  shots = fs.mkdtempSync(path.join(os.tmpdir(), 'landale-shots-'));
  srv = await LandaleServer.start();
  browser = await launch(chromiumPath);
  overlay = await browser.context.newPage();
  await overlay.setViewportSize({ width: 1280, height: 720 });
  dashboard = await browser.context.newPage();
  await dashboard.setViewportSize({ width: 1440, height: 900 });
  for (const [name, page] of [['overlay', overlay], ['dashboard', dashboard]]) {
    page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
  }
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  if (shots) console.log(`screenshots: ${shots}`);
});

// ready waits until a page's socket is connected, every channel joined and
// the correlation id known (other than `not`), and returns that id.
async function ready(page, not = '') {
  await page.waitForFunction((old) => {
    const d = document.body.dataset;
    return d.socket === 'connected' && d.ready === 'true' && /^[0-9a-f]{8}$/.test(d.cid || '') && d.cid !== old;
  }, not, { timeout: 20000 });
  return page.evaluate(() => document.body.dataset.cid);
}

test('overlay and dashboard in Chromium', { skip, timeout: 150000 }, async (t) => {
  let overlayCid;
  let dashboardCid;

  await t.test('both pages connect and show their correlation ids', async () => {
    await overlay.goto(`${srv.url}/overlay.html`);
    await dashboard.goto(`${srv.url}/dashboard.html`);
    overlayCid = await ready(overlay);
    dashboardCid = await ready(dashboard);
    assert.match(overlayCid, CID);
    assert.match(dashboardCid, CID);
    assert.notEqual(overlayCid, dashboardCid, 'each page has its own connection');
    assert.equal(await dashboard.textContent('#conn-state'), 'connected');
    assert.equal(await dashboard.textContent('#conn-cid'), dashboardCid);
    assert.equal(await overlay.textContent('#pill-cid'), overlayCid);
    // The server agrees: both pages' stream:overlays joins carry these ids.
    const { body } = await srv.api('GET', '/api/overlays');
    const ids = body.overlays.filter((o) => o.topic === 'stream:overlays').map((o) => o.correlation_id);
    assert.ok(ids.includes(overlayCid) && ids.includes(dashboardCid), JSON.stringify(body.overlays));
    // The dashboard lists the overlay page's channels live, through Presence.
    await dashboard.waitForSelector(`#overlays li[data-topic="overlay:obs"][data-cid="${overlayCid}"]`);
    await dashboard.waitForSelector(`#overlays li[data-topic="overlay:music"][data-cid="${overlayCid}"]`);
    // The services table comes from /api/status: every breaker closed.
    await dashboard.waitForSelector('#services tr[data-service="stream"][data-breaker="closed"]');
    assert.equal(await dashboard.locator('#services tr[data-breaker="closed"]').count(), 6);
  });

  await t.test('the dashboard fits a 1280 px window', async () => {
    await dashboard.setViewportSize({ width: 1280, height: 900 });
    try {
      const problems = await dashboard.evaluate(() => {
        const out = [];
        const box = (el) => el.getBoundingClientRect();
        // Nothing in a card runs past the card's edges (the services table did).
        for (const card of document.querySelectorAll('.card')) {
          const c = box(card);
          for (const el of card.querySelectorAll('table, tr, td, th, select, input, button')) {
            const r = box(el);
            if (r.width && (r.right > c.right + 0.5 || r.left < c.left - 0.5)) out.push(`${el.tagName}#${el.id} runs past its card`);
          }
        }
        // The takeover buttons cover no input (Show takeover covered Seconds).
        for (const b of document.querySelectorAll('#takeover-form button')) {
          for (const i of document.querySelectorAll('#takeover-form input, #takeover-form select')) {
            const [x, y] = [box(b), box(i)];
            if (x.left < y.right && y.left < x.right && x.top < y.bottom && y.top < x.bottom) out.push(`#${b.id} covers #${i.id}`);
          }
        }
        // The takeover type select shows its longest option whole.
        const sel = document.getElementById('takeover-type');
        const probe = document.createElement('span');
        probe.style.cssText = `position:absolute;visibility:hidden;white-space:nowrap;font:${getComputedStyle(sel).font}`;
        document.body.append(probe);
        const cs = getComputedStyle(sel);
        const room = sel.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 20; // 20 px: the arrow
        for (const o of sel.options) {
          probe.textContent = o.text;
          if (probe.getBoundingClientRect().width > room) out.push(`the type select cuts off "${o.text}"`);
        }
        probe.remove();
        return out;
      });
      assert.deepEqual(problems, []);
    } finally {
      await dashboard.setViewportSize({ width: 1440, height: 900 });
    }
  });

  await t.test('a takeover clicked on the dashboard covers the overlay', async () => {
    await dashboard.selectOption('#takeover-type', 'technical-difficulties');
    await dashboard.fill('#takeover-message', 'Back in five!');
    await dashboard.fill('#takeover-duration', '60');
    await dashboard.click('#takeover-send');
    await overlay.waitForSelector('#takeover[data-active="true"][data-type="technical-difficulties"]', { state: 'attached' });
    assert.equal(await overlay.textContent('#takeover-message'), 'Back in five!');
    await dashboard.waitForSelector('#replies li[data-what="takeover"][data-status="ok"]');
    assert.match(await dashboard.textContent('#replies li[data-what="takeover"]'), /takeover_sent technical-difficulties/);
    await overlay.bringToFront(); // a background tab does not run its fade-in
    await overlay.waitForFunction(() => getComputedStyle(document.getElementById('takeover')).opacity === '1');
    await overlay.screenshot({ path: path.join(shots, 'overlay-takeover.png') });
    await dashboard.bringToFront(); // clicks wait for rendered frames, which a background tab lacks
    await dashboard.click('#takeover-clear');
    await overlay.waitForSelector('#takeover[data-active="false"]', { state: 'attached' });
    await dashboard.waitForSelector('#replies li[data-what="takeover_clear"][data-status="ok"]');
  });

  await t.test('a scene change clicked on the dashboard reaches the overlay', async () => {
    await dashboard.click('#scenes button[data-scene="Gaming"]');
    await overlay.waitForFunction(() => document.getElementById('scene-name').textContent === 'Gaming');
    await dashboard.waitForSelector('#replies li[data-what="obs:set_current_scene"][data-status="ok"]');
    await dashboard.waitForSelector('#scenes button[data-scene="Gaming"][aria-pressed="true"]');
  });

  await t.test('an event published over HTTP appears on both pages', async () => {
    const text = `hello from the e2e test ${Date.now().toString(36)}`;
    const e = await srv.publish(chat('E2E_Tester', text));
    await overlay.waitForSelector(`#chat-list li[data-id="${e.message_id}"]`);
    assert.match(await overlay.textContent(`#chat-list li[data-id="${e.message_id}"]`), new RegExp(text));
    await dashboard.waitForSelector(`#events li[data-id="${e.id}"]`);
    assert.match(await dashboard.textContent(`#events li[data-id="${e.id}"]`), new RegExp(text));
  });

  await t.test('the dashboard shows breakers opening and the stream fallback', async () => {
    await dashboard.selectOption('select[data-service="obs"]', 'failing');
    await dashboard.waitForSelector('#replies li[data-what="simulate obs"][data-status="ok"]');
    await dashboard.waitForSelector('#services tr[data-service="obs"][data-mode="failing"]', { state: 'attached' });
    // Five failed calls open the breaker (README: Circuit breakers).
    const failed = '#replies li[data-what="obs:get_status"][data-status="error"]';
    for (let i = 1; i <= 5; i++) {
      await dashboard.click('[data-obs="get_status"]');
      await dashboard.waitForFunction(([sel, n]) => document.querySelectorAll(sel).length >= n, [failed, i]);
    }
    await dashboard.waitForSelector('#services tr[data-service="obs"][data-breaker="open"][data-status="failing fast"]', { state: 'attached' });
    await dashboard.selectOption('select[data-service="stream"]', 'down');
    await dashboard.waitForSelector('#services tr[data-service="stream"][data-status="fallback"]', { state: 'attached' });
    // Back to normal: a mode change resets the breaker.
    await dashboard.selectOption('select[data-service="stream"]', 'up');
    await dashboard.selectOption('select[data-service="obs"]', 'up');
    await dashboard.waitForSelector('#services tr[data-service="obs"][data-breaker="closed"][data-status="ok"]', { state: 'attached' });
    await dashboard.waitForSelector('#services tr[data-service="stream"][data-status="ok"]', { state: 'attached' });
  });

  await t.test('both pages recover after a server restart', async () => {
    await srv.restart();
    const overlayCid2 = await ready(overlay, overlayCid);
    const dashboardCid2 = await ready(dashboard, dashboardCid);
    assert.notEqual(overlayCid2, overlayCid, 'a new connection has a new correlation id');
    assert.notEqual(dashboardCid2, dashboardCid);
    await dashboard.waitForFunction(() => /reconnected 1×/.test(document.getElementById('conn-reconnects').textContent));
    // Subscriptions are back too: a fresh event arrives on both pages.
    const e = await srv.publish(chat('Restart_Check', 'still here after the restart'));
    await overlay.waitForSelector(`#chat-list li[data-id="${e.message_id}"]`);
    await dashboard.waitForSelector(`#events li[data-id="${e.id}"]`);
    // And the dashboard's commands work on the new connection.
    await dashboard.click('[data-obs="get_status"]');
    await dashboard.waitForSelector('#replies li[data-what="obs:get_status"][data-status="ok"]');
  });

  await t.test('screenshots of both pages', async () => {
    // Some life for the pictures: interactions, a cheer alert, music, chat.
    await srv.publish({ type: 'channel.follow', user_name: 'PixelPaladin', user_login: 'pixelpaladin' });
    await srv.publish({ type: 'channel.subscribe', user_name: 'QuietLurker', user_login: 'quietlurker', tier: '1000' });
    await srv.publish({ type: 'channel.cheer', user_name: 'ElixirWizard', user_login: 'elixirwizard', bits: 1000, message: 'Cheer1000 nice' });
    await srv.publish({ type: 'rainwave.update', station_id: 2, station_name: 'Covers', listening: true, enabled: true,
      song_id: 124, song_title: 'Gusty Garden Galaxy', artist: 'Mahito Yokota', album: 'Super Mario Galaxy' });
    await srv.publish(chat('GopherGal', 'the overlay survived a restart Kappa', ['Kappa']));
    const last = await srv.publish(chat('Kanto_Runner', 'avalonHype avalonHype', [], ['avalonHype']));
    await overlay.waitForSelector(`#chat-list li[data-id="${last.message_id}"]`);
    await overlay.waitForSelector('#alert:not([hidden])');
    await overlay.waitForSelector('#music:not([hidden])');
    await dashboard.waitForSelector('#queue li[data-id]');
    await overlay.bringToFront();
    await overlay.waitForFunction(() => document.getElementById('chat-list').children.length >= 4);
    await overlay.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running' || a.effect?.getTiming().duration > 1000));
    await overlay.screenshot({ path: path.join(shots, 'overlay.png') });
    await dashboard.bringToFront();
    await dashboard.screenshot({ path: path.join(shots, 'dashboard.png'), fullPage: true });
    for (const f of ['overlay.png', 'overlay-takeover.png', 'dashboard.png']) {
      assert.ok(fs.statSync(path.join(shots, f)).size > 10000, `${f} is not empty`);
    }
  });

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
});

// chat builds a channel.chat.message as the normalizer would publish it.
function chat(user, text, emotes = [], native = []) {
  const id = `e2e-${Math.random().toString(16).slice(2, 10)}`;
  const fragments = text.split(/(\s+)/).filter(Boolean).map((w) => (emotes.includes(w) || native.includes(w)
    ? { type: 'emote', text: w, emote: { id: w } } : { type: 'text', text: w }));
  return {
    type: 'channel.chat.message', id, message_id: id, user_name: user, user_login: user.toLowerCase(),
    user_id: '4242', broadcaster_user_id: '123456', broadcaster_user_login: 'streamer', broadcaster_user_name: 'Streamer',
    message: text, fragments, emotes, native_emotes: native, color: '', badges: [], message_type: 'text',
  };
}
