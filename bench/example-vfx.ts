/**
 * The VFX example (Robust Video Matting on tfjs-wasm, frames in and out through the bundled
 * ffmpeg): cold start split into spawn → `setup()` start (node, tsx, tfjs and the worker's
 * imports), `setup()` itself (two `ensure()`s, the wasm backend, loading the graph and one
 * warm-up frame) and spawn → first job-take; then the first job and warm jobs running every
 * stage on a fixed 10-frame 256² clip against a loopback RunPod job server, one job at a time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runFfmpeg } from '../examples/avatar/src/ffmpeg.ts';
import { syntheticClip } from '../examples/vfx/src/synthetic-clip.ts';
import type { ProcessGroup } from './child-process.ts';
import type { BenchConfig } from './config.ts';
import { formatColdStart, formatMs, measureExampleWorker, type ExampleWorkerTimings } from './example-worker.ts';
import { median } from './stats.ts';

/** Frames in the fixed input clip. */
export const EXAMPLE_VFX_FRAMES = 10;
const SIDE = 256;

/** Per cold-start round and per warm job, in ms; round 1 fills an empty models volume. */
export interface ExampleVfxResult extends ExampleWorkerTimings {
  /** The worker's own per-stage timings of the warm jobs. */
  warmStageMs: { ingest: number[]; roto: number[]; preview: number[] };
  frames: number;
}

/** Runs the cold rounds (a fresh process each, one models volume for all) then the warm jobs on the last round's process. */
export async function measureExampleVfx(config: BenchConfig, processes: ProcessGroup, progress: (text: string) => void): Promise<ExampleVfxResult> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-vfx-'));
  const warmStageMs: ExampleVfxResult['warmStageMs'] = { ingest: [], roto: [], preview: [] };
  let frames = 0;
  try {
    const timings = await measureExampleWorker(config, processes, progress, {
      name: 'vfx',
      args: ['--import', 'tsx', 'src/worker.ts'],
      cwd: path.join(config.repoRoot, 'examples/vfx'),
      env: {
        KILN_CONFIG: path.join(config.repoRoot, 'examples/kiln.config.json'),
        KILN_VOLUME: path.join(scratch, 'models'),
        PROJECTS_DIR: path.join(scratch, 'projects'),
      },
      input: await fixedInput(),
      ...config.exampleVfx,
      timeoutMs: 120_000,
      onFirstOutput: (output) => {
        const o = output as { frames?: number } | undefined;
        if (!o?.frames) throw new Error(`example-vfx: the first job did not complete: ${JSON.stringify(output).slice(0, 400)}`);
        frames = o.frames;
      },
      onWarmOutput: (output) => {
        const stages = (output as { timings_ms?: Partial<Record<'ingest' | 'roto' | 'preview', number>> } | undefined)?.timings_ms ?? {};
        for (const stage of ['ingest', 'roto', 'preview'] as const) if (stages[stage] !== undefined) warmStageMs[stage].push(stages[stage]);
      },
    });
    return { ...timings, warmStageMs, frames };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The synthetic figure clip, 10 frames of 256² as an H.264 mp4, every stage requested. */
async function fixedInput(): Promise<Record<string, unknown>> {
  const mp4 = (
    await runFfmpeg(['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${SIDE}x${SIDE}`, '-r', '10', '-i', 'pipe:0', '-c:v', 'libx264', '-crf', '18', '-pix_fmt', 'yuv420p', '-movflags', 'frag_keyframe+empty_moov', '-f', 'mp4', 'pipe:1'], {
      stdin: syntheticClip(SIDE, EXAMPLE_VFX_FRAMES),
    })
  ).stdout;
  return { action: 'process_video', name: 'bench-shot', video: mp4.toString('base64'), stages: ['ingest', 'roto', 'preview'] };
}

/** A few lines for the report. */
export function formatExampleVfx(r: ExampleVfxResult): string {
  return [
    `example-vfx (${r.command}, fixed input ${r.frames} frames of ${SIDE}², stages ingest + roto + preview; medians)`,
    formatColdStart(r),
    `  first job (take → result) ${formatMs(r.firstJobMs)}`,
    `  warm job (enqueue → result), ${r.warmJobMs.length} jobs: ${formatMs(r.warmJobMs)}; roto per frame ${(median(r.warmStageMs.roto) / Math.max(1, r.frames)).toFixed(1)} ms`,
    `  warm stages: ingest ${formatMs(r.warmStageMs.ingest)}; roto ${formatMs(r.warmStageMs.roto)}; preview ${formatMs(r.warmStageMs.preview)}`,
  ].join('\n');
}
