// S3 against s3rver on loopback: s3:// sources (one object, a prefix, a resumed part), and `push`
// to a bucket and to a "RunPod network volume" (the same API: volume ID as bucket, the volume's own
// layout), skipping what is already there; then a worker on that volume finds its models by the
// records that travelled with them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ModelStore, parseManifest, type S3Settings } from '@kiln/models';
import { FakeHuggingFaceHub, startLoopbackS3, type LoopbackS3 } from '@kiln/models/testing';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
let s3: LoopbackS3;
let hub: FakeHuggingFaceHub;
let dir: string;
let client: S3Client;
let settings: S3Settings;
let counter = 0;
const vad = randomBytes(300_000);
const big = randomBytes((64 << 20) + 12345);

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-models-s3-'));
  s3 = await startLoopbackS3({ directory: path.join(dir, 's3'), buckets: ['weights', 'dest', 'vol123abc'] });
  hub = await FakeHuggingFaceHub.start();
  hub.addRepo('acme/pushme', { files: { 'config.json': '{"x":1}', 'model.bin': randomBytes(200_000), 'big.bin': big } });
  settings = { endpoint: s3.endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', sessionToken: undefined };
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  const put = (Key: string, Body: Buffer) => client.send(new PutObjectCommand({ Bucket: 'weights', Key, Body }));
  await put('models/silero_vad.onnx', vad);
  await put('sets/tts/voice-a.bin', Buffer.from('voice a'));
  await put('sets/tts/voice-b.bin', Buffer.from('voice b'));
  await put('sets/tts/notes.txt', Buffer.from('skip me'));
});

after(async () => {
  client.destroy();
  await hub.close();
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

function storeFor(models: Record<string, unknown>, volume = path.join(dir, `volume-${++counter}`)) {
  return new ModelStore({ manifest: parseManifest(models, { baseDir: dir }), volume, s3: settings, hub: { url: hub.url, token: undefined }, durable: false, retry: { attempts: 2, baseDelayMs: 0, maxDelayMs: 0 } });
}

test('an s3:// object and an s3:// prefix (with globs) are pulled and verified', async () => {
  const store = storeFor({
    vad: { source: 's3://weights/models/silero_vad.onnx', sha256: sha256(vad) },
    voices: { source: 's3://weights/sets/tts/', files: ['*.bin'] },
  });
  const report = await store.pull();
  assert.deepEqual(report.failures, []);
  assert.deepEqual(await readFile(path.join(store.path('vad'), 'silero_vad.onnx')), vad);
  assert.equal(await readFile(path.join(store.path('voices'), 'voice-a.bin'), 'utf8'), 'voice a');
  assert.deepEqual((await store.status(['voices']))[0]?.files.map((f) => f.path), ['voice-a.bin', 'voice-b.bin']);
});

test('an s3:// object with a partial file is resumed from its end (GetObject with a Range)', async () => {
  const store = storeFor({ vad: { source: 's3://weights/models/silero_vad.onnx', sha256: sha256(vad) } });
  await mkdir(store.path('vad'), { recursive: true });
  await writeFile(path.join(store.path('vad'), 'silero_vad.onnx.part'), vad.subarray(0, 100_000));
  const report = await store.pull();
  assert.deepEqual(report.failures, []);
  assert.equal(report.results[0]?.bytesResumed, 100_000);
  assert.equal(report.results[0]?.bytesTransferred, vad.length - 100_000);
  assert.deepEqual(await readFile(path.join(store.path('vad'), 'silero_vad.onnx')), vad);
});

test('wrong S3 credentials are reported as access denied, naming the variables to check', async () => {
  const store = new ModelStore({
    manifest: parseManifest({ vad: { source: 's3://weights/models/silero_vad.onnx' } }, { baseDir: dir }),
    volume: path.join(dir, `volume-${++counter}`),
    s3: { ...settings, accessKeyId: 'WRONG', secretAccessKey: 'WRONG' },
  });
  const error = (await store.pull()).failures[0]?.error as Error;
  assert.equal(error?.name, 'SourceError', String(error));
  assert.match(error.message, /access denied .*AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY/);
});

test('push uploads verified models (multipart above 64 MiB) with their records, and a second push skips every file', async () => {
  const store = storeFor({ pushme: { source: 'hf://acme/pushme' } });
  assert.deepEqual((await store.pull()).failures, []);
  const first = await store.push({ kind: 's3', bucket: 'dest', prefix: 'team/models' });
  assert.deepEqual(first.uploaded.map((u) => u.key).sort(), ['team/models/pushme/big.bin', 'team/models/pushme/config.json', 'team/models/pushme/model.bin']);
  const object = await client.send(new GetObjectCommand({ Bucket: 'dest', Key: 'team/models/pushme/big.bin' }));
  assert.equal(sha256(Buffer.from(await object.Body!.transformToByteArray())), sha256(big));
  const head = await client.send(new HeadObjectCommand({ Bucket: 'dest', Key: 'team/models/pushme/model.bin' }));
  assert.equal(head.Metadata?.['kiln-sha256'], (await store.verify(['pushme']))[0]?.files.find((f) => f.path === 'model.bin')?.actual);
  const record = await client.send(new GetObjectCommand({ Bucket: 'dest', Key: 'team/models/.kiln/models/pushme.json' }));
  assert.equal(JSON.parse(await record.Body!.transformToString()).model, 'pushme');

  const second = await store.push({ kind: 's3', bucket: 'dest', prefix: 'team/models' });
  assert.deepEqual(second.uploaded, []);
  assert.equal(second.skipped.length, 3);
});

test('push to a RunPod volume: same layout at the volume root; a file already there (same MD5 ETag) is skipped; a worker there finds the model from its record alone', async () => {
  const store = storeFor({ pushme: { source: 'hf://acme/pushme' } });
  assert.deepEqual((await store.pull()).failures, []);
  // Someone copied config.json there by hand before: no kiln metadata, but the same bytes.
  await client.send(new PutObjectCommand({ Bucket: 'vol123abc', Key: 'pushme/config.json', Body: Buffer.from('{"x":1}') }));
  const report = await store.push({ kind: 'runpod-volume', volumeId: 'vol123abc', datacenter: 'EU-RO-1', endpoint: s3.endpoint });
  assert.deepEqual(report.skipped.map((s) => s.key), ['pushme/config.json']);
  assert.deepEqual(report.uploaded.map((u) => u.key).sort(), ['pushme/big.bin', 'pushme/model.bin']);

  // What /runpod-volume would hold: every object, at the same paths.
  const remote = path.join(dir, 'runpod-volume');
  const listed = await client.send(new ListObjectsV2Command({ Bucket: 'vol123abc' }));
  for (const { Key } of listed.Contents ?? []) {
    const body = await client.send(new GetObjectCommand({ Bucket: 'vol123abc', Key: Key! }));
    await mkdir(path.dirname(path.join(remote, Key!)), { recursive: true });
    await writeFile(path.join(remote, Key!), await body.Body!.transformToByteArray());
  }
  // No manifest at all in the worker: the record says what the folder must hold; files are re-hashed once (new mtimes).
  const worker = new ModelStore({ manifest: {}, volume: remote, hub: { url: 'http://127.0.0.1:9', token: undefined }, durable: false });
  assert.equal(await worker.ensure('pushme'), path.join(remote, 'pushme'));
  assert.equal(sha256(await readFile(path.join(remote, 'pushme', 'big.bin'))), sha256(big));
});

test('push refuses models that are partial or modified', async () => {
  const store = storeFor({ pushme: { source: 'hf://acme/pushme' } });
  assert.deepEqual((await store.pull()).failures, []);
  await writeFile(path.join(store.path('pushme'), 'model.bin'), 'tampered');
  await assert.rejects(store.push({ kind: 's3', bucket: 'dest', prefix: 'x' }), /push uploads verified models only: pushme is modified/);
});
