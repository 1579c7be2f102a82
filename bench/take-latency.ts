/**
 * One job at a time through a parked job-take: take answer → handler start, and job enqueue →
 * job-done arrival, for a kiln worker (concurrency 1) and the hand-written floor loop, job by job
 * in alternation (each worker has its own loopback server; only one job is in flight at a time).
 */
import { LoopbackJobServer, type RecordedRequest } from '@kiln/worker/testing';
import { unlessChildExits, type ChildHandle, type ChildOutput, type ProcessGroup } from './child-process.ts';
import { serverTime, serverTimeToMonotonic, sleep } from './clock.ts';
import type { BenchConfig } from './config.ts';

/** The per-job intervals measured, in ms. */
export const LATENCY_SERIES = [
  'takeToHandlerMs',
  'takeToHandlerLowerMs',
  'takeToHandlerAnsweredAtMs',
  'takeToHandlerWallMs',
  'handlerToDoneMs',
  'enqueueToDoneMs',
  'enqueueCallMs',
  'doneToNextTakeMs',
] as const;
/** One of {@link LATENCY_SERIES}. */
export type LatencySeriesName = (typeof LATENCY_SERIES)[number];

/**
 * Per-job intervals of one worker, measured jobs only. `enqueue()` answers the parked take
 * synchronously (node:http writes to the socket inside `res.end()`), so the moment `enqueue()` is
 * called is when the take answer goes out, give or take `enqueueCallMs`.
 *
 * - `takeToHandlerMs`: `enqueue()` called → handler start (CLOCK_MONOTONIC on both sides): an upper bound,
 *   it includes the server building and writing the answer.
 * - `takeToHandlerLowerMs`: `enqueue()` returned → handler start: a lower bound (the answer was written before).
 * - `takeToHandlerAnsweredAtMs`: the take's `answeredAt` → handler start. `answeredAt` is stamped in the
 *   `res.end()` callback, which runs when the server's event loop gets to it: later than the write, sometimes by ms.
 * - `takeToHandlerWallMs`: like `takeToHandlerMs` but on `performance.timeOrigin + now()` in both processes (a clock check).
 * - `handlerToDoneMs`: handler start → job-done arrival at the server.
 * - `enqueueToDoneMs`: `enqueue()` called → job-done arrival (PERF.md 3a / 3e).
 * - `enqueueCallMs`: how long `enqueue()` took.
 * - `doneToNextTakeMs`: the previous job's job-done arrival → arrival of the take this job answers
 *   (negative: the worker asked for its next job before reporting the last one; PERF.md 3b).
 */
export type LatencySeries = Record<LatencySeriesName, number[]> & {
  /** Requests per route the server saw over the whole run (warm-up included). */
  counts: Record<string, number>;
  output: ChildOutput;
};

/** Both workers' series. */
export interface TakeLatencyResult {
  kiln: LatencySeries;
  floor: LatencySeries;
  jobs: number;
  warmupJobs: number;
}

interface Side {
  label: 'kiln' | 'floor';
  server: LoopbackJobServer;
  child: ChildHandle | undefined;
  series: LatencySeries;
  /** Arrival of the previous job's job-done. */
  lastDoneAt: number | undefined;
}

const PARK_TIMEOUT_MS = 15_000;
const RESULT_TIMEOUT_MS = 10_000;

/** Runs `warmupJobs + jobs` jobs through each worker, alternating workers job by job. */
export async function measureTakeLatency(config: BenchConfig, processes: ProcessGroup, onProgress?: (done: number) => void): Promise<TakeLatencyResult> {
  const { jobs, warmupJobs, pauseMs } = config.takeLatency;
  if (warmupJobs < 1) throw new RangeError('takeLatency.warmupJobs must be ≥ 1 (the first job has no previous job-done)');
  const sides: Side[] = (['kiln', 'floor'] as const).map((label) => ({
    label,
    server: new LoopbackJobServer({ holdMs: 30_000, record: true }),
    child: undefined,
    series: emptySeries(),
    lastDoneAt: undefined,
  }));
  try {
    for (const side of sides) {
      await side.server.start();
      const env = { ...config.baseEnv, ...side.server.workerEnv(`latency-${side.label}`, { pingIntervalMs: 10_000 }) };
      side.child =
        side.label === 'kiln'
          ? processes.spawn(config.node, [...config.tsxArgs, config.files.noopWorker], { env: { ...env, BENCH_CONCURRENCY: '1' }, cwd: config.repoRoot })
          : processes.spawn(config.node, [...config.tsxArgs, config.files.floorLoop], { env: { ...env, FLOOR_CONCURRENCY: '1' }, cwd: config.repoRoot });
      side.series.output = side.child.output;
      await unlessChildExits(side.child, parkedTake(side.server, PARK_TIMEOUT_MS), `${side.label} worker start`);
    }
    for (let i = 0; i < warmupJobs + jobs; i++) {
      const order = i % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        const sample = await runOneJob(side, `${side.label}-${i}`, pauseMs);
        if (i < warmupJobs) continue;
        for (const name of LATENCY_SERIES) side.series[name].push(sample[name]);
      }
      if ((i + 1) % 100 === 0) onProgress?.(i + 1);
    }
  } finally {
    for (const side of sides) {
      await side.child?.kill();
      await side.server.stop();
      side.series.counts = { ...side.server.counts };
    }
  }
  const [kiln, floor] = sides;
  return { kiln: kiln!.series, floor: floor!.series, jobs, warmupJobs };
}

async function runOneJob(side: Side, id: string, [minPause, maxPause]: readonly [number, number]): Promise<Sample> {
  // A short random pause so the enqueue lands on an idle worker whose take is parked (PERF.md 3a / 3e).
  await sleep(minPause + Math.random() * (maxPause - minPause));
  const take = await parkedTake(side.server, PARK_TIMEOUT_MS);
  const enqueuedAt = serverTime();
  side.server.enqueue({ id, input: {} });
  const enqueueReturnedAt = serverTime();
  const result = await unlessChildExits(side.child!, side.server.waitForResult(id, RESULT_TIMEOUT_MS), `${side.label} job ${id}`);
  const stamp = readStamp(result.body, id);
  const previousDoneAt = side.lastDoneAt;
  side.lastDoneAt = result.at;
  return {
    takeToHandlerMs: stamp.hr - serverTimeToMonotonic(enqueuedAt),
    takeToHandlerLowerMs: stamp.hr - serverTimeToMonotonic(enqueueReturnedAt),
    // NaN in the unlikely case the take's res.end() callback has not run yet.
    takeToHandlerAnsweredAtMs: take.answeredAt === undefined ? Number.NaN : stamp.hr - serverTimeToMonotonic(take.answeredAt),
    takeToHandlerWallMs: stamp.wall - enqueuedAt,
    handlerToDoneMs: serverTimeToMonotonic(result.at) - stamp.hr,
    enqueueToDoneMs: result.at - enqueuedAt,
    enqueueCallMs: enqueueReturnedAt - enqueuedAt,
    // The very first job has no predecessor; it is always a warm-up job (warmupJobs ≥ 1).
    doneToNextTakeMs: previousDoneAt === undefined ? Number.NaN : take.t - previousDoneAt,
  };
}

type Sample = Record<LatencySeriesName, number>;

function emptySeries(): LatencySeries {
  return {
    takeToHandlerMs: [],
    takeToHandlerLowerMs: [],
    takeToHandlerAnsweredAtMs: [],
    takeToHandlerWallMs: [],
    handlerToDoneMs: [],
    enqueueToDoneMs: [],
    enqueueCallMs: [],
    doneToNextTakeMs: [],
    counts: {},
    output: { tail: '', warnLines: 0, errorLines: 0 },
  };
}

/** The worker's job-take being held by the server (not yet answered); polls every millisecond. */
async function parkedTake(server: LoopbackJobServer, timeoutMs: number): Promise<RecordedRequest> {
  const deadline = serverTime() + timeoutMs;
  for (;;) {
    // The parked take is among the latest requests: only look at the tail.
    const { requests } = server;
    for (let i = requests.length - 1; i >= Math.max(0, requests.length - 16); i--) {
      const r = requests[i]!;
      if (r.status === undefined && (r.path.includes('/job-take/') || r.path.includes('/job-take-batch/'))) return r;
    }
    if (serverTime() > deadline) throw new Error(`no parked job-take within ${timeoutMs} ms`);
    await sleep(1);
  }
}

function readStamp(body: unknown, id: string): { hr: number; wall: number } {
  const output = (body as { output?: unknown } | null)?.output as { hr?: unknown; wall?: unknown } | undefined;
  if (typeof output?.hr !== 'number' || typeof output.wall !== 'number') throw new Error(`job ${id}: unexpected result ${JSON.stringify(body)}`);
  return { hr: output.hr, wall: output.wall };
}
