// Finds and launches Debian's Chromium through playwright-core (headless,
// a fresh profile). Never downloads a browser.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

// CHROMIUM_PATH, when set, is the only candidate.
export const CHROMIUM_CANDIDATES = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** findChromium returns the first executable candidate, or null. */
export function findChromium() {
  for (const p of CHROMIUM_CANDIDATES) {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
}

/**
 * launch starts Chromium with a fresh --user-data-dir (playwright's
 * persistent context, since it refuses that flag in args) and returns
 * {context, close}.
 */
export async function launch(executablePath) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'landale-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
