// The TTS example end to end: a real gateway spawns the real worker process, which runs flite
// (compiled to WASI) on text made here. The assertions are about the audio itself: a WAV that
// parses, whose header agrees with the output, and which holds speech rather than silence.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Gateway } from '@kiln/gateway';
import { startLoopbackS3, type LoopbackS3 } from '@kiln/models/testing';
import { loudFrames, parseWav, rms, type ParsedWav } from '../examples/tts/src/wav.ts';
import { startExampleGateway } from './support/example-gateway.ts';


let gateway: Gateway;
let s3: LoopbackS3;
let dir: string;
let base: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-tts-e2e-'));
  s3 = await startLoopbackS3({ directory: path.join(dir, 's3'), buckets: ['speech'] });
  ({ gateway, base } = await startExampleGateway('tts', dir));
});

after(async () => {
  await gateway?.stop();
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

async function post(route: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function speak(input: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const { status, json } = await post('runsync?wait=60000', { input, ...extra });
  assert.equal(status, 200);
  assert.equal(json['status'], 'COMPLETED', JSON.stringify(json).slice(0, 500));
  return json['output'] as Record<string, unknown>;
}

/** Checks what every WAV this worker writes must satisfy, and returns it parsed. */
function checkWav(bytes: Buffer, sampleRate: number, durationS: number): ParsedWav {
  assert.equal(bytes.subarray(0, 4).toString('ascii'), 'RIFF');
  assert.equal(bytes.readUInt32LE(4), bytes.length - 8, 'RIFF size covers the file');
  const wav = parseWav(bytes);
  assert.equal(wav.audioFormat, 1, 'integer PCM');
  assert.equal(wav.channels, 1);
  assert.equal(wav.bitsPerSample, 16);
  assert.equal(wav.sampleRate, sampleRate, 'header sample rate = output sample_rate');
  assert.equal(wav.dataBytes, Math.round(durationS * sampleRate) * 2, 'data length = duration_s × rate × 2 bytes');
  return wav;
}

test('runsync from zero workers: a WAV whose header matches the output and which holds speech', async () => {
  const out = await speak({ text: 'Hello there. This is kiln, speaking through a real synthesizer.', voice: 'slt' });
  assert.equal(out['format'], 'wav');
  assert.equal(out['sentences'], 2);
  const wav = checkWav(Buffer.from(String(out['audio_base64']), 'base64'), Number(out['sample_rate']), Number(out['duration_s']));
  assert.equal(wav.sampleRate, 16_000);
  assert.ok(Number(out['duration_s']) > 2 && Number(out['duration_s']) < 10, `duration ${String(out['duration_s'])} s`);
  assert.ok(rms(wav.samples) > 0.02, `RMS ${rms(wav.samples)} is well above silence`);
});

test('more text, more speech: a sentence has several times the voiced frames of one word', async () => {
  const word = await speak({ text: 'Yes.', voice: 'kal16' });
  const sentence = await speak({ text: 'The committee will announce the results of the spring competition tomorrow morning.', voice: 'kal16' });
  const voiced = (out: Record<string, unknown>) => loudFrames(parseWav(Buffer.from(String(out['audio_base64']), 'base64')));
  const [w, s] = [voiced(word), voiced(sentence)];
  assert.ok(w > 0, 'the word is voiced');
  assert.ok(s > 4 * w, `sentence ${s} voiced frames vs word ${w}`);
});

test('the voice decides the engine’s sample rate: kal is 8 kHz', async () => {
  const out = await speak({ text: 'Eight kilohertz.', voice: 'kal' });
  assert.equal(out['sample_rate'], 8000);
  checkWav(Buffer.from(String(out['audio_base64']), 'base64'), 8000, Number(out['duration_s']));
});

test('stream: one chunk per sentence, in order, each a WAV with speech', async () => {
  const sentences = ['The first sentence is short.', 'Here comes the second one!', 'Is this the third?'];
  const { json } = await post('run', { input: { text: sentences.join(' '), voice: 'rms', stream: true } });
  const id = String(json['id']);
  const chunks: { index: number; text: string; audio_base64: string; sample_rate: number; duration_s: number }[] = [];
  let status = '';
  for (let i = 0; i < 100 && !['COMPLETED', 'FAILED'].includes(status); i++) {
    const res = await fetch(`${base}/stream/${id}`);
    const page = (await res.json()) as { status: string; stream: { output: (typeof chunks)[number] }[] };
    status = page.status;
    for (const item of page.stream) chunks.push(item.output);
  }
  assert.equal(status, 'COMPLETED');
  assert.deepEqual(chunks.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(chunks.map((c) => c.text), sentences);
  for (const c of chunks) {
    const wav = checkWav(Buffer.from(c.audio_base64, 'base64'), c.sample_rate, c.duration_s);
    assert.ok(rms(wav.samples) > 0.02, `chunk ${c.index} is not silence`);
  }
});

test('s3Config on the job: the WAV goes to the bucket and the output is a presigned URL that fetches it', async () => {
  const s3Config = { accessId: 'S3RVER', accessSecret: 'S3RVER', bucketName: 'speech', endpointUrl: s3.endpoint };
  const { json } = await post('runsync?wait=60000', { input: { text: 'Stored in a bucket.', voice: 'awb' }, s3Config });
  assert.equal(json['status'], 'COMPLETED');
  const out = json['output'] as Record<string, unknown>;
  assert.equal(out['audio_base64'], undefined);
  const url = new URL(String(out['audio_url']));
  assert.equal(url.pathname, `/speech/${String(json['id'])}/speech.wav`);
  assert.equal(url.searchParams.get('X-Amz-Expires'), '604800');
  const res = await fetch(url);
  assert.equal(res.status, 200);
  checkWav(Buffer.from(await res.arrayBuffer()), Number(out['sample_rate']), Number(out['duration_s']));
});

test('bad inputs end FAILED with an error that says what to change', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ text: '' }, /text: text must not be empty/],
    [{ text: '   \n ' }, /text must not be empty/],
    [{ text: 'hi', voice: 'morgan' }, /unknown voice "morgan"; the voices are kal, kal16, awb, rms, slt/],
    [{ text: 'a'.repeat(5001) }, /text has 5001 characters; at most 5000 are allowed/],
    [{ text: 'hi', format: 'mp3' }, /format must be "wav"/],
  ];
  for (const [input, message] of cases) {
    // kiln's gateway does not know a worker's schema: /run accepts, the worker refuses.
    const { status, json } = await post('runsync?wait=60000', { input });
    assert.equal(status, 200);
    assert.equal(json['status'], 'FAILED', JSON.stringify(input).slice(0, 80));
    const error = JSON.parse(String(json['error'])) as { error_type: string; error_message: string };
    assert.equal(error.error_type, 'InputValidationError');
    assert.match(error.error_message, message);
  }
});
