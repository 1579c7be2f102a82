// Fails the build when the dashboard's JavaScript, gzipped, is over budget (100 KB).
// `node scripts/check-size.mjs [assets-folder]` (default: dist/assets beside this script).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const LIMIT = 102_400;
const assets = process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'assets');
const files = readdirSync(assets).filter((f) => f.endsWith('.js'));
if (files.length === 0) {
  console.error(`check-size: no .js files in ${assets}`);
  process.exit(1);
}
let total = 0;
for (const file of files) {
  const size = gzipSync(readFileSync(path.join(assets, file)), { level: 9 }).length;
  total += size;
  console.log(`  ${file}: ${(size / 1024).toFixed(1)} KB gzipped`);
}
const verdict = total > LIMIT ? 'over' : 'within';
console.log(`check-size: ${total} bytes (${(total / 1024).toFixed(1)} KB) of gzipped JavaScript, ${verdict} the ${LIMIT / 1024} KB budget`);
if (total > LIMIT) process.exit(1);
