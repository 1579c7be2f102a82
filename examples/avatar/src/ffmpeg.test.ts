import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FfmpegError, runFfmpeg, VideoEncoder } from './ffmpeg.ts';

test('an aborted signal kills a running ffmpeg and rejects with its reason', async () => {
  const controller = new AbortController();
  // anullsrc never ends: only the abort can stop this run.
  const run = runFfmpeg(['-f', 'lavfi', '-i', 'anullsrc', '-f', 'null', '-'], { signal: controller.signal });
  setTimeout(() => controller.abort(new Error('cancelled by the test')), 300);
  await assert.rejects(run, /cancelled by the test/);
});

test('a failing ffmpeg rejects with its exit code and the end of what it printed', async () => {
  await assert.rejects(runFfmpeg(['-f', 'png_pipe', '-i', 'pipe:0', '-f', 'null', '-'], { stdin: Buffer.from('not a png') }), (err: unknown) => {
    assert.ok(err instanceof FfmpegError);
    assert.equal(err.exitCode, 1);
    assert.match(err.message, /ffmpeg exited with code 1: /);
    return true;
  });
});

test('the encoder writes an mp4 with the frames it was given and the audio muxed back', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-avatar-ffmpeg-'));
  try {
    const audioFile = path.join(dir, 'a.wav');
    await writeFile(audioFile, (await runFfmpeg(['-f', 'lavfi', '-i', 'sine=frequency=220:sample_rate=16000:duration=0.4', '-f', 'wav', 'pipe:1'])).stdout);
    const outFile = path.join(dir, 'v.mp4');
    const encoder = new VideoEncoder({ width: 32, height: 16, fps: 25, audioFile, outFile });
    for (let i = 0; i < 10; i++) await encoder.write(new Uint8Array(32 * 16 * 3).fill(i * 20));
    await assert.rejects(encoder.write(new Uint8Array(5)), RangeError);
    await encoder.finish();
    const mp4 = await readFile(outFile);
    const decoded = (await runFfmpeg(['-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { stdin: mp4 })).stdout;
    assert.equal(decoded.length, 10 * 32 * 16 * 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
