/**
 * The TTS example (flite compiled to WASI): cold start split into spawn → `setup()` start (node,
 * the runtime, valibot and the worker's imports), `setup()` itself (compiling flite's 21 MB
 * WebAssembly module and listing its voices) and spawn → first job-take; then the first job and
 * warm jobs on a fixed input against a loopback RunPod job server, one job in flight at a time.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ProcessGroup } from './child-process.ts';
import type { BenchConfig } from './config.ts';
import { formatColdStart, formatMs, measureExampleWorker, type ExampleWorkerTimings } from './example-worker.ts';
import { median } from './stats.ts';

/** The fixed job every measurement runs: two sentences, ≈5 s of 16 kHz speech. */
export const EXAMPLE_TTS_INPUT = { text: 'Serverless workers start cold, then stay warm. This sentence is spoken by flite on every benchmark job.', voice: 'kal16' } as const;

/** Per cold-start round and per warm job, in ms. */
export interface ExampleTtsResult extends ExampleWorkerTimings {
  /** Seconds of audio the fixed input gives. */
  audioS: number;
}

/** Runs the cold rounds (a fresh process each) then the warm jobs on the last round's process. */
export async function measureExampleTts(config: BenchConfig, processes: ProcessGroup, progress: (text: string) => void): Promise<ExampleTtsResult> {
  const worker = path.join(config.repoRoot, 'examples/tts/dist/worker.js');
  if (!existsSync(worker)) throw new Error(`example-tts needs ${path.relative(config.repoRoot, worker)}; run \`npm run build\` first`);
  let audioS = 0;
  const timings = await measureExampleWorker(config, processes, progress, {
    name: 'tts',
    args: [worker],
    cwd: path.dirname(path.dirname(worker)),
    input: EXAMPLE_TTS_INPUT,
    ...config.exampleTts,
    timeoutMs: 30_000,
    onFirstOutput: (output) => (audioS = Number((output as { duration_s?: number } | undefined)?.duration_s ?? 0)),
  });
  return { ...timings, command: `node ${path.relative(config.repoRoot, worker)}`, audioS };
}

/** A few lines for the report. */
export function formatExampleTts(r: ExampleTtsResult): string {
  return [
    `example-tts (${r.command}, fixed input ≈${r.audioS.toFixed(2)} s of audio; medians)`,
    formatColdStart(r),
    `  first job (take → result) ${formatMs(r.firstJobMs)}`,
    `  warm job (enqueue → result), ${r.warmJobMs.length} jobs: ${formatMs(r.warmJobMs)}; real-time factor ${(median(r.warmJobMs) / 1000 / r.audioS).toFixed(3)}`,
  ].join('\n');
}
