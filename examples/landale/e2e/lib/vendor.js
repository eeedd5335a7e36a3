// Copies the official phoenix browser client (the npm package's own ESM
// build, unmodified) and its license into ../web/vendor/, where the Go
// binary embeds it. The version is the one Landale uses (1.8.0).
//
//   npm run vendor            copy
//   npm run vendor -- --check exit 1 when web/vendor differs from node_modules
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const VENDORED_PACKAGE = 'phoenix-1.8.0';
const here = path.dirname(fileURLToPath(import.meta.url));
export const vendorDir = path.resolve(here, '../../web/vendor');

/** files returns [source, destination] pairs of what is vendored. */
export function files() {
  const pkgDir = path.resolve(here, '..', 'node_modules', VENDORED_PACKAGE);
  const { name, version } = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  if (name !== 'phoenix' || version !== '1.8.0') throw new Error(`${pkgDir} is ${name}@${version}, want phoenix@1.8.0`);
  return [
    [path.join(pkgDir, 'priv/static/phoenix.mjs'), path.join(vendorDir, 'phoenix.mjs')],
    [path.join(pkgDir, 'LICENSE.md'), path.join(vendorDir, 'phoenix.LICENSE.md')],
  ];
}

function main() {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [src, dst] of files()) {
    const want = fs.readFileSync(src);
    if (check) {
      const have = fs.existsSync(dst) ? fs.readFileSync(dst) : null;
      if (!have || !have.equals(want)) {
        console.error(`stale: ${path.relative(process.cwd(), dst)} differs from ${src}`);
        stale++;
      }
      continue;
    }
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.writeFileSync(dst, want);
    console.log(`vendored ${path.relative(process.cwd(), dst)} (${want.length} bytes)`);
  }
  if (stale) process.exit(1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
