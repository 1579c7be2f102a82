/**
 * Jobs per second through the gateway: for each store × worker count × worker concurrency, a
 * fresh gateway (workersMin = workersMax = N, all N warm and parked on job-take, a warm-up batch
 * drained first), then 1,000 jobs queued through `/run` (parallel requests) while claims are held
 * back, then released at once: the window runs from the release (the first take) to the last job
 * completed in the store. Over that window: the gateway's CPU (this process: nothing else runs in
 * it then), the store's share of it, the workers' CPU and, for PostgreSQL, the database server's.
 *
 * Beside each workers × concurrency combination, in the same rounds: its in-memory floor, the
 * same N worker processes (same bundle and environment) draining the same 1,000 jobs from one
 * {@link FloorJobServer} in this process (bare node:http, a queue in memory, no store, no hono),
 * queued and released the same way and timed from the release to the last job-done. Every job still costs
 * a share of a take and a job-done exchange, on cores the workers share with the server: the floor
 * is what a node:http gateway doing nothing else could reach here with these workers.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { BenchConfig } from './config.ts';
import type { FloorJobServer } from './floor-job-server.ts';
import {
  BENCH_ENDPOINT,
  cpuDelta,
  cpuOf,
  JsonClient,
  ownCpuUs,
  postgresServerCpu,
  postMany,
  startFloorServer,
  startFloorWorkers,
  startGateway,
  STORE_LABEL,
  type GatewayBenchSetup,
  type GatewayRig,
  type StoreCallStats,
  type StoreKind,
} from './gateway-harness.ts';

/** One configuration drained. */
export interface GatewayThroughputVariant {
  /** `SQLite 4w c=8` … */
  label: string;
  store: StoreKind;
  workers: number;
  concurrency: number;
}

/** One timed drain. */
export interface GatewayThroughputRun {
  jobsPerSecond: number;
  /** Claims released → last job completed, ms. */
  windowMs: number;
  /** This process (the gateway) CPU over the window per job, µs. */
  gatewayCpuUsPerJob: number;
  /** Wall time inside synchronous store calls over the window per job, µs (SQLite: the store's whole cost on the gateway's thread). */
  storeSyncUsPerJob: number;
  /** The workers' CPU over the window per job, µs. */
  workerCpuUsPerJob: number;
  /** Every PostgreSQL server process's CPU over the window per job, µs (PostgreSQL only). */
  postgresCpuUsPerJob: number | null;
  /** Store calls over the window. */
  store: StoreCallStats;
  /** claim() calls over the window that returned jobs / none. */
  claims: number;
  emptyClaims: number;
  /** Queueing the batch through `/run`: requests per second, and this process's CPU per job (gateway + the in-process client), µs. */
  enqueuePerSecond: number;
  enqueueCpuUsPerJob: number;
  /** The PostgreSQL server's CPU while queueing, per job, µs. */
  enqueuePostgresCpuUsPerJob: number | null;
  warnLines: number;
  errorLines: number;
}

/** The in-memory floor of one workers × concurrency combination. */
export interface FloorThroughputVariant {
  /** `in-memory floor 4w c=8` … */
  label: string;
  workers: number;
  concurrency: number;
}

/** One timed drain of the floor. */
export interface FloorThroughputRun {
  jobsPerSecond: number;
  /** Jobs handed to the parked takes → last job-done, ms. */
  windowMs: number;
  /** This process (the floor server alone) CPU over the window per job, µs. */
  serverCpuUsPerJob: number;
  /** The workers' CPU over the window per job, µs. */
  workerCpuUsPerJob: number;
  /** Take answers that carried jobs, and takes answered 204, over the window. */
  takesWithJobs: number;
  emptyTakes: number;
  /** Queueing the batch through the floor's `/run`: requests per second, and this process's CPU per job (server + client), µs. */
  enqueuePerSecond: number;
  enqueueCpuUsPerJob: number;
  warnLines: number;
  errorLines: number;
}

/** Every variant's runs, one per round. */
export interface GatewayThroughputResult {
  jobs: number;
  warmupJobs: number;
  rounds: number;
  enqueueParallelism: number;
  variants: GatewayThroughputVariant[];
  runs: Record<string, GatewayThroughputRun[]>;
  /** The in-memory floors, one per workers × concurrency, run in the same rounds. */
  floorVariants: FloorThroughputVariant[];
  floorRuns: Record<string, FloorThroughputRun[]>;
  /** Labels in the order they ran, per round. */
  orders: string[][];
  /** CPUs this process may run on: gateway or floor server, workers and database share them. */
  cores: number;
  skipped: string[];
}

/** The label of the floor for `workers` × `concurrency`. */
export function floorLabel(workers: number, concurrency: number): string {
  return `in-memory floor ${workers}w c=${concurrency}`;
}

/** Store × workers × concurrency, PostgreSQL only when it answers. */
export function gatewayThroughputVariants(config: BenchConfig, stores: readonly StoreKind[]): GatewayThroughputVariant[] {
  const { workers, concurrencies } = config.gatewayThroughput;
  return stores.flatMap((store) =>
    workers.flatMap((w) => concurrencies.map((c) => ({ label: `${STORE_LABEL[store]} ${w}w c=${c}`, store, workers: w, concurrency: c }))),
  );
}

/** Every workers × concurrency combination's floor. */
export function floorThroughputVariants(config: BenchConfig): FloorThroughputVariant[] {
  const { workers, concurrencies } = config.gatewayThroughput;
  return workers.flatMap((w) => concurrencies.map((c) => ({ label: floorLabel(w, c), workers: w, concurrency: c })));
}

type Scheduled = { kind: 'gateway'; variant: GatewayThroughputVariant } | { kind: 'floor'; variant: FloorThroughputVariant };

/** Runs every variant and every floor once per round, order rotated. */
export async function measureGatewayThroughput(
  config: BenchConfig,
  setup: GatewayBenchSetup,
  onRun: (round: number, run: GatewayThroughputRun, variant: GatewayThroughputVariant) => void,
  onFloorRun?: (round: number, run: FloorThroughputRun, variant: FloorThroughputVariant) => void,
): Promise<GatewayThroughputResult> {
  const { jobs, warmupJobs, rounds, enqueueParallelism } = config.gatewayThroughput;
  const skipped: string[] = [];
  const stores: StoreKind[] = ['sqlite'];
  if (setup.postgres.available) stores.push('postgres');
  else skipped.push(`PostgreSQL variants: ${setup.postgres.reason}`);
  const variants = gatewayThroughputVariants(config, stores);
  const floorVariants = floorThroughputVariants(config);
  const runs: Record<string, GatewayThroughputRun[]> = Object.fromEntries(variants.map((v) => [v.label, []]));
  const floorRuns: Record<string, FloorThroughputRun[]> = Object.fromEntries(floorVariants.map((v) => [v.label, []]));
  // Each combination's floor next to its store variants; the shift (group size + 1) moves every
  // entry to another place in its group from round to round, so no pair always runs in one order.
  const schedule: Scheduled[] = floorVariants.flatMap((f): Scheduled[] => [
    { kind: 'floor', variant: f },
    ...variants.filter((v) => v.workers === f.workers && v.concurrency === f.concurrency).map((v): Scheduled => ({ kind: 'gateway', variant: v })),
  ]);
  const step = stores.length + 2;
  const orders: string[][] = [];
  for (let round = 0; round < rounds; round++) {
    const shift = (round * step) % schedule.length;
    const order = [...schedule.slice(shift), ...schedule.slice(0, shift)];
    orders.push(order.map((s) => s.variant.label));
    for (const item of order) {
      if (item.kind === 'gateway') {
        const run = await drainOnce(config, setup, item.variant, jobs, warmupJobs, enqueueParallelism);
        runs[item.variant.label]!.push(run);
        onRun(round, run, item.variant);
      } else {
        const run = await drainFloorOnce(config, setup, item.variant, jobs, warmupJobs, enqueueParallelism);
        floorRuns[item.variant.label]!.push(run);
        onFloorRun?.(round, run, item.variant);
      }
    }
  }
  return { jobs, warmupJobs, rounds, enqueueParallelism, variants, runs, floorVariants, floorRuns, orders, cores: os.availableParallelism(), skipped };
}

async function drainOnce(
  config: BenchConfig,
  setup: GatewayBenchSetup,
  variant: GatewayThroughputVariant,
  jobs: number,
  warmupJobs: number,
  parallel: number,
): Promise<GatewayThroughputRun> {
  const rig = await startGateway(config, setup, { store: variant.store, workers: variant.workers, concurrency: variant.concurrency });
  const client = new JsonClient(parallel);
  try {
    await rig.waitForIdleWorkers(variant.workers);
    const runUrl = new URL(`${rig.endpointUrl}/run`);
    const bodies = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `{"input":{"${tag}":${i}}}`);
    // Warm-up: JIT, keep-alive connections, the store's caches, on both sides.
    rig.probe.reset();
    const warm = waitForFinished(rig, warmupJobs, `${variant.label} warm-up`);
    await postMany(client, runUrl, bodies(warmupJobs, 'warm'), parallel);
    await warm;
    // Queue the batch with claims held: the parked takes wake and wait at the gate.
    rig.probe.hold();
    rig.probe.reset();
    const pgEnq0 = variant.store === 'postgres' ? postgresServerCpu() : undefined;
    const enqCpu0 = ownCpuUs();
    const enq0 = performance.now();
    await postMany(client, runUrl, bodies(jobs, 'n'), parallel);
    const enqMs = performance.now() - enq0;
    const enqCpuUs = ownCpuUs() - enqCpu0;
    const pgEnqUs = pgEnq0 ? cpuDelta(pgEnq0, postgresServerCpu()) : null;
    await settle();
    // Drain.
    const pids = rig.workerPids();
    const workers0 = cpuOf(pids);
    const pg0 = variant.store === 'postgres' ? postgresServerCpu() : undefined;
    rig.probe.reset();
    let end: { t: number; cpu: number } | undefined;
    const done = waitForFinished(rig, jobs, variant.label, () => (end = { t: performance.now(), cpu: ownCpuUs() }));
    const cpu0 = ownCpuUs();
    const t0 = performance.now();
    rig.probe.release();
    await done;
    const workers1 = cpuOf(pids);
    const pg1 = pg0 ? postgresServerCpu() : undefined;
    const { t: t1, cpu: cpu1 } = end!;
    const stats = structuredClone(rig.probe.stats);
    const syncMs = Object.values(stats.syncMs).reduce((a, b) => a + b, 0);
    const counts = await rig.probe.store.counts(BENCH_ENDPOINT);
    if (counts.completed !== jobs + warmupJobs || counts.failed !== 0) {
      throw new Error(`${variant.label}: ${counts.completed} completed, ${counts.failed} failed, expected ${jobs + warmupJobs} completed`);
    }
    const windowMs = t1 - t0;
    return {
      jobsPerSecond: (jobs / windowMs) * 1000,
      windowMs,
      gatewayCpuUsPerJob: (cpu1 - cpu0) / jobs,
      storeSyncUsPerJob: (syncMs * 1000) / jobs,
      workerCpuUsPerJob: cpuDelta(workers0, workers1) / jobs,
      postgresCpuUsPerJob: pg0 && pg1 ? cpuDelta(pg0, pg1) / jobs : null,
      store: stats,
      claims: (stats.calls['claim'] ?? 0) - rig.probe.emptyClaims,
      emptyClaims: rig.probe.emptyClaims,
      enqueuePerSecond: (jobs / enqMs) * 1000,
      enqueueCpuUsPerJob: enqCpuUs / jobs,
      enqueuePostgresCpuUsPerJob: pgEnqUs === null ? null : pgEnqUs / jobs,
      warnLines: rig.log.warn,
      errorLines: rig.log.error,
    };
  } finally {
    rig.probe.onFinish(undefined);
    rig.probe.release();
    client.close();
    await rig.stop();
  }
}

/**
 * The floor's drain, step for step as {@link drainOnce}: N workers parked on job-take, a warm-up
 * batch queued through `/run` and drained, the 1,000 jobs queued through `/run` with takes held,
 * then released and timed to the last job-done, with this process's CPU (the floor server alone)
 * and the workers'. The warm-up arrives as the gateway's does, job by job from parallel requests:
 * it sets the batch sizes the workers ask for afterwards.
 */
async function drainFloorOnce(
  config: BenchConfig,
  setup: GatewayBenchSetup,
  variant: FloorThroughputVariant,
  jobs: number,
  warmupJobs: number,
  parallel: number,
): Promise<FloorThroughputRun> {
  const server = await startFloorServer();
  const workers = startFloorWorkers(config, setup, server, variant);
  const client = new JsonClient(parallel);
  try {
    await workers.waitForParked(variant.workers);
    const bodies = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `{"input":{"${tag}":${i}}}`);
    server.resetCounts();
    const warm = waitForFloorFinished(server, warmupJobs, `${variant.label} warm-up`);
    await postMany(client, server.runUrl, bodies(warmupJobs, 'warm'), parallel);
    await warm;
    server.hold();
    const enqCpu0 = ownCpuUs();
    const enq0 = performance.now();
    await postMany(client, server.runUrl, bodies(jobs, 'n'), parallel);
    const enqMs = performance.now() - enq0;
    const enqCpuUs = ownCpuUs() - enqCpu0;
    await settle();
    await workers.waitForParked(variant.workers);
    const workers0 = cpuOf(workers.pids);
    server.resetCounts();
    let end: { t: number; cpu: number } | undefined;
    const done = waitForFloorFinished(server, jobs, variant.label, () => (end = { t: performance.now(), cpu: ownCpuUs() }));
    const cpu0 = ownCpuUs();
    const t0 = performance.now();
    server.release();
    await done;
    const workers1 = cpuOf(workers.pids);
    const { t: t1, cpu: cpu1 } = end!;
    const { takesWithJobs, emptyTakes, ignoredDone } = server.counts;
    if (server.queued !== 0 || ignoredDone !== 0) throw new Error(`${variant.label}: ${server.queued} jobs left in the queue, ${ignoredDone} job-done posts for jobs not held`);
    const windowMs = t1 - t0;
    const log = workers.logLines();
    return {
      jobsPerSecond: (jobs / windowMs) * 1000,
      windowMs,
      serverCpuUsPerJob: (cpu1 - cpu0) / jobs,
      workerCpuUsPerJob: cpuDelta(workers0, workers1) / jobs,
      takesWithJobs,
      emptyTakes,
      enqueuePerSecond: (jobs / enqMs) * 1000,
      enqueueCpuUsPerJob: enqCpuUs / jobs,
      warnLines: log.warn,
      errorLines: log.error,
    };
  } finally {
    server.onFinish(undefined);
    server.release();
    client.close();
    await workers.stop();
    await server.stop();
  }
}

/** Resolves once the floor completed `n` jobs since its last count reset; `atEnd` runs synchronously at the n-th. */
function waitForFloorFinished(server: FloorJobServer, n: number, what: string, atEnd?: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      server.onFinish(undefined);
      reject(new Error(`${what}: ${server.finished}/${n} jobs finished after 60 s`));
    }, 60_000);
    server.onFinish((finished) => {
      if (finished < n) return;
      atEnd?.();
      server.onFinish(undefined);
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Resolves once `n` jobs finished since the last reset; `atEnd` runs synchronously at the n-th. */
function waitForFinished(rig: GatewayRig, n: number, what: string, atEnd?: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      rig.probe.onFinish(undefined);
      reject(new Error(`${what}: ${rig.probe.finished}/${n} jobs finished after 60 s; last log lines: ${rig.log.last.join(' | ')}`));
    }, 60_000);
    rig.probe.onFinish((finished) => {
      if (finished < n) return;
      atEnd?.();
      rig.probe.onFinish(undefined);
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Lets the wake-ups and scaling checks the enqueue burst scheduled run before the clock starts. */
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 100));
}
