// Builds Landale's own overlays and dashboard (apps/overlays,
// apps/dashboard of github.com/bryanveloso/landale, pinned below) with
// their own toolchain (bun install, vite build) for the browser test
// apps/landale-apps.test.js. The output goes to e2e/.landale-apps/
// (not committed: Landale's repository has no licence, so its builds are
// not redistributed here; see README.md in this folder).
//
//   node landale-apps/build.mjs                   # clones the pinned commit (needs GitHub, or LANDALE_REPO_URL)
//   node landale-apps/build.mjs --src /path/to/landale   # a checkout of that commit
//   node landale-apps/build.mjs --check           # exit 0 when the build is present and current
//
// The only source change is the apps' server address: their hard-coded
// hosts (ws://saya:7175/socket, ws://100.87.170.6:7175/socket,
// http://saya:7175/api/...) become the page's own origin, so the built
// apps talk to whatever serves them (the test serves them and forwards
// /socket and /api to the Go server).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// LANDALE_REPO_URL overrides where the pinned commit is cloned from (a mirror).
export const LANDALE_REPO = process.env.LANDALE_REPO_URL || 'https://github.com/bryanveloso/landale';
export const LANDALE_COMMIT = '940d1aa92c814e3b2522432892fef578cb3d49f4';
export const BUN_VERSION = '1.2.20'; // Landale's packageManager

const here = path.dirname(fileURLToPath(import.meta.url));
export const outDir = path.resolve(here, '..', '.landale-apps');
const stamp = path.join(outDir, 'BUILD.json');

// SAME_ORIGIN_WS is the socket URL of the page's own origin.
const SAME_ORIGIN_WS = "`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/socket`";

/** PATCHES: file → [from, to]; each must match exactly once. */
export const PATCHES = {
  'packages/shared/src/phoenix-connection.ts': [["'ws://saya:7175/socket'", SAME_ORIGIN_WS]],
  'apps/dashboard/src/services/phoenix-service.tsx': [["'ws://100.87.170.6:7175/socket'", SAME_ORIGIN_WS]],
  'apps/dashboard/src/hooks/use-activity-log.tsx': [["'http://saya:7175/api/activity/events?limit=50'", "'/api/activity/events?limit=50'"]],
  'apps/dashboard/src/routes/oauth.tsx': [["'http://saya:7175/api/oauth'", "'/api/oauth'"]],
};

/** current reports whether a build of the pinned commit is present. */
export function current() {
  try {
    const s = JSON.parse(fs.readFileSync(stamp, 'utf8'));
    return s.commit === LANDALE_COMMIT && ['overlays', 'dashboard'].every((a) => fs.existsSync(path.join(outDir, a, 'index.html')));
  } catch {
    return false;
  }
}

function run(cmd, args, cwd, env = {}) {
  console.log(`$ (cd ${cwd} && ${cmd} ${args.join(' ')})`);
  execFileSync(cmd, args, { cwd, stdio: 'inherit', env: { ...process.env, ...env } });
}

function main() {
  const argv = process.argv.slice(2);
  if (argv.includes('--check')) process.exit(current() ? 0 : 1);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'landale-apps-'));
  try {
    const src = path.join(work, 'landale');
    const i = argv.indexOf('--src');
    if (i >= 0) {
      const from = path.resolve(argv[i + 1]);
      const head = execFileSync('git', ['-C', from, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
      if (head !== LANDALE_COMMIT) throw new Error(`${from} is at ${head}, want ${LANDALE_COMMIT}`);
      // Only what the two apps need (the repository also holds large test fixtures).
      fs.mkdirSync(src);
      const tar = execFileSync('git', ['-C', from, 'archive', LANDALE_COMMIT, '--', 'package.json', 'bun.lock',
        'turbo.json', 'apps/overlays', 'apps/dashboard', 'packages'], { maxBuffer: 1 << 28 });
      execFileSync('tar', ['-x', '-C', src], { input: tar });
    } else {
      run('git', ['clone', '--filter=blob:none', '--no-checkout', LANDALE_REPO, src], work);
      run('git', ['checkout', LANDALE_COMMIT, '--', 'package.json', 'bun.lock', 'turbo.json', 'apps/overlays',
        'apps/dashboard', 'packages'], src);
    }
    for (const [file, subs] of Object.entries(PATCHES)) {
      const p = path.join(src, file);
      let text = fs.readFileSync(p, 'utf8');
      for (const [from, to] of subs) {
        if (text.split(from).length !== 2) throw new Error(`${file}: ${from} must occur exactly once`);
        text = text.replace(from, to);
      }
      fs.writeFileSync(p, text);
    }
    // bun from npm (Landale's version), then Landale's lockfile. Only
    // apps/overlays, apps/dashboard and packages/* are present, so bun
    // prunes the other workspaces from the lockfile (not frozen).
    run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--prefix', work, `bun@${BUN_VERSION}`], work);
    const bun = path.join(work, 'node_modules', '.bin', 'bun');
    run(bun, ['install'], src);
    fs.rmSync(outDir, { recursive: true, force: true });
    for (const app of ['overlays', 'dashboard']) {
      // vite build alone: the apps' `tsc -b` step does not pass at this commit.
      run(bun, ['x', 'vite', 'build', '--outDir', path.join(outDir, app), '--emptyOutDir'], path.join(src, 'apps', app));
    }
    fs.writeFileSync(stamp, JSON.stringify({ repository: LANDALE_REPO, commit: LANDALE_COMMIT, bun: BUN_VERSION,
      patched: Object.keys(PATCHES), built_at: new Date().toISOString() }, null, 2) + '\n');
    console.log(`built ${outDir}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
