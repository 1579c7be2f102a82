// `ModelStore.pull` / `ensure` against a loopback fake Hugging Face hub (real bytes, the routes
// @huggingface/hub calls), loopback URLs and local files: resolution, kiln.lock pins, resume after a
// cut connection, checksums, gated repos and refused input. In process; retries without delays.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  ChecksumMismatchError,
  InsufficientSpaceError,
  ManualModelError,
  ModelNotFoundError,
  ModelStore,
  parseManifest,
  readLockfile,
  readRecord,
  SourceError,
  UnsafePathError,
  type PullEvent,
} from '@kiln/models';
import { FakeHuggingFaceHub } from '@kiln/models/testing';

const NO_DELAY = { attempts: 4, baseDelayMs: 0, maxDelayMs: 0 };
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

let hub: FakeHuggingFaceHub;
let dir: string;
let counter = 0;
const files = {
  'config.json': '{"hidden_size":8}',
  'README.md': '# tiny\n',
  'weights/model.bin': randomBytes(3 << 20),
  'weights/extra.bin': randomBytes(5000),
};
let commit: string;

before(async () => {
  hub = await FakeHuggingFaceHub.start({ pageSize: 3 });
  commit = hub.addRepo('acme/tiny', { files }).commit;
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-models-pull-'));
});

after(async () => {
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

/** A store on a fresh volume (and a fresh kiln.lock beside it, unless one is given). */
async function storeFor(models: Record<string, unknown>, options: { token?: string; lockfile?: string; volume?: string; idleTimeoutMs?: number } = {}) {
  const root = path.join(dir, `case-${++counter}`);
  await mkdir(root, { recursive: true });
  const volume = options.volume ?? path.join(root, 'volume');
  const lockfile = options.lockfile ?? path.join(root, 'kiln.lock');
  const store = new ModelStore({
    manifest: parseManifest(models, { baseDir: root }),
    volume,
    lockfile,
    hub: { url: hub.url, token: options.token },
    retry: { ...NO_DELAY, ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }) },
    durable: false,
  });
  return { store, volume, lockfile, root };
}

test('pull fetches every file of an hf:// repo at its resolved commit, checks LFS sha256 and git blob sha1, and writes kiln.lock', async () => {
  const { store, volume, lockfile } = await storeFor({ tiny: { source: 'hf://acme/tiny' } });
  const events: PullEvent[] = [];
  const report = await store.pull(['tiny'], { writeLockfile: true, onEvent: (e) => events.push(e) });
  assert.deepEqual(report.failures, []);
  const [result] = report.results;
  assert.equal(result?.outcome, 'pulled');
  assert.equal(result?.revision, commit);
  for (const [name, content] of Object.entries(files)) {
    assert.deepEqual(await readFile(path.join(volume, 'tiny', name)), Buffer.from(content), name);
  }
  const lock = await readLockfile(lockfile);
  assert.equal(lock.models['tiny']?.revision, commit);
  assert.deepEqual(
    lock.models['tiny']?.files,
    Object.entries(files)
      .map(([p, c]) => ({ path: p, size: Buffer.from(c).length, sha256: sha256(c) }))
      .sort((a, b) => (a.path < b.path ? -1 : 1)),
  );
  assert.equal((await readRecord(volume, 'tiny'))?.complete, true);
  const [status] = await store.status(['tiny']);
  assert.equal(status?.state, 'verified');
  assert.ok(events.some((e) => e.type === 'resolved' && e.download === 4));
  assert.deepEqual(await readdir(path.join(volume, 'tiny', 'weights')), ['extra.bin', 'model.bin'], 'no .part file is left behind');
});

test('pulling again asks the hub nothing: files are checked by stat against what was verified', async () => {
  const { store } = await storeFor({ tiny: { source: 'hf://acme/tiny' } });
  await store.pull(['tiny'], { writeLockfile: true });
  const before = hub.requests.length;
  const again = await store.pull(['tiny'], { writeLockfile: true });
  assert.equal(again.results[0]?.outcome, 'up-to-date');
  assert.equal(await store.ensure('tiny'), store.path('tiny'));
  assert.equal(hub.requests.length, before);
});

test('kiln.lock pins the commit: a fresh volume gets the locked files without listing, even after the branch moved', async () => {
  hub.addRepo('acme/moving', { files: { 'a.bin': 'first version' } });
  const first = await storeFor({ moving: { source: 'hf://acme/moving' } });
  await first.store.pull(['moving'], { writeLockfile: true });
  const locked = (await readLockfile(first.lockfile)).models['moving']!;
  hub.addRepo('acme/moving', { files: { 'a.bin': 'second version' } });

  const second = await storeFor({ moving: { source: 'hf://acme/moving' } }, { lockfile: first.lockfile });
  const before = hub.requests.length;
  await second.store.pull(['moving']);
  const asked = hub.requests.slice(before);
  assert.ok(!asked.some((r) => r.route === 'info' || r.route === 'tree'), 'no resolution');
  assert.equal(await readFile(path.join(second.volume, 'moving', 'a.bin'), 'utf8'), 'first version');
  assert.equal(locked.files[0]?.sha256, sha256('first version'));

  // --update resolves the branch again and moves the pin.
  const third = await storeFor({ moving: { source: 'hf://acme/moving' } }, { lockfile: first.lockfile });
  await third.store.pull(['moving'], { update: true, writeLockfile: true });
  assert.equal(await readFile(path.join(third.volume, 'moving', 'a.bin'), 'utf8'), 'second version');
  assert.equal((await readLockfile(first.lockfile)).models['moving']?.files[0]?.sha256, sha256('second version'));
});

test('a connection cut mid-file is resumed with a Range request from the bytes kept, and the file verifies', async () => {
  const { store, volume } = await storeFor({ tiny: { source: 'hf://acme/tiny' } });
  const before = hub.contentRequests('weights/model.bin').length;
  const cut = hub.cutAfter('weights/model.bin', 1 << 20);
  const report = await store.pull(['tiny']);
  await cut;
  assert.deepEqual(report.failures, []);
  const asked = hub.contentRequests('weights/model.bin').slice(before);
  assert.equal(asked.length, 2);
  assert.equal(asked[0]?.range, undefined);
  assert.equal(asked[0]?.bytes, 1 << 20);
  assert.equal(asked[1]?.range, `bytes=${1 << 20}-${(3 << 20) - 1}`);
  assert.equal(asked[1]?.status, 206);
  assert.equal(report.results[0]?.bytesResumed, 1 << 20);
  assert.equal(sha256(await readFile(path.join(volume, 'tiny', 'weights/model.bin'))), sha256(files['weights/model.bin']));
});

// @huggingface/hub asks for the range's end; the URL source leaves it open.
for (const [kind, entry, installed, resumeRange] of [
  ['an hf:// source', () => ({ source: 'hf://acme/tiny' }), 'weights/model.bin', `bytes=${1 << 20}-${(3 << 20) - 1}`],
  ['an http(s) URL source', () => ({ source: `${hub.url}/acme/tiny/resolve/main/weights/model.bin`, sha256: sha256(files['weights/model.bin']), size: 3 << 20 }), 'model.bin', `bytes=${1 << 20}-`],
] as const) {
  test(`${kind}: a connection that stalls without closing is given up after the idle timeout and resumed with a Range request`, async () => {
    const { store, volume } = await storeFor({ tiny: entry() }, { idleTimeoutMs: 300 });
    const before = hub.contentRequests('weights/model.bin').length;
    const stalled = hub.stallAfter('weights/model.bin', 1 << 20);
    const report = await store.pull(['tiny']);
    await stalled;
    assert.deepEqual(report.failures, []);
    const asked = hub.contentRequests('weights/model.bin').slice(before).filter((r) => r.status !== 302);
    assert.deepEqual(asked.map((r) => [r.range, r.bytes]), [[undefined, 1 << 20], [resumeRange, 2 << 20]]);
    assert.equal(asked[1]?.status, 206);
    assert.equal(report.results[0]?.bytesResumed, 1 << 20);
    assert.equal(sha256(await readFile(path.join(volume, 'tiny', installed))), sha256(files['weights/model.bin']));
  });
}

test('aborting a pull while its connection stalls fails with the abort reason, retries nothing and keeps the .part', async () => {
  // The default idle timeout (60 s): only the abort can end this stall.
  const { store, volume } = await storeFor({ tiny: { source: 'hf://acme/tiny' } });
  const before = hub.contentRequests('weights/model.bin').length;
  const stalled = hub.stallAfter('weights/model.bin', 1 << 20);
  const controller = new AbortController();
  const reason = new Error('shutting down');
  let written!: () => void;
  const partWritten = new Promise<void>((resolve) => (written = resolve));
  const pulling = store.pull(['tiny'], {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.type === 'file' && e.path === 'weights/model.bin' && e.phase === 'downloading' && e.bytes === 1 << 20) written();
    },
  });
  await stalled;
  await partWritten;
  controller.abort(reason);
  const report = await pulling;
  assert.equal(report.failures[0]?.error, reason);
  assert.equal(hub.contentRequests('weights/model.bin').length - before, 1);
  assert.equal((await stat(path.join(volume, 'tiny', 'weights/model.bin.part'))).size, 1 << 20);
});

test('a connection that keeps failing ends in DownloadError; the .part is kept and the next pull resumes it', async () => {
  const { store, volume } = await storeFor({ tiny: { source: 'hf://acme/tiny' } });
  const cuts = hub.cutAfter('weights/model.bin', 2 << 20, NO_DELAY.attempts);
  const report = await store.pull(['tiny']);
  await cuts;
  const error = report.failures[0]?.error;
  assert.equal((error as Error).name, 'DownloadError', String(error));
  assert.match((error as Error).message, /tiny\/weights\/model\.bin: download failed after 4 attempts .*2097152 bytes kept in weights\/model\.bin\.part/);
  assert.equal((await stat(path.join(volume, 'tiny', 'weights/model.bin.part'))).size, 2 << 20);
  assert.equal((await store.status(['tiny']))[0]?.state, 'partial');

  const before = hub.contentRequests('weights/model.bin').length;
  const again = await store.pull(['tiny']);
  assert.deepEqual(again.failures, []);
  assert.deepEqual(hub.contentRequests('weights/model.bin').slice(before).map((r) => r.range), [`bytes=${2 << 20}-${(3 << 20) - 1}`]);
  assert.equal((await store.status(['tiny']))[0]?.state, 'verified');
});

test('bytes that do not match the listed sha256 fail with ChecksumMismatchError naming the file and both digests; the part is deleted', async () => {
  hub.addRepo('acme/tampered', { files: { 'w.bin': randomBytes(4096), 'big.bin': randomBytes(17 << 20), 'small.txt': 'hello' } });
  for (const file of ['w.bin', 'big.bin', 'small.txt']) hub.tamper('acme/tampered', file);
  const { store, volume } = await storeFor({ t: { source: 'hf://acme/tampered/w.bin' }, b: { source: 'hf://acme/tampered/big.bin' }, s: { source: 'hf://acme/tampered/small.txt' } });
  const report = await store.pull();
  const byModel = new Map(report.failures.map((f) => [f.model, f.error]));
  const lfs = byModel.get('t');
  assert.ok(lfs instanceof ChecksumMismatchError, String(lfs));
  assert.equal(lfs.file, 'w.bin');
  assert.equal(lfs.algorithm, 'sha256');
  assert.match(lfs.message, new RegExp(`t/w\\.bin: sha256 mismatch: expected ${lfs.expected}, got ${lfs.actual}; deleted w\\.bin\\.part`));
  // Hashed on a worker thread (17 MiB), with the same outcome.
  const big = byModel.get('b');
  assert.ok(big instanceof ChecksumMismatchError, String(big));
  assert.equal(big.file, 'big.bin');
  const git = byModel.get('s');
  assert.ok(git instanceof ChecksumMismatchError, String(git));
  assert.equal(git.algorithm, 'git-sha1');
  assert.deepEqual(await readdir(path.join(volume, 't')), []);
  assert.deepEqual(await readdir(path.join(volume, 's')), []);
  assert.deepEqual(await readdir(path.join(volume, 'b')), []);
});

test('a gated repo without HF_TOKEN says how to get access; a token without access gets 403; an allowed token works', async () => {
  hub.addRepo('acme/gated', { files: { 'w.bin': randomBytes(2048) }, gated: true, tokens: ['hf_allowed'] });
  const anonymous = await storeFor({ g: { source: 'hf://acme/gated' } });
  const report = await anonymous.store.pull();
  const error = report.failures[0]?.error;
  assert.ok(error instanceof SourceError, String(error));
  assert.equal(error.kind, 'access-denied');
  assert.match(error.message, new RegExp(`acme/gated is gated or private: open ${hub.url}/acme/gated, accept its conditions .* create a read token at ${hub.url}/settings/tokens and set HF_TOKEN`));

  const refused = await storeFor({ g: { source: 'hf://acme/gated' } }, { token: 'hf_other' });
  const error403 = (await refused.store.pull()).failures[0]?.error;
  assert.ok(error403 instanceof SourceError);
  assert.equal(error403.status, 403);
  assert.match(error403.message, /HF_TOKEN has no access to acme\/gated/);

  const allowed = await storeFor({ g: { source: 'hf://acme/gated' } }, { token: 'hf_allowed' });
  assert.deepEqual((await allowed.store.pull()).failures, []);
  assert.ok(hub.requests.some((r) => r.authorization === 'Bearer hf_allowed'));
});

test('an unknown model or repo is refused by name', async () => {
  const { store } = await storeFor({ tiny: { source: 'hf://acme/tiny' }, other: { source: 'hf://acme/does-not-exist' } });
  await assert.rejects(store.pull(['nope']), (e: unknown) => e instanceof ModelNotFoundError && e.message === "unknown model 'nope': known models: tiny, other");
  await assert.rejects(store.ensure('nope'), ModelNotFoundError);
  const missing = (await store.pull(['other'])).failures[0]?.error;
  assert.ok(missing instanceof SourceError);
  assert.match(missing.message, /acme\/does-not-exist/);
});

test('a listing with ".." or an absolute path is refused and nothing is written outside the model folder', async () => {
  hub.addRepo('acme/evil', { files: { '../escape.bin': 'x', 'ok.bin': 'y' } });
  hub.addRepo('acme/evil2', { files: { '/etc/evil': 'x' } });
  const { store, root } = await storeFor({ evil: { source: 'hf://acme/evil' }, evil2: { source: 'hf://acme/evil2' } });
  const report = await store.pull();
  assert.equal(report.failures.length, 2);
  for (const f of report.failures) assert.ok(f.error instanceof UnsafePathError, String(f.error));
  assert.match(String(report.failures[0]?.error), /refusing path "\.\.\/escape\.bin": "\.\." would leave the folder/);
  await assert.rejects(stat(path.join(root, 'volume', 'escape.bin')));
});

test('no space: a pull that needs more than the volume has fails before writing anything', async () => {
  const url = `${hub.url}/acme/tiny/resolve/main/weights/extra.bin`;
  const { store, volume } = await storeFor({ huge: { source: url, size: 2 ** 50 } });
  const error = (await store.pull()).failures[0]?.error;
  assert.ok(error instanceof InsufficientSpaceError, String(error));
  assert.equal(error.neededBytes, 2 ** 50);
  assert.match(error.message, /not enough space on .* for huge \(1 file\): 1024 TiB needed, .* free/);
  assert.deepEqual(await readdir(path.join(volume, 'huge')), []);
});

test('an http(s) URL source is fetched, named after its last segment, and checked against the manifest sha256', async () => {
  const url = `${hub.url}/acme/tiny/resolve/main/weights/extra.bin`;
  const good = sha256(files['weights/extra.bin']);
  const { store, volume } = await storeFor({ ok: { source: url, sha256: good, size: 5000 }, bad: { source: url, sha256: '0'.repeat(64), path: 'renamed.bin' } });
  const report = await store.pull();
  assert.deepEqual(report.results.map((r) => r.model), ['ok']);
  assert.equal(sha256(await readFile(path.join(volume, 'ok', 'extra.bin'))), good);
  const bad = report.failures[0]?.error;
  assert.ok(bad instanceof ChecksumMismatchError);
  assert.equal(bad.file, 'renamed.bin');
  assert.equal(bad.expected, '0'.repeat(64));
  assert.equal(bad.actual, good);
});

test('file: sources copy a local file or folder onto the volume (globs select files)', async () => {
  const src = path.join(dir, 'shipped');
  await mkdir(path.join(src, 'onnx'), { recursive: true });
  await writeFile(path.join(src, 'onnx', 'model.onnx'), 'onnx bytes');
  await writeFile(path.join(src, 'notes.txt'), 'not wanted');
  const { store, volume } = await storeFor({
    folder: { source: `file:${src}`, files: ['onnx/**'] },
    single: { source: `file:${path.join(src, 'notes.txt')}`, sha256: sha256('not wanted') },
  });
  assert.deepEqual((await store.pull()).failures, []);
  assert.deepEqual(await readdir(path.join(volume, 'folder')), ['onnx']);
  assert.equal(await readFile(path.join(volume, 'folder', 'onnx', 'model.onnx'), 'utf8'), 'onnx bytes');
  assert.equal(await readFile(path.join(volume, 'single', 'notes.txt'), 'utf8'), 'not wanted');
});

test('a manual model is not pulled: pull says what to do; add checks the file against the manifest sha256 and installs it', async () => {
  const content = randomBytes(10_000);
  const { store, root } = await storeFor({ smplx: { source: 'manual', instructions: 'register at https://smpl-x.example/register', sha256: sha256(content), path: 'SMPLX_NEUTRAL.npz' } });
  const error = (await store.pull()).failures[0]?.error;
  assert.ok(error instanceof ManualModelError);
  assert.equal(error.message, 'smplx must be installed by hand: register at https://smpl-x.example/register\n  then: kiln models add smplx PATH');
  await assert.rejects(store.ensure('smplx'), ManualModelError);

  const wrong = path.join(root, 'wrong.npz');
  await writeFile(wrong, 'not it');
  await assert.rejects(store.add('smplx', wrong), (e: unknown) => e instanceof ChecksumMismatchError && /nothing was installed/.test(e.message));
  const right = path.join(root, 'download.npz');
  await writeFile(right, content);
  const added = await store.add('smplx', right);
  assert.equal(added.files, 1);
  const folder = await store.ensure('smplx');
  assert.deepEqual(await readFile(path.join(folder, 'SMPLX_NEUTRAL.npz')), content);
  assert.equal((await store.status(['smplx']))[0]?.state, 'verified');
});
