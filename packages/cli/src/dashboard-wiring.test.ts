// `kiln serve` hands the gateway the dashboard and the models volume: a real child process, a real
// socket. The start-up pull runs through the same models access the admin API reads.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ModelsResponse, ModelView } from '@kiln/protocol';

const KILN = fileURLToPath(new URL('../bin/kiln.js', import.meta.url));
const children: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

test('kiln serve prints the dashboard URL, serves /, and answers /kiln/v1/models from the models volume', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-dashboard-wiring-'));
  dirs.push(dir);
  const weights = Buffer.from('weights of a tiny model\n'.repeat(1000));
  await writeFile(path.join(dir, 'weights.bin'), weights);
  const config = {
    endpoints: { tiny: { worker: { command: 'node never-started.js' }, models: ['tiny-weights'] } },
    models: { 'tiny-weights': { source: 'file:weights.bin', sha256: createHash('sha256').update(weights).digest('hex'), size: weights.length } },
  };
  await writeFile(path.join(dir, 'kiln.config.json'), JSON.stringify(config));
  const env = { PATH: process.env['PATH'] ?? '', NO_COLOR: '1' };
  const child = spawn(process.execPath, [KILN, 'serve', '--port', '0'], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('kiln serve: ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`kiln serve exited with ${code}:\n${stderr}`)));
  });
  await Promise.race([ready, new Promise((_, reject) => setTimeout(() => reject(new Error(`not ready:\n${stderr}`)), 30_000).unref())]);

  const url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
  assert.ok(url, stderr);
  assert.match(stderr, new RegExp(`kiln serve: dashboard ${url.replaceAll('.', '\\.')}/`));
  const page = await fetch(`${url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  await page.arrayBuffer();

  const listed = (await (await fetch(`${url}/kiln/v1/models`)).json()) as ModelsResponse;
  assert.equal(listed.volume, path.join(dir, '.kiln/volumes/models'));
  assert.deepEqual(listed.models, [
    { name: 'tiny-weights', source: 'file:weights.bin', status: 'verified', files: 1, bytes: weights.length, totalBytes: weights.length, pull: null, error: null },
  ]);
  const pulled = await fetch(`${url}/kiln/v1/models/tiny-weights/pull`, { method: 'POST' });
  assert.ok(pulled.ok, `pull answered ${pulled.status}`);
  assert.equal(((await pulled.json()) as ModelView).name, 'tiny-weights');
  const unknown = await fetch(`${url}/kiln/v1/models/nope/pull`, { method: 'POST' });
  assert.equal(unknown.status, 404);
  await unknown.arrayBuffer();

  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, stderr);
});
