// Several processes on one volume: eight workers calling ensure() on the same model download it
// once; a pull SIGKILLed mid-file is resumed by the next one with a Range request. The children are
// real processes (packages/models/src/testing/pull-child.ts) talking to a loopback fake hub.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lockTarget, ModelStore, parseManifest } from '@kiln/models';
import { FakeHuggingFaceHub } from '@kiln/models/testing';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CHILD = path.join(ROOT, 'packages/models/src/testing/pull-child.ts');
/** Safety net only (test timeout): every wait below ends on an event long before this. */
const SAFETY_MS = 60_000;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

let hub: FakeHuggingFaceHub;
let dir: string;
// Above THREAD_HASH_MIN_BYTES: hashed on a worker thread, which must also pick up a resumed prefix.
const weights = randomBytes(20 << 20);
const children: ChildProcessWithoutNullStreams[] = [];

before(async () => {
  hub = await FakeHuggingFaceHub.start();
  hub.addRepo('acme/shared', { files: { 'config.json': '{"layers":2}', 'weights.bin': weights } });
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-models-procs-'));
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

/** A project folder with a kiln.config.json naming `shared`, and its volume. */
async function project(name: string): Promise<{ config: string; volume: string }> {
  const folder = path.join(dir, name);
  await mkdir(folder, { recursive: true });
  const config = path.join(folder, 'kiln.config.json');
  await writeFile(config, JSON.stringify({ models: { shared: { source: 'hf://acme/shared' } } }));
  return { config, volume: path.join(folder, 'volume') };
}

/** Resolves when the process has exited (at once if it already has). */
async function exited(proc: ChildProcessWithoutNullStreams): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await once(proc, 'exit', { signal: AbortSignal.timeout(SAFETY_MS) });
}

/** Starts pull-child.ts; `lines` yields its stdout JSON lines. */
function child(mode: 'ensure' | 'pull', env: Record<string, string>) {
  const clean: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'LANG', 'TMPDIR']) if (process.env[key] !== undefined) clean[key] = process.env[key];
  const proc = spawn(process.execPath, ['--conditions=kiln-source', '--import', 'tsx', CHILD, mode, 'shared'], { cwd: ROOT, env: { ...clean, ...env }, stdio: 'pipe' });
  children.push(proc);
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  return {
    proc,
    stderr: () => stderr,
    /** The next JSON line; the iteration ends when the child's stdout closes (it exited). */
    async next(): Promise<Record<string, unknown>> {
      const line = await lines.next();
      if (line.done === true) throw new Error(`child ended (exit ${proc.exitCode ?? proc.signalCode}): ${stderr}`);
      return JSON.parse(line.value) as Record<string, unknown>;
    },
  };
}

test('eight processes calling ensure() on one model at once: one download, eight verified paths', { timeout: SAFETY_MS }, async () => {
  const { config, volume } = await project('eight');
  const env = { KILN_CONFIG: config, KILN_VOLUME: volume, HF_ENDPOINT: hub.url, KILN_TEST_WAIT_FOR_GO: '1' };
  const workers = Array.from({ length: 8 }, () => child('ensure', env));
  for (const w of workers) assert.deepEqual(await w.next(), { ready: true });
  const beforeContent = hub.contentRequests().length;
  const beforeAll = hub.requests.length;
  // The first content answer is held until the seven others are seen waiting for the model's lock.
  const gate = hub.pauseAfter('weights.bin', 1 << 20);
  for (const w of workers) w.proc.stdin.write('go\n');
  await gate.reached;

  const firsts = workers.map((w) => w.next());
  // The downloader is paused mid-file; every other process must be waiting for the model's lock.
  await new Promise<void>((resolve, reject) => {
    let waiting = 0;
    for (const first of firsts) {
      first.then((line) => {
        if (line['waiting'] === true && ++waiting === workers.length - 1) resolve();
      }, reject);
    }
  });
  gate.resume();
  const paths = await Promise.all(workers.map(async (w, i) => {
    const first = await firsts[i]!;
    return first['waiting'] === true ? w.next() : first;
  }));
  for (const w of workers) await exited(w.proc);

  const expected = path.join(volume, 'shared');
  assert.deepEqual(paths, Array.from({ length: 8 }, () => ({ path: expected })));
  for (const w of workers) assert.equal(w.proc.exitCode, 0, w.stderr());
  const content = hub.contentRequests().slice(beforeContent);
  assert.deepEqual(content.map((r) => r.path).sort(), ['config.json', 'weights.bin'], 'each file fetched exactly once');
  assert.equal(hub.requests.slice(beforeAll).filter((r) => r.route === 'info').length, 1, 'resolved once');
  assert.equal(sha256(await readFile(path.join(expected, 'weights.bin'))), sha256(weights));
});

test('a pull SIGKILLed mid-file is resumed by the next pull with a Range request, and the file verifies', { timeout: SAFETY_MS }, async () => {
  const { config, volume } = await project('killed');
  const stallAt = 3 << 20;
  const stalled = hub.stallAfter('weights.bin', stallAt);
  const puller = child('pull', { KILN_CONFIG: config, KILN_VOLUME: volume, HF_ENDPOINT: hub.url });
  await stalled;
  // Wait until the child reports the stalled bytes as written to its .part file, then kill it.
  for (;;) {
    const event = await puller.next();
    if (event['type'] === 'file' && event['path'] === 'weights.bin' && event['phase'] === 'downloading' && event['bytes'] === stallAt) break;
  }
  puller.proc.kill('SIGKILL');
  await exited(puller.proc);
  const part = path.join(volume, 'shared', 'weights.bin.part');
  assert.equal((await stat(part)).size, stallAt);

  // The killed process still "holds" the model's lock; it goes stale once nobody refreshes it: backdate it.
  const lock = lockTarget(volume, 'shared');
  const longAgo = new Date(Date.now() - 3_600_000);
  await utimes(lock, longAgo, longAgo);

  const store = new ModelStore({ manifest: parseManifest({ shared: { source: 'hf://acme/shared' } }, { baseDir: dir }), volume, hub: { url: hub.url, token: undefined }, durable: false });
  const before = hub.contentRequests('weights.bin').length;
  const beforeConfig = hub.contentRequests('config.json').length;
  const report = await store.pull(['shared']);
  assert.deepEqual(report.failures, []);
  const resumed = hub.contentRequests('weights.bin').slice(before);
  assert.deepEqual(resumed.map((r) => [r.range, r.status]), [[`bytes=${stallAt}-${weights.length - 1}`, 206]]);
  assert.equal(report.results[0]?.bytesResumed, stallAt);
  // config.json is fetched again only if the killed pull had not finished it.
  const configBytes = hub.contentRequests('config.json').slice(beforeConfig).reduce((n, r) => n + r.bytes, 0);
  assert.equal(report.results[0]?.bytesTransferred, weights.length - stallAt + configBytes);
  const [verified] = await store.verify(['shared']);
  assert.equal(verified?.state, 'ok');
});
