// The build's size gate: scripts/check-size.mjs passes a small bundle and fails one whose
// gzipped JavaScript is over 100 KB (random bytes do not compress).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'check-size.mjs');

async function checkSize(files: Record<string, string>): Promise<{ status: number | null; output: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-size-'));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
    const run = spawnSync(process.execPath, [SCRIPT, dir], { encoding: 'utf8' });
    return { status: run.status, output: run.stdout + run.stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('check-size: JavaScript that gzips to under 100 KB passes', async () => {
  const { status, output } = await checkSize({ 'a.js': 'console.log(1);\n'.repeat(50_000), 'b.css': randomBytes(200_000).toString('base64') });
  assert.equal(status, 0, output);
  assert.match(output, /within the 100 KB budget/);
});

test('check-size: JavaScript that gzips to over 100 KB fails the build, counted over every file', async () => {
  // Two files of ≈70 KB gzipped each: each alone is within the budget, together they are not.
  const chunk = () => `const x = "${randomBytes(70_000).toString('base64')}";\n`;
  const { status, output } = await checkSize({ 'a.js': chunk(), 'b.js': chunk() });
  assert.equal(status, 1, output);
  assert.match(output, /over the 100 KB budget/);
});

test('check-size: no JavaScript at all fails (a broken build is not a small one)', async () => {
  const { status, output } = await checkSize({ 'a.css': 'body{}' });
  assert.equal(status, 1);
  assert.match(output, /no \.js files/);
});
