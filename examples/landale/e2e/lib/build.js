// Builds the server once into e2e/.bin/landale before a run (npm pretest):
// the test files, each in its own process, then share it via LANDALE_BIN.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from './server.js';

if (process.env.LANDALE_BIN) {
  console.log(`using LANDALE_BIN=${process.env.LANDALE_BIN}`);
  process.exit(0);
}
const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../.bin/landale');
execFileSync('go', ['build', '-o', bin, './examples/landale'], { cwd: repoRoot, stdio: 'inherit' });
console.log(`built ${path.relative(process.cwd(), bin)}`);
