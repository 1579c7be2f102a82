/**
 * Jobs per second through the gateway: for each store × worker count × worker concurrency, a
 * fresh gateway (workersMin = workersMax = N, all N warm and parked on job-take, a warm-up batch
 * drained first), then 1,000 jobs queued through `/run` (parallel requests) while claims are held
 * back, then released at once: the window runs from the release (the first take) to the last job
 * completed in the store. Over that window: the gateway's CPU (this process: nothing else runs in
 * it then), the store's share of it, the workers' CPU and, for PostgreSQL, the database server's.
 */
import { performance } from 'node:perf_hooks';
import type { BenchConfig } from './config.ts';
import {
  BENCH_ENDPOINT,
  cpuDelta,
  cpuOf,
  JsonClient,
  ownCpuUs,
  postgresServerCpu,
  postMany,
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

/** Every variant's runs, one per round. */
export interface GatewayThroughputResult {
  jobs: number;
  warmupJobs: number;
  rounds: number;
  enqueueParallelism: number;
  variants: GatewayThroughputVariant[];
  runs: Record<string, GatewayThroughputRun[]>;
  skipped: string[];
}

/** Store × workers × concurrency, PostgreSQL only when it answers. */
export function gatewayThroughputVariants(config: BenchConfig, stores: readonly StoreKind[]): GatewayThroughputVariant[] {
  const { workers, concurrencies } = config.gatewayThroughput;
  return stores.flatMap((store) =>
    workers.flatMap((w) => concurrencies.map((c) => ({ label: `${STORE_LABEL[store]} ${w}w c=${c}`, store, workers: w, concurrency: c }))),
  );
}

/** Runs every variant once per round, order rotated. */
export async function measureGatewayThroughput(
  config: BenchConfig,
  setup: GatewayBenchSetup,
  onRun: (round: number, run: GatewayThroughputRun, variant: GatewayThroughputVariant) => void,
): Promise<GatewayThroughputResult> {
  const { jobs, warmupJobs, rounds, enqueueParallelism } = config.gatewayThroughput;
  const skipped: string[] = [];
  const stores: StoreKind[] = ['sqlite'];
  if (setup.postgres.available) stores.push('postgres');
  else skipped.push(`PostgreSQL variants: ${setup.postgres.reason}`);
  const variants = gatewayThroughputVariants(config, stores);
  const runs: Record<string, GatewayThroughputRun[]> = Object.fromEntries(variants.map((v) => [v.label, []]));
  for (let round = 0; round < rounds; round++) {
    const shift = (round * 3) % variants.length;
    for (const variant of [...variants.slice(shift), ...variants.slice(0, shift)]) {
      const run = await drainOnce(config, setup, variant, jobs, warmupJobs, enqueueParallelism);
      runs[variant.label]!.push(run);
      onRun(round, run, variant);
    }
  }
  return { jobs, warmupJobs, rounds, enqueueParallelism, variants, runs, skipped };
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
