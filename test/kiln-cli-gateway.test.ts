// `kiln dev` and `kiln serve` as a user runs them: real child processes, real sockets.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KILN = path.join(ROOT, 'packages/cli/bin/kiln.js');
const children: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
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

/** Starts `kiln <args>` and resolves with the child, its stderr so far, and the URL it printed. */
async function startKiln(args: string[], cwd: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [KILN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let text = '';
  child.stderr!.setEncoding('utf8');
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed: ${text}`)), 20_000);
    child.stderr!.on('data', (chunk: string) => {
      text += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`kiln exited with ${code}: ${text}`)));
  });
  return { child, url, stderr: () => text };
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
  const { child, url, stderr } = await startKiln(['dev'], dir);
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
  child.kill('SIGTERM');
  const code = await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(code, 0);
});

test('kiln serve refuses an invalid config, naming every problem, with exit code 1', async () => {
  const dir = await projectDir();
  await writeFile(
    path.join(dir, 'kiln.config.json'),
    JSON.stringify({ endpoints: { Bad_Name: { worker: { command: 'x' } }, ok: { worker: { command: 'x' }, workersMax: 0, idleTimeout: 99999 } } }),
  );
  const child = spawn(process.execPath, [KILN, 'serve'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let text = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (text += c));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(code, 1);
  assert.match(text, /Bad_Name/);
  assert.match(text, /endpoints\.ok\.workersMax: 0 is not allowed/);
  assert.match(text, /endpoints\.ok\.idleTimeout: 99999 is not allowed/);
});

test('kiln serve refuses a non-loopback bind without API keys', async () => {
  const dir = await projectDir();
  await writeFile(path.join(dir, 'kiln.config.json'), JSON.stringify({ endpoints: { ok: { worker: { command: 'x' } } } }));
  const child = spawn(process.execPath, [KILN, 'serve', '--host', '0.0.0.0', '--port', '0'], { cwd: dir, env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let text = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (text += c));
  assert.equal(await new Promise((resolve) => child.once('exit', resolve)), 1);
  assert.match(text, /non-loopback bind needs API keys/);
});
