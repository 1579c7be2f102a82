import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { FfmpegError } from '@kiln/example-avatar/src/ffmpeg.ts';
import { probeVideo, readFrames, storedSize, VideoInputError, writeFrames } from './frame-io.ts';

test('storedSize keeps the aspect, caps the long side at 512 and makes both sides even', () => {
  assert.deepEqual(storedSize(1920, 1080), { width: 512, height: 288 });
  assert.deepEqual(storedSize(161, 99), { width: 160, height: 98 });
  assert.deepEqual(storedSize(720, 1280), { width: 288, height: 512 });
});

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-vfx-frames-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('frames written to an mp4 probe and read back with their count, size and rate', async (t) => {
  const file = path.join(await tempDir(t), 'clip.mp4');
  async function* grey(): AsyncGenerator<Uint8Array> {
    for (let f = 0; f < 5; f++) yield new Uint8Array(32 * 24 * 3).fill(40 * f);
  }
  const signal = new AbortController().signal;
  await writeFrames(['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', '32x24', '-r', '10', '-i', 'pipe:0', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-y', file], grey(), signal);
  const probe = await probeVideo(file, signal);
  assert.deepEqual([probe.width, probe.height, probe.fps], [32, 24, 10]);
  let frames = 0;
  for await (const frame of readFrames(['-i', file, '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], 32 * 24, signal)) {
    assert.ok(Math.abs(frame[0]! - 40 * frames) < 6, `frame ${frames} grey level ${frame[0]}`);
    frames++;
  }
  assert.equal(frames, 5);
});

test('probeVideo says when bytes are not a video', async (t) => {
  // No extension: ffmpeg would take a .txt as ANSI art (its tty demuxer) and make a video of it.
  const file = path.join(await tempDir(t), 'upload');
  await writeFile(file, 'just some words, not a video');
  await assert.rejects(probeVideo(file, new AbortController().signal), (err: unknown) => err instanceof VideoInputError && /video: ffmpeg finds no video stream in it/.test(err.message));
});

test('a failing ffmpeg rejects the frame reader with its exit code', async () => {
  const frames = readFrames(['-f', 'png_pipe', '-i', '/nonexistent/input.png', '-f', 'rawvideo', 'pipe:1'], 16, new AbortController().signal);
  await assert.rejects(
    (async () => {
      for await (const _ of frames);
    })(),
    (err: unknown) => err instanceof FfmpegError && err.exitCode === 1 && /No such file/.test(err.message),
  );
});

test('aborting stops reading and the promise rejects with the reason', async () => {
  const controller = new AbortController();
  // An endless synthetic source: only the abort ends it.
  const frames = readFrames(['-f', 'lavfi', '-i', 'testsrc=size=64x64:rate=25', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], 64 * 64 * 3, controller.signal);
  const reason = new Error('job-stop');
  await assert.rejects(
    (async () => {
      let n = 0;
      for await (const _ of frames) if (++n === 3) controller.abort(reason);
    })(),
    (err: unknown) => err === reason,
  );
});
