// The VFX example end to end: a real gateway spawns the real worker process, which gets Robust Video
// Matting's graph and weights through the models manifest and runs them on tfjs-wasm. The video is
// made here (examples/vfx/src/synthetic-clip.ts): a figure (head, neck, torso) sliding across a
// checkered backdrop, encoded with the bundled ffmpeg. The assertions read the files the worker left on the projects volume.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Gateway } from '@kiln/gateway';
import { FFMPEG_PATH } from '../examples/avatar/src/ffmpeg.ts';
import { CLIP_COLOURS, figureAt as figureAtIn, syntheticClip } from '../examples/vfx/src/synthetic-clip.ts';
import { startExampleGateway } from './support/example-gateway.ts';

const SIZE = 192;
const FRAMES = 6;
const SHIRT = CLIP_COLOURS.shirt;
const GREEN = [0, 177, 64] as const;

let gateway: Gateway;
let dir: string;
let projects: string;
let base: string;
let videoFile: string;

/** Runs the bundled ffmpeg and resolves with stdout; ffmpeg's own failures reject. */
async function ffmpeg(args: string[], stdin?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(FFMPEG_PATH, ['-hide_banner', '-loglevel', 'error', ...args], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr.toString()}`));
      else resolve(stdout);
    });
    child.stdin!.end(stdin ?? Buffer.alloc(0));
  });
}

const figureAt = (x: number, y: number, f: number) => figureAtIn(x, y, f, SIZE);

/** Pixels well inside the figure (`inside`) and well away from it (`outside`), for frame `f`. */
function regions(f: number): { inside: number[]; outside: number[] } {
  const inside: number[] = [];
  const outside: number[] = [];
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const near = [-8, 0, 8].flatMap((dx) => [-8, 0, 8].map((dy) => figureAt(x + dx, y + dy, f) !== undefined));
      if (near.every(Boolean)) inside.push(y * SIZE + x);
      else if (!near.some(Boolean)) outside.push(y * SIZE + x);
    }
  }
  return { inside, outside };
}

async function syntheticVideo(file: string): Promise<void> {
  const raw = syntheticClip(SIZE, FRAMES);
  await encode(raw, file);
}

async function encode(raw: Buffer, file: string): Promise<void> {
  await ffmpeg(['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${SIZE}x${SIZE}`, '-r', '12', '-i', 'pipe:0', '-c:v', 'libx264', '-crf', '12', '-pix_fmt', 'yuv420p', '-y', file], raw);
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-vfx-e2e-'));
  projects = path.join(dir, 'projects');
  videoFile = path.join(dir, 'walk.mp4');
  await syntheticVideo(videoFile);
  ({ gateway, base } = await startExampleGateway('vfx', dir, { PROJECTS_DIR: projects }));
});

after(async () => {
  await gateway?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function post(route: string, input: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) });
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}

const runsync = (input: unknown) => post('runsync?wait=120000', input);

/** What the folder holds, counted here rather than trusted from the output. */
async function onDisk(folder: string): Promise<{ count: number; bytes: number }> {
  const names = await readdir(folder);
  const sizes = await Promise.all(names.map(async (n) => (await stat(path.join(folder, n))).size));
  return { count: names.length, bytes: sizes.reduce((a, b) => a + b, 0) };
}

type Outputs = { outputs: Record<string, { count: number; bytes: number }>; preview?: { path: string; bytes: number } };

test('health_check answers with the model and the wasm backend', async () => {
  const json = await runsync({ action: 'health_check' });
  assert.equal(json['status'], 'COMPLETED', JSON.stringify(json));
  const out = json['output'] as Record<string, string>;
  assert.equal(out['status'], 'healthy');
  assert.equal(out['backend'], 'wasm');
  assert.equal(out['projects_dir'], projects);
});

test('process_video: frames, RVM mattes that cover the figure and not the backdrop, a preview over green, progress per frame', async () => {
  const submitted = await post('run', { action: 'process_video', name: 'shot_010', video: (await readFile(videoFile)).toString('base64') });
  const id = String(submitted['id']);
  const seen: { stage: string; frame: number }[] = [];
  let json: Record<string, unknown>;
  for (;;) {
    json = (await (await fetch(`${base}/status/${id}`)).json()) as Record<string, unknown>;
    const progress = json['output'] as { stage?: string; frame?: number } | undefined;
    if (json['status'] === 'IN_PROGRESS' && progress?.stage) seen.push({ stage: progress.stage, frame: progress.frame! });
    if (json['status'] !== 'IN_QUEUE' && json['status'] !== 'IN_PROGRESS') break;
    await new Promise((r) => setTimeout(r, 40));
  }
  assert.equal(json['status'], 'COMPLETED', JSON.stringify(json).slice(0, 800));
  const rotoFrames = new Set(seen.filter((p) => p.stage === 'roto').map((p) => p.frame));
  assert.ok(rotoFrames.size >= 2, `progress showed several roto frames: ${JSON.stringify(seen)}`);

  const out = json['output'] as Outputs & Record<string, unknown>;
  assert.deepEqual(out['stages'], ['ingest', 'roto', 'preview']);
  assert.equal(out['frames'], FRAMES);
  assert.deepEqual([out['width'], out['height'], out['fps']], [SIZE, SIZE, 12]);
  const project = path.join(projects, 'shot_010');
  assert.equal(out['project_path'], project);
  assert.deepEqual(out.outputs['source/frames'], await onDisk(path.join(project, 'source/frames')));
  assert.deepEqual(out.outputs['roto'], await onDisk(path.join(project, 'roto')));
  assert.equal(out.outputs['source/frames']!.count, FRAMES);
  assert.equal(out.outputs['roto']!.count, FRAMES);
  assert.deepEqual(out.preview, { path: 'preview.mp4', bytes: (await stat(path.join(project, 'preview.mp4'))).size });

  const mattes = await ffmpeg(['-f', 'image2', '-start_number', '1', '-i', path.join(project, 'roto/%05d.png'), '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1']);
  assert.equal(mattes.length, SIZE * SIZE * FRAMES);
  const mean = (frame: Buffer, pixels: number[]) => pixels.reduce((sum, p) => sum + frame[p]!, 0) / pixels.length;
  for (let f = 0; f < FRAMES; f++) {
    const matte = mattes.subarray(f * SIZE * SIZE, (f + 1) * SIZE * SIZE);
    const { inside, outside } = regions(f);
    const subject = mean(matte, inside);
    const backdrop = mean(matte, outside);
    assert.ok(subject > 200, `frame ${f + 1}: matte over the figure averages ${subject.toFixed(1)}`);
    assert.ok(backdrop < 10, `frame ${f + 1}: matte over the backdrop averages ${backdrop.toFixed(1)}`);
  }

  const decoded = await ffmpeg(['-i', path.join(project, 'preview.mp4'), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
  assert.equal(decoded.length, SIZE * SIZE * 3 * FRAMES, 'the preview has every frame');
  const last = decoded.subarray((FRAMES - 1) * SIZE * SIZE * 3);
  const { inside, outside } = regions(FRAMES - 1);
  const rgbMean = (pixels: number[]) => [0, 1, 2].map((c) => pixels.reduce((sum, p) => sum + last[p * 3 + c]!, 0) / pixels.length);
  const backdrop = rgbMean(outside);
  assert.ok(backdrop.every((v, c) => Math.abs(v - GREEN[c]!) < 20), `the backdrop became green: ${backdrop.map((v) => v.toFixed(0)).join(',')}`);
  const figure = rgbMean(inside.filter((p) => figureAt(p % SIZE, Math.floor(p / SIZE), FRAMES - 1) === 'shirt'));
  assert.ok(figure.every((v, c) => Math.abs(v - SHIRT[c]!) < 30), `the figure kept its colours: ${figure.map((v) => v.toFixed(0)).join(',')}`);

  let figurePixels = 0;
  for (let f = 0; f < FRAMES; f++) for (let p = 0; p < SIZE * SIZE; p++) if (figureAt(p % SIZE, Math.floor(p / SIZE), f)) figurePixels++;
  const share = figurePixels / (SIZE * SIZE * FRAMES);
  assert.ok(Math.abs(Number(out['roto_coverage']) - share) < 0.05, `roto_coverage ${String(out['roto_coverage'])} vs the figure's share ${share.toFixed(3)}`);

  const status = await runsync({ action: 'get_status', name: 'shot_010' });
  assert.equal(status['status'], 'COMPLETED', JSON.stringify(status));
  const reported = status['output'] as Outputs & Record<string, unknown>;
  assert.deepEqual(reported.outputs, out.outputs);
  assert.deepEqual(reported.preview, out.preview);
  assert.equal(reported['frames'], FRAMES);
});

test('a shape that is not a person gets no matte: RVM is not keying on colour or motion', async () => {
  // The shirt's colour as a square sliding over the same backdrop.
  const raw = syntheticClip(SIZE, 4);
  for (let f = 0; f < 4; f++) {
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const tile = CLIP_COLOURS.tiles[((x >> 4) + (y >> 4)) & 1]!;
        const square = y >= 60 && y < 140 && x >= 50 + 6 * f && x < 130 + 6 * f;
        raw.set(square ? CLIP_COLOURS.shirt : tile, ((f * SIZE + y) * SIZE + x) * 3);
      }
    }
  }
  const file = path.join(dir, 'square.mp4');
  await encode(raw, file);
  const json = await runsync({ action: 'process_video', name: 'square', video: (await readFile(file)).toString('base64'), stages: ['ingest', 'roto'] });
  assert.equal(json['status'], 'COMPLETED', JSON.stringify(json).slice(0, 800));
  const out = json['output'] as Record<string, unknown>;
  assert.ok(Number(out['roto_coverage']) < 0.01, `roto_coverage ${String(out['roto_coverage'])} for a clip with no person`);
});

test('stages run separately: ingest a video from the projects volume, then roto and preview on the stored frames', async () => {
  await mkdir(path.join(projects, 'uploads'), { recursive: true });
  await copyFile(videoFile, path.join(projects, 'uploads/walk.mp4'));
  const ingested = await runsync({ action: 'process_video', name: 'plate-b', video: 'uploads/walk.mp4', stages: ['ingest'], maxFrames: 3, fps: 6 });
  assert.equal(ingested['status'], 'COMPLETED', JSON.stringify(ingested).slice(0, 800));
  const first = ingested['output'] as Outputs & Record<string, unknown>;
  assert.equal(first['frames'], 3);
  assert.equal(first['fps'], 6);
  assert.deepEqual(Object.keys(first.outputs), ['source/frames']);
  assert.equal(first.preview, undefined);

  const rest = await runsync({ action: 'process_video', name: 'plate-b', stages: ['preview', 'roto'] });
  assert.equal(rest['status'], 'COMPLETED', JSON.stringify(rest).slice(0, 800));
  const second = rest['output'] as Outputs & Record<string, unknown>;
  assert.deepEqual(second['stages'], ['roto', 'preview'], 'stages run in pipeline order');
  assert.equal(second.outputs['roto']!.count, 3);
  assert.deepEqual(second.outputs['roto'], await onDisk(path.join(projects, 'plate-b/roto')));
  assert.ok(second.preview!.bytes > 0);
});

test('cancel during roto: CANCELLED, and the same worker takes the next job', async () => {
  const submitted = await post('run', { action: 'process_video', name: 'cancelled', video: (await readFile(videoFile)).toString('base64') });
  const id = String(submitted['id']);
  for (let i = 0; ; i++) {
    const json = (await (await fetch(`${base}/status/${id}`)).json()) as { status: string; output?: { stage?: string } };
    if (json.status === 'IN_PROGRESS' && json.output?.stage === 'roto') break;
    assert.ok(i < 500 && (json.status === 'IN_QUEUE' || json.status === 'IN_PROGRESS'), `never reached roto: ${JSON.stringify(json)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const cancelled = await post(`cancel/${id}`, {});
  assert.equal(cancelled['status'], 'CANCELLED');
  const next = await runsync({ action: 'health_check' });
  assert.equal(next['status'], 'COMPLETED', JSON.stringify(next));
});

test('bad inputs end FAILED with errors that say what is wrong', async () => {
  const cases: [unknown, string, RegExp][] = [
    [{ action: 'process_video', name: 'junk', video: Buffer.from('not a video at all, just words. '.repeat(20)).toString('base64') }, 'VideoInputError', /video: ffmpeg finds no video stream in it/],
    [{ action: 'process_video', name: 'deep', video: 'uploads/walk.mp4', stages: ['ingest', 'depth'] }, 'InputValidationError', /stage "depth" is not available: no depth-estimation model ships inside an npm package/],
    [{ action: 'process_video', name: '../escape', video: 'uploads/walk.mp4' }, 'InputValidationError', /name must be 1–64 letters.*no slashes and no "\.\."/],
    [{ action: 'get_status', name: 'a/b' }, 'InputValidationError', /name must be/],
    [{ action: 'collect_outputs', name: 'shot_010' }, 'InputValidationError', /unknown action "collect_outputs"; the actions are health_check, process_video and get_status/],
    [{ name: 'shot_010' }, 'InputValidationError', /action is required/],
    [{ action: 'process_video', name: 'nothing', stages: ['ingest'] }, 'InputValidationError', /video is required when stages include "ingest"/],
    [{ action: 'process_video', name: 'escape', video: '../../etc/passwd' }, 'VideoInputError', /video: must be an http\(s\) URL, base64, or a path inside the projects volume/],
    [{ action: 'process_video', name: 'missing', video: 'uploads/none.mp4' }, 'VideoInputError', /video: cannot read uploads\/none\.mp4 on the projects volume: ENOENT/],
    [{ action: 'process_video', name: 'never-ingested', stages: ['roto'] }, 'StageOrderError', /roto: the project has no ingested frames; run the "ingest" stage first/],
    [{ action: 'get_status', name: 'never-made' }, 'ProjectNotFoundError', /no project named "never-made" on the projects volume/],
  ];
  for (const [input, type, message] of cases) {
    const json = await runsync(input);
    assert.equal(json['status'], 'FAILED', JSON.stringify(input).slice(0, 160));
    const error = JSON.parse(String(json['error'])) as { error_type: string; error_message: string };
    assert.equal(error.error_type, type, error.error_message);
    assert.match(error.error_message, message);
  }
});
