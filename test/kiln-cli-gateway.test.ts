// `kiln dev` and `kiln serve` as a user runs them: real child processes, real sockets.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KILN_BIN, killStartedChildren, runToEnd, startChild, startKilnServer, stopChild } from './support/child-process.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dirs: string[] = [];
after(async () => {
  killStartedChildren();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A folder inside the repository (gitignored .kiln/), so worker files resolve @kiln/worker. */
async function projectDir(): Promise<string> {
  await mkdir(path.join(ROOT, '.kiln'), { recursive: true });
  const dir = await mkdtemp(path.join(ROOT, '.kiln', 'cli-test-'));
  dirs.push(dir);
  return dir;
}

function workerSource(version: number): string {
  return `import { defineWorker } from '@kiln/worker';\nexport default defineWorker({ handler: () => ({ version: ${version} }) });\n`;
}


async function runsync(url: string, endpoint: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/v2/${endpoint}/runsync`, { method: 'POST', body: JSON.stringify({ input: {} }) });
  return (await res.json()) as Record<string, unknown>;
}

test('kiln dev restarts an endpoint’s workers when its files change, and the next job runs the new code', async () => {
  const dir = await projectDir();
  await mkdir(path.join(dir, 'ver'));
  await writeFile(path.join(dir, 'ver', 'worker.mjs'), workerSource(1));
  await writeFile(path.join(dir, 'kiln.config.json'), JSON.stringify({ endpoints: { ver: { worker: { command: 'node worker.mjs', cwd: 'ver' }, workersMin: 1 } }, gateway: { port: 0 } }));
  const { child, url, stderr } = await startKilnServer({ args: ['dev'], cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
  assert.deepEqual((await runsync(url, 'ver'))['output'], { version: 1 });
  await writeFile(path.join(dir, 'ver', 'worker.mjs'), workerSource(2));
  const deadline = Date.now() + 20_000;
  let output: unknown;
  while (Date.now() < deadline) {
    output = (await runsync(url, 'ver'))['output'];
    if ((output as { version: number }).version === 2) break;
  }
  assert.deepEqual(output, { version: 2 });
  assert.match(stderr(), /worker\.mjs changed: restarting ver's workers/);
  assert.equal(await stopChild(child), 0);
});

test('kiln serve refuses an invalid config, naming every problem, with exit code 1', async () => {
  const dir = await projectDir();
  await writeFile(
    path.join(dir, 'kiln.config.json'),
    JSON.stringify({ endpoints: { Bad_Name: { worker: { command: 'x' } }, ok: { worker: { command: 'x' }, workersMax: 0, idleTimeout: 99999 } } }),
  );
  const { code, stderr: text } = await runToEnd(startChild(process.execPath, [KILN_BIN, 'serve'], { cwd: dir }));
  assert.equal(code, 1);
  assert.match(text, /Bad_Name/);
  assert.match(text, /endpoints\.ok\.workersMax: 0 is not allowed/);
  assert.match(text, /endpoints\.ok\.idleTimeout: 99999 is not allowed/);
});

test('kiln serve refuses a non-loopback bind without API keys', async () => {
  const dir = await projectDir();
  await writeFile(path.join(dir, 'kiln.config.json'), JSON.stringify({ endpoints: { ok: { worker: { command: 'x' } } } }));
  const { code, stderr: text } = await runToEnd(startChild(process.execPath, [KILN_BIN, 'serve', '--host', '0.0.0.0', '--port', '0'], { cwd: dir, env: { PATH: process.env['PATH'] ?? '' } }));
  assert.equal(code, 1);
  assert.match(text, /non-loopback bind needs API keys/);
});
