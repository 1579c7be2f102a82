// `kiln models …` as a child process (the CLI's sources through tsx), with exit codes and output
// checked: pull, ls, verify after a flipped byte, gc, add, push, and the bad-input cases, each with
// a message that says what is wrong and a non-zero exit.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FakeHuggingFaceHub, startLoopbackS3, type LoopbackS3 } from '@kiln/models/testing';
import { killStartedChildren, runToEnd, startChild, type Finished } from './support/child-process.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MAIN = pathToFileURL(path.join(ROOT, 'packages/cli/src/main.ts')).href;
/** tsx by URL: the commands run in project folders outside this repository. */
const TSX = import.meta.resolve('tsx');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

let hub: FakeHuggingFaceHub;
let s3: LoopbackS3;
let dir: string;
const weights = randomBytes(2 << 20);
const manual = randomBytes(4096);

before(async () => {
  hub = await FakeHuggingFaceHub.start();
  hub.addRepo('acme/tiny', { files: { 'config.json': '{"a":1}', 'weights/model.bin': weights } });
  hub.addRepo('acme/gated', { files: { 'w.bin': randomBytes(2048) }, gated: true, tokens: ['hf_yes'] });
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-models-cli-'));
  s3 = await startLoopbackS3({ directory: path.join(dir, 's3'), buckets: ['volabc123'] });
});

after(async () => {
  killStartedChildren();
  await hub.close();
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

function kiln(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Finished> {
  const base: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'LANG', 'TMPDIR']) if (process.env[key] !== undefined) base[key] = process.env[key];
  const script = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(process.argv.slice(1));`;
  return runToEnd(
    startChild(process.execPath, ['--conditions=kiln-source', '--import', TSX, '--input-type=module', '-e', script, ...args], {
      cwd,
      env: { ...base, HF_ENDPOINT: hub.url, NO_COLOR: '1', ...env },
    }),
  );
}

/** A project folder with a kiln.config.json holding `models` (and an endpoint listing some of them). */
async function project(name: string, models: Record<string, unknown>, endpoints: Record<string, unknown> = {}): Promise<string> {
  const folder = path.join(dir, name);
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, 'kiln.config.json'), `// a comment, as configs may have\n${JSON.stringify({ endpoints, models }, null, 2)}\n`);
  return folder;
}

test('kiln models pull fills the volume and writes kiln.lock; ls shows the models verified; pull again is up to date', async () => {
  const folder = await project('basic', { tiny: { source: 'hf://acme/tiny' }, notes: { source: 'file:notes.txt' } });
  await writeFile(path.join(folder, 'notes.txt'), 'shipped with the project');
  const pull = await kiln(['models', 'pull'], folder);
  assert.equal(pull.code, 0, pull.stderr);
  const volume = path.join(folder, '.kiln/volumes/models');
  assert.match(pull.stdout, new RegExp(`^tiny: pulled 2 files, 2\\.0 MiB fetched  ${volume}/tiny$`, 'm'));
  assert.match(pull.stdout, /^2 pulled \(.* in .* s, .*\/s\), 0 up to date; volume .*; kiln\.lock updated$/m);
  assert.match(pull.stderr, /^tiny: 2 files at [0-9a-f]{12}, 2 to download \(2\.0 MiB\)$/m);
  assert.match(pull.stderr, /^✓ tiny\/weights\/model\.bin {2}2\.0 MiB {2}.*\/s$/m);
  assert.deepEqual(await readFile(path.join(volume, 'tiny/weights/model.bin')), weights);
  const lock = JSON.parse(await readFile(path.join(folder, 'kiln.lock'), 'utf8'));
  assert.equal(lock.models.tiny.files.find((f: { path: string }) => f.path === 'weights/model.bin').sha256, sha256(weights));

  const ls = await kiln(['models', 'ls'], folder);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /^MODEL +STATE +SIZE +FILES +SOURCE$/m);
  assert.match(ls.stdout, /^tiny +verified +2\.0 MiB +2\/2 +hf:\/\/acme\/tiny \([0-9a-f]{12}\)$/m);
  assert.match(ls.stdout, /^notes +verified +24 B +1\/1 +file:notes\.txt$/m);
  const json = JSON.parse((await kiln(['models', 'ls', '--json', 'tiny'], folder)).stdout);
  assert.equal(json.models[0].state, 'verified');

  const again = await kiln(['models', 'pull', 'tiny'], folder);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^tiny: up to date /m);
});

test('flip one byte: verify names the file with both digests and exits 1; ls says modified; pull fetches it again', async () => {
  const folder = await project('flip', { tiny: { source: 'hf://acme/tiny' } });
  assert.equal((await kiln(['models', 'pull'], folder)).code, 0);
  const file = path.join(folder, '.kiln/volumes/models/tiny/weights/model.bin');
  const handle = await open(file, 'r+');
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, 1000);
  byte[0] = byte[0]! ^ 0x01;
  await handle.write(byte, 0, 1, 1000);
  await handle.close();

  const verify = await kiln(['models', 'verify'], folder);
  assert.equal(verify.code, 1);
  const flipped = sha256(await readFile(file));
  assert.equal(verify.stdout, `tiny: 1 of 2 files differ\n  weights/model.bin: sha256 expected ${sha256(weights)}, got ${flipped}\n`);
  assert.match(verify.stderr, /verification failed: `kiln models pull` fetches the missing and differing files again/);
  assert.match((await kiln(['models', 'ls'], folder)).stdout, /^tiny +(modified|partial) /m);

  const repair = await kiln(['models', 'pull'], folder);
  assert.equal(repair.code, 0, repair.stderr);
  assert.match(repair.stdout, /^tiny: pulled 1 file, 2\.0 MiB fetched/m);
  const ok = await kiln(['models', 'verify'], folder);
  assert.equal(ok.code, 0, ok.stdout);
  assert.equal(ok.stdout, 'tiny: 2 files ok\n');
});

test('gc removes models the manifest dropped and stale files, and leaves folders kiln did not create', async () => {
  const folder = await project('gc', { tiny: { source: 'hf://acme/tiny' }, notes: { source: 'file:notes.txt' } });
  await writeFile(path.join(folder, 'notes.txt'), 'n');
  assert.equal((await kiln(['models', 'pull'], folder)).code, 0);
  const volume = path.join(folder, '.kiln/volumes/models');
  await writeFile(path.join(volume, 'tiny', 'stale.bin'), 'old revision');
  await mkdir(path.join(volume, 'someone-elses'));
  await writeFile(path.join(folder, 'kiln.config.json'), JSON.stringify({ models: { tiny: { source: 'hf://acme/tiny' } } }));

  const dry = await kiln(['models', 'gc', '--dry-run'], folder);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^would remove .*\/notes \(1 B\): no longer in the manifest$/m);
  assert.match(dry.stdout, /^would remove .*\/tiny\/stale\.bin \(12 B\): not in the current resolution$/m);
  await stat(path.join(volume, 'notes'));

  const gc = await kiln(['models', 'gc'], folder);
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /^left alone: .*\/someone-elses \(not installed by kiln\)$/m);
  await assert.rejects(stat(path.join(volume, 'notes')));
  await assert.rejects(stat(path.join(volume, 'tiny', 'stale.bin')));
  await stat(path.join(volume, 'someone-elses'));
  assert.equal((await kiln(['models', 'verify'], folder)).code, 0);
});

test('kiln models add installs a manual model after checking it; pull of a missing manual model prints its instructions and exits 1', async () => {
  const folder = await project('manual', { smplx: { source: 'manual', instructions: 'register at https://smpl-x.example and download SMPLX_NEUTRAL.npz', sha256: sha256(manual) } });
  const pull = await kiln(['models', 'pull'], folder);
  assert.equal(pull.code, 1);
  assert.match(pull.stderr, /kiln: smplx must be installed by hand: register at https:\/\/smpl-x\.example and download SMPLX_NEUTRAL\.npz\n {2}then: kiln models add smplx PATH/);

  await writeFile(path.join(folder, 'wrong.npz'), 'nope');
  const wrong = await kiln(['models', 'add', 'smplx', 'wrong.npz'], folder);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, new RegExp(`kiln: smplx/wrong\\.npz: sha256 mismatch: expected ${sha256(manual)}, got ${sha256('nope')}; nothing was installed`));

  await writeFile(path.join(folder, 'SMPLX_NEUTRAL.npz'), manual);
  const add = await kiln(['models', 'add', 'smplx', 'SMPLX_NEUTRAL.npz'], folder);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /^installed smplx: 1 file, 4\.0 KiB in .*\/smplx; kiln\.lock updated$/m);
  assert.equal((await kiln(['models', 'pull'], folder)).code, 0);
  assert.match((await kiln(['models', 'ls'], folder)).stdout, /^smplx +verified /m);
});

test('bad input: each case exits 1 with a message that names the problem', async () => {
  const folder = await project('bad', { tiny: { source: 'hf://acme/tiny' }, gated: { source: 'hf://acme/gated' } }, { tts: { models: ['tiny'] } });
  const cases: [string[], RegExp, Record<string, string>?][] = [
    [['models', 'pull', 'nope'], /^kiln: unknown model 'nope': known models: tiny, gated\n$/],
    [['models', 'pull', '--frozen', 'tiny'], /^kiln: tiny: kiln\.lock \(.*kiln\.lock\) has no entry for it; run `kiln models pull tiny` without --frozen to update kiln\.lock\n$/],
    [['models', 'pull', 'gated'], /kiln: gated \(hf:\/\/acme\/gated\): acme\/gated is gated or private: open http:\/\/127\.0\.0\.1:\d+\/acme\/gated, accept its conditions .*set HF_TOKEN/],
    [['models', 'pull', 'tiny'], /HF_TOKEN: "\(hidden\)" is not allowed: must be a Hugging Face access token \(hf_…\)/, { HF_TOKEN: 'not-a-token' }],
    [['models', 'pull', '--endpoint', 'nope'], /^kiln: no endpoint 'nope' in .*kiln\.config\.json: endpoints are tts\n$/],
    [['models', 'push'], /^kiln: push needs exactly one destination: --runpod-volume ID --datacenter DC, or --s3 s3:\/\/bucket\[\/prefix\]\n$/],
    [['models', 'push', '--runpod-volume', 'abc'], /--datacenter: is required: the datacenter of the volume, e\.g\. EU-RO-1/],
    [['models', 'add', 'tiny', 'x'], /models\.tiny\.source: "hf:\/\/acme\/tiny" is not allowed: kiln models add installs manual models/],
    [['models', 'pull', '--concurrency', '0'], /error: option '--concurrency <n>' argument '0' is invalid\. must be a positive integer/],
  ];
  for (const [args, pattern, env] of cases) {
    const run = await kiln(args, folder, env);
    assert.equal(run.code, 1, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    assert.match(run.stderr, pattern, args.join(' '));
  }
  await assert.rejects(stat(path.join(folder, 'kiln.lock')), 'nothing was written by the refused commands');
});

test('bad manifests and a missing config are refused before anything is fetched, every issue named', async () => {
  const folder = await project('invalid', {
    escape: { source: 'hf://acme/tiny', files: ['../../etc/*'] },
    abs: { source: 'https://example.com/x.bin', path: '/etc/passwd' },
    typo: { source: 'hf://acme/tiny', revison: 'main' },
    weird: { source: 'ftp://example.com/x' },
    '../up': { source: 'manual', instructions: 'x' },
    plain: { source: 'http://example.com/model.bin' },
  });
  const asked = hub.requests.length;
  const run = await kiln(['models', 'pull'], folder);
  assert.equal(run.code, 1);
  for (const line of [
    /models\.escape\.files\[0\]: "\.\.\/\.\.\/etc\/\*" is not allowed: must be a relative path or glob: "\.\." would leave the folder/,
    /models\.abs\.path: "\/etc\/passwd" is not allowed: must be a relative path inside the model folder: absolute paths are not allowed/,
    /models\.typo\.revison: "main" is not allowed: is not a known model setting \(check its spelling\)/,
    /models\.weird\.source: "ftp:\/\/example\.com\/x" is not allowed: must be hf:\/\/org\/repo\[@revision\]\[\/glob\], https:\/\/…, s3:\/\/bucket\/key, file:PATH or manual/,
    /models\.\.\.\/up: "\.\.\/up" is not allowed: model names are letters, digits/,
    /models\.plain\.source: "http:\/\/example\.com\/model\.bin" is not allowed: plain http:\/\/ is allowed only for loopback hosts: use https:\/\//,
  ]) {
    assert.match(run.stderr, line);
  }
  assert.equal(hub.requests.length, asked, 'the hub was not asked anything');
  await assert.rejects(stat(path.join(folder, '.kiln')));

  const empty = path.join(dir, 'no-config');
  await mkdir(empty);
  const none = await kiln(['models', 'ls'], empty);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^kiln: no kiln\.config\.json in .*no-config or its parents: pass --config FILE or set KILN_CONFIG\n$/);
});

test('kiln models push --runpod-volume uploads to the volume\'s S3 API and skips what is there on a second push', async () => {
  const folder = await project('push', { tiny: { source: 'hf://acme/tiny' } });
  assert.equal((await kiln(['models', 'pull'], folder)).code, 0);
  const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
  const args = ['models', 'push', '--runpod-volume', 'volabc123', '--datacenter', 'eu-ro-1', '--s3-endpoint', s3.endpoint];
  const first = await kiln(args, folder, env);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, `pushed to RunPod volume volabc123 (EU-RO-1, ${s3.endpoint}): 2 files uploaded (2.0 MiB), 0 already there\n`);
  assert.match(first.stderr, /^↑ tiny\/weights\/model\.bin {2}2\.0 MiB$/m);
  const second = await kiln(args, folder, env);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /: 0 files uploaded \(0 B\), 2 already there\n$/);
});
