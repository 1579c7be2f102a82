/**
 * The cold-start and warm-job measurement every example benchmark shares: a fresh worker process
 * per round against an in-memory `LoopbackJobServer` with the first job queued before the spawn,
 * then warm jobs one at a time on the last round's process.
 */
import { LoopbackJobServer } from '@kiln/worker/testing';
import { unlessChildExits, type ProcessGroup } from './child-process.ts';
import { serverTime, sleep } from './clock.ts';
import type { BenchConfig } from './config.ts';
import { median } from './stats.ts';

/** Per cold-start round and per warm job, in ms. */
export interface ExampleWorkerTimings {
  /** How the worker was started, for the report. */
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
}

/** One example worker to measure. */
export interface ExampleWorkerSpec {
  /** Short name for job ids and messages (`tts`). */
  name: string;
  /** Arguments to node, and the folder it runs in. */
  args: string[];
  cwd: string;
  /** Variables besides the base env and the RunPod ones (KILN_VOLUME, …). */
  env?: Record<string, string>;
  input: unknown;
  rounds: number;
  warmJobs: number;
  /** Per job. */
  timeoutMs: number;
  /** Sees the first job's output of each round; throws when it is not a success. */
  onFirstOutput?(output: unknown): void;
  /** Sees each warm job's output. */
  onWarmOutput?(output: unknown): void;
}

/** Runs the cold rounds (a fresh process each) then the warm jobs on the last round's process. */
export async function measureExampleWorker(config: BenchConfig, processes: ProcessGroup, progress: (text: string) => void, spec: ExampleWorkerSpec): Promise<ExampleWorkerTimings> {
  const timings: ExampleWorkerTimings = { command: `node ${spec.args.join(' ')}`, spawnToSetupMs: [], setupMs: [], spawnToFirstTakeMs: [], firstJobMs: [], warmJobMs: [] };
  for (let round = 0; round < spec.rounds; round++) {
    const server = new LoopbackJobServer({ holdMs: 30_000, record: true });
    await server.start();
    server.enqueue({ id: `${spec.name}-cold-${round}`, input: spec.input });
    const env = { ...config.baseEnv, ...server.workerEnv(`${spec.name}-${round}`, { pingIntervalMs: 10_000 }), ...spec.env };
    const child = processes.spawn(config.node, spec.args, { env, cwd: spec.cwd });
    try {
      const first = await unlessChildExits(child, server.waitForResult(`${spec.name}-cold-${round}`, spec.timeoutMs), `example-${spec.name} cold start`);
      spec.onFirstOutput?.((first.body as { output?: unknown }).output);
      const take = server.requests.find((r) => r.path.includes('/job-take'))!;
      const setupMs = await setupDuration(child.output, spec.name);
      timings.spawnToFirstTakeMs.push(take.t - child.spawnedAt);
      timings.setupMs.push(setupMs);
      timings.spawnToSetupMs.push(take.t - child.spawnedAt - setupMs);
      timings.firstJobMs.push(first.at - take.t);
      progress(`  round ${round + 1}: spawn → take ${timings.spawnToFirstTakeMs.at(-1)!.toFixed(0)} ms (setup ${setupMs} ms), first job ${timings.firstJobMs.at(-1)!.toFixed(0)} ms`);
      if (round < spec.rounds - 1) continue;
      for (let i = 0; i < spec.warmJobs; i++) {
        const id = `${spec.name}-warm-${i}`;
        const queuedAt = serverTime();
        server.enqueue({ id, input: spec.input });
        const done = await unlessChildExits(child, server.waitForResult(id, spec.timeoutMs), `example-${spec.name} warm job`);
        timings.warmJobMs.push(done.at - queuedAt);
        spec.onWarmOutput?.((done.body as { output?: unknown }).output);
      }
    } finally {
      await child.kill();
      await server.stop();
    }
  }
  return timings;
}

/** `median ms (min …, max …)`, or `n/a` for no samples. */
export function formatMs(xs: readonly number[]): string {
  return xs.length === 0 ? 'n/a' : `${median([...xs]).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
}

/** The cold-start line of a report. */
export function formatColdStart(t: ExampleWorkerTimings): string {
  return `  cold start, ${t.spawnToFirstTakeMs.length} rounds: spawn → setup() ${formatMs(t.spawnToSetupMs)}; setup() ${formatMs(t.setupMs)}; spawn → 1st take ${formatMs(t.spawnToFirstTakeMs)}`;
}

/** The runtime's `setup finished` line carries `setupMs`; log lines flush once the first take is out. */
async function setupDuration(output: { tail: string }, name: string): Promise<number> {
  for (let waited = 0; waited < 10_000; waited += 10) {
    const match = /"setupMs":(\d+(?:\.\d+)?)/.exec(output.tail);
    if (match) return Number(match[1]);
    await sleep(10);
  }
  throw new Error(`example-${name}: no setupMs log line; worker output:\n${output.tail}`);
}
