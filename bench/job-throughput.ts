/**
 * No-op jobs per second for one worker: N jobs queued before the worker starts, timed from the
 * first job-take answer to the last job-done arrival. Kiln at each concurrency and the floor loop
 * run in every round, in rotating order, each against a fresh non-recording loopback server.
 */
import { LoopbackJobServer } from '@kiln/worker/testing';
import { processCpuMs, unlessChildExits, type ProcessGroup } from './child-process.ts';
import { serverTime } from './clock.ts';
import type { BenchConfig } from './config.ts';

/** A worker setup whose throughput is measured. */
export interface ThroughputVariant {
  /** `kiln c=8`, `floor c=1` … */
  label: string;
  kind: 'kiln' | 'floor';
  concurrency: number;
}

/** One timed run. */
export interface ThroughputRun {
  jobsPerSecond: number;
  /** First take answered → last job-done arrival. */
  windowMs: number;
  /** Requests the server saw per route. */
  counts: Record<string, number>;
  /** Worker process CPU (user + system) per job over the window, µs (10 ms ticks: ±10 ms over the window). */
  workerCpuUsPerJob: number | undefined;
  /** This process's CPU (the loopback server, mostly) per job over the window, µs. */
  serverCpuUsPerJob: number;
  warnLines: number;
  errorLines: number;
}

/** Every variant's runs, one per round, in round order. */
export interface ThroughputResult {
  variants: ThroughputVariant[];
  runs: Record<string, ThroughputRun[]>;
  jobs: number;
  rounds: number;
}

/** Kiln at each configured concurrency, and the floor loop at 1 and at the highest of them. */
export function throughputVariants(config: BenchConfig): ThroughputVariant[] {
  const top = Math.max(...config.throughput.concurrencies);
  return [
    { label: 'floor c=1', kind: 'floor', concurrency: 1 },
    ...config.throughput.concurrencies.map((c): ThroughputVariant => ({ label: `kiln c=${c}`, kind: 'kiln', concurrency: c })),
    ...(top > 1 ? [{ label: `floor c=${top}`, kind: 'floor' as const, concurrency: top }] : []),
  ];
}

/** Runs every variant once per round. */
export async function measureThroughput(config: BenchConfig, processes: ProcessGroup, onRun?: (round: number, run: ThroughputRun, variant: ThroughputVariant) => void): Promise<ThroughputResult> {
  const { jobs, rounds } = config.throughput;
  const variants = throughputVariants(config);
  const runs: Record<string, ThroughputRun[]> = Object.fromEntries(variants.map((v) => [v.label, []]));
  for (let round = 0; round < rounds; round++) {
    const shift = round % variants.length;
    for (const variant of [...variants.slice(shift), ...variants.slice(0, shift)]) {
      const run = await runOnce(config, processes, variant, jobs, `r${round}`);
      runs[variant.label]!.push(run);
      onRun?.(round, run, variant);
    }
  }
  return { variants, runs, jobs, rounds };
}

async function runOnce(config: BenchConfig, processes: ProcessGroup, variant: ThroughputVariant, jobs: number, tag: string): Promise<ThroughputRun> {
  const server = new LoopbackJobServer({ holdMs: 30_000, record: false });
  await server.start();
  const ids = Array.from({ length: jobs }, (_, i) => `${tag}-${i}`);
  server.enqueue(...ids.map((id) => ({ id, input: {} })));
  const env: Record<string, string> = { ...config.baseEnv, ...server.workerEnv(`throughput-${variant.kind}-${variant.concurrency}`, { pingIntervalMs: 10_000 }) };
  if (variant.kind === 'kiln') env['BENCH_CONCURRENCY'] = String(variant.concurrency);
  else env['FLOOR_CONCURRENCY'] = String(variant.concurrency);
  const file = variant.kind === 'kiln' ? config.files.noopWorker : config.files.floorLoop;
  const child = processes.spawn(config.node, [...config.tsxArgs, file], { env, cwd: config.repoRoot });
  let firstTakeAt: number | undefined;
  let workerCpuAtFirstTake: number | undefined;
  let serverCpuAtFirstTake: NodeJS.CpuUsage | undefined;
  let workerCpuAtEnd: number | undefined;
  let serverCpu: NodeJS.CpuUsage | undefined;
  try {
    // `waitFor` re-checks on every answered request: the first check that sees a take is the first take's answer.
    const allDone = server.waitFor(
      () => {
        if (firstTakeAt === undefined && server.counts.take + server.counts['take-batch'] > 0) {
          firstTakeAt = serverTime();
          workerCpuAtFirstTake = processCpuMs(child.pid);
          serverCpuAtFirstTake = process.cpuUsage();
        }
        if (server.resultCount < jobs) return false;
        workerCpuAtEnd = processCpuMs(child.pid);
        serverCpu = process.cpuUsage(serverCpuAtFirstTake);
        return true;
      },
      Math.max(60_000, jobs * 20),
      `${jobs} results from ${variant.label}`,
    );
    await unlessChildExits(child, allDone, variant.label);
  } finally {
    await child.kill();
    await server.stop();
  }
  let lastAt = -Infinity;
  for (const id of ids) lastAt = Math.max(lastAt, server.result(id)!.at);
  const windowMs = lastAt - firstTakeAt!;
  return {
    jobsPerSecond: (jobs / windowMs) * 1000,
    windowMs,
    counts: { ...server.counts },
    workerCpuUsPerJob:
      workerCpuAtEnd === undefined || workerCpuAtFirstTake === undefined ? undefined : ((workerCpuAtEnd - workerCpuAtFirstTake) * 1000) / jobs,
    serverCpuUsPerJob: serverCpu === undefined ? Number.NaN : (serverCpu.user + serverCpu.system) / jobs,
    warnLines: child.output.warnLines,
    errorLines: child.output.errorLines,
  };
}
