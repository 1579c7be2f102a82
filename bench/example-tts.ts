/**
 * The TTS example (flite compiled to WASI): cold start split into spawn → `setup()` start (node,
 * the runtime, valibot and the worker's imports), `setup()` itself (compiling flite's 21 MB
 * WebAssembly module and listing its voices) and spawn → first job-take; then the first job and
 * warm jobs on a fixed input against a loopback RunPod job server, one job in flight at a time.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LoopbackJobServer } from '@kiln/worker/testing';
import { unlessChildExits, type ProcessGroup } from './child-process.ts';
import { serverTime, sleep } from './clock.ts';
import type { BenchConfig } from './config.ts';
import { median } from './stats.ts';

/** The fixed job every measurement runs: two sentences, ≈5 s of 16 kHz speech. */
export const EXAMPLE_TTS_INPUT = { text: 'Serverless workers start cold, then stay warm. This sentence is spoken by flite on every benchmark job.', voice: 'kal16' } as const;

/** Per cold-start round and per warm job, in ms. */
export interface ExampleTtsResult {
  command: string;
  /** Spawn → the runtime logs that `setup()` starts (spawn → first take minus setup). */
  spawnToSetupMs: number[];
  /** `setup()` as the runtime measured it (its `setupMs` log field). */
  setupMs: number[];
  /** Spawn → first job-take request at the server. */
  spawnToFirstTakeMs: number[];
  /** First job: queued before spawn, so take → result at the server. */
  firstJobMs: number[];
  /** Warm jobs: enqueue → result at the server, worker already long-polling. */
  warmJobMs: number[];
  /** Seconds of audio the fixed input gives. */
  audioS: number;
}

/** Runs the cold rounds (a fresh process each) then the warm jobs on the last round's process. */
export async function measureExampleTts(config: BenchConfig, processes: ProcessGroup, progress: (text: string) => void): Promise<ExampleTtsResult> {
  const worker = path.join(config.repoRoot, 'examples/tts/dist/worker.js');
  if (!existsSync(worker)) throw new Error(`example-tts needs ${path.relative(config.repoRoot, worker)}; run \`npm run build\` first`);
  const { rounds, warmJobs } = config.exampleTts;
  const result: ExampleTtsResult = {
    command: `node ${path.relative(config.repoRoot, worker)}`,
    spawnToSetupMs: [],
    setupMs: [],
    spawnToFirstTakeMs: [],
    firstJobMs: [],
    warmJobMs: [],
    audioS: 0,
  };
  for (let round = 0; round < rounds; round++) {
    const last = round === rounds - 1;
    const server = new LoopbackJobServer({ holdMs: 30_000, record: true });
    await server.start();
    server.enqueue({ id: `tts-cold-${round}`, input: EXAMPLE_TTS_INPUT });
    const env = { ...config.baseEnv, ...server.workerEnv(`tts-${round}`, { pingIntervalMs: 10_000 }) };
    const child = processes.spawn(config.node, [worker], { env, cwd: path.dirname(path.dirname(worker)) });
    try {
      const first = await unlessChildExits(child, server.waitForResult(`tts-cold-${round}`, 30_000), 'example-tts cold start');
      const take = server.requests.find((r) => r.path.includes('/job-take'))!;
      const setupMs = await setupDuration(child.output);
      result.spawnToFirstTakeMs.push(take.t - child.spawnedAt);
      result.setupMs.push(setupMs);
      result.spawnToSetupMs.push(take.t - child.spawnedAt - setupMs);
      result.firstJobMs.push(first.at - take.t);
      result.audioS = Number((first.body as { output?: { duration_s?: number } }).output?.duration_s ?? 0);
      progress(`  round ${round + 1}: spawn → take ${result.spawnToFirstTakeMs.at(-1)!.toFixed(0)} ms (setup ${setupMs} ms)`);
      if (!last) continue;
      for (let i = 0; i < warmJobs; i++) {
        const id = `tts-warm-${i}`;
        const queuedAt = serverTime();
        server.enqueue({ id, input: EXAMPLE_TTS_INPUT });
        const done = await unlessChildExits(child, server.waitForResult(id, 30_000), 'example-tts warm job');
        result.warmJobMs.push(done.at - queuedAt);
      }
    } finally {
      await child.kill();
      await server.stop();
    }
  }
  return result;
}

/** The runtime's `setup finished` line carries `setupMs`; log lines flush once the first take is out. */
async function setupDuration(output: { tail: string }): Promise<number> {
  for (let waited = 0; waited < 10_000; waited += 10) {
    const match = /"setupMs":(\d+(?:\.\d+)?)/.exec(output.tail);
    if (match) return Number(match[1]);
    await sleep(10);
  }
  throw new Error(`example-tts: no setupMs log line; worker output:\n${output.tail}`);
}

/** A few lines for the report. */
export function formatExampleTts(r: ExampleTtsResult): string {
  const ms = (xs: number[]) => `${median(xs).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
  return [
    `example-tts (${r.command}, fixed input ≈${r.audioS.toFixed(2)} s of audio; medians)`,
    `  cold start, ${r.spawnToFirstTakeMs.length} rounds: spawn → setup() ${ms(r.spawnToSetupMs)}; setup() ${ms(r.setupMs)}; spawn → 1st take ${ms(r.spawnToFirstTakeMs)}`,
    `  first job (take → result) ${ms(r.firstJobMs)}`,
    `  warm job (enqueue → result), ${r.warmJobMs.length} jobs: ${ms(r.warmJobMs)}; real-time factor ${(median(r.warmJobMs) / 1000 / r.audioS).toFixed(3)}`,
  ].join('\n');
}
