/**
 * Turns raw benchmark results into figures (medians, spreads, same-run ratios, target verdicts)
 * and prints them as a plain-text table.
 */
import { COLD_START_FLOOR, COLD_START_HEADLINE, COLD_START_NODE, COLD_START_VARIANTS, type ColdStartResult, type ColdStartVariant } from './cold-start.ts';
import type { ThroughputResult } from './job-throughput.ts';
import { RUNSYNC_ECHO, RUNSYNC_HEADLINE, RUNSYNC_RELAY, type GatewayRunsyncResult } from './gateway-runsync.ts';
import { floorLabel, type GatewayThroughputResult } from './gateway-throughput.ts';
import type { StoreCallStats } from './gateway-harness.ts';
import { latencySummary, median, pairwiseRatios, percentile, spread, type LatencySummary, type Spread } from './stats.ts';
import { LATENCY_SERIES, type LatencySeriesName, type TakeLatencyResult } from './take-latency.ts';

/** The targets. */
export const TARGETS = {
  /** Take → handler start p50, ms. */
  takeToHandlerP50Ms: 1,
  /** No-op jobs/s, one worker at concurrency 8. */
  jobsPerSecondAtC8: 1000,
  /** Spawn → first job-take of the echo worker bundle, as a multiple of `node -e 0`. */
  coldStartVsNode: 1.5,
  /** Gateway `/runsync` p50 (no-op worker, c=1, sequential), as a multiple of a bare node:http echo's p50 in the same run. */
  runsyncVsEchoP50: 3,
  /** Gateway drain rate, 4 workers, SQLite store, jobs/s. */
  gatewayJobsPerSecond4wSqlite: 5000,
} as const;

/** Reference figures from PERF.md (other runs: compared in absolute terms only). */
export const PERF_ANCHORS = {
  runpodPythonEnqueueToDone: { p50: 54, p99: 104, ref: 'PERF.md 3a' },
  nodeLoopEnqueueToDone: { p50: 1.3, p99: 3.5, ref: 'PERF.md 3e' },
  nodeLoopJobsPerSecond: { median: 1170, ref: 'PERF.md 3e' },
  echoNodeClientP50: { p50: 0.23, p99: 1.9, ref: 'PERF.md 1b' },
  runpodPythonRunsyncVsEcho: { median: 2.5, min: 2.3, max: 3.0, ref: 'PERF.md 2a (Node client)' },
  sqliteUsPerJob: { median: 116, ref: 'PERF.md 5a' },
} as const;

/** A same-run comparison: ratio of the medians, and the median (with spread) of per-round ratios. */
export interface RatioSummary {
  ofMedians: number;
  perRound: Spread;
}

/** One target and whether this run met it. */
export interface TargetVerdict {
  name: string;
  goal: string;
  measured: string;
  met: boolean;
}

/** Everything the run concluded, JSON-ready. */
export interface BenchSummary {
  coldStart?: {
    rounds: number;
    /** The variant the target is judged on. */
    headline: ColdStartVariant;
    /** Every variant, in {@link COLD_START_VARIANTS} order. */
    variants: Record<
      ColdStartVariant,
      {
        command: string;
        measures: string;
        ms: Spread;
        /** × `node -e 0` (null for `node -e 0` itself). */
        vsNode: RatioSummary | null;
        /** × the floor loop (null for the floor loop itself). */
        vsFloor: RatioSummary | null;
      }
    >;
  };
  takeLatency?: {
    jobs: number;
    warmupJobs: number;
    kiln: Record<LatencySeriesName, LatencySummary>;
    floor: Record<LatencySeriesName, LatencySummary>;
    /** kiln / floor, enqueue → job-done (both measured job by job in alternation). */
    enqueueToDoneP50Ratio: number;
    enqueueToDoneP99Ratio: number;
    requestsPerJob: { kiln: Record<string, number>; floor: Record<string, number> };
    logLines: { kiln: { warn: number; error: number }; floor: { warn: number; error: number } };
  };
  throughput?: {
    jobs: number;
    rounds: number;
    variants: Record<
      string,
      {
        jobsPerSecond: Spread;
        vsFloorC1: RatioSummary;
        takesPerJob: number;
        /** Medians over rounds, µs per job. */
        workerCpuUsPerJob: number | undefined;
        serverCpuUsPerJob: number;
        warnLines: number;
        errorLines: number;
      }
    >;
  };
  gatewayRunsync?: {
    rounds: number;
    requestsPerRound: number;
    warmupRequests: number;
    variants: Record<
      string,
      {
        /** All measured round trips pooled, ms. */
        latencyMs: LatencySummary;
        /** Per-round p50 and p99, ms. */
        perRoundP50: Spread;
        perRoundP99: Spread;
        /** × the echo: pooled p50 / pooled p50, and per-round p50 ratios (null for the echo itself). */
        vsEchoP50: RatioSummary | null;
        vsEchoP99: RatioSummary | null;
        /** × the three-hop relay floor, likewise (gateway variants only). */
        vsRelayP50: RatioSummary | null;
        vsRelayP99: RatioSummary | null;
        /** Medians over rounds, µs per request. The bench process holds the client too. */
        benchCpuUsPerRequest: number;
        workerCpuUsPerRequest: number | null;
        postgresCpuUsPerRequest: number | null;
        /** Store calls per request and synchronous µs in them per request, pooled over rounds. */
        storeCallsPerRequest: Record<string, number> | null;
        storeSyncUsPerRequestByMethod: Record<string, number> | null;
        storeSyncUsPerRequest: number | null;
        badAnswers: number;
        warnLines: number;
        errorLines: number;
      }
    >;
    skipped: string[];
  };
  gatewayThroughput?: {
    jobs: number;
    warmupJobs: number;
    rounds: number;
    enqueueParallelism: number;
    variants: Record<
      string,
      {
        store: string;
        workers: number;
        concurrency: number;
        jobsPerSecond: Spread;
        /** Medians over rounds, µs per job, over the drain window. */
        gatewayCpuUsPerJob: number;
        storeSyncUsPerJob: number;
        /** storeSyncUsPerJob / gatewayCpuUsPerJob. */
        storeShare: number;
        workerCpuUsPerJob: number;
        postgresCpuUsPerJob: number | null;
        /** Jobs per non-empty claim (take answer), and empty claims per job. */
        jobsPerTake: number;
        emptyClaimsPerJob: number;
        /** Store calls per job over the drain window, pooled over rounds. */
        storeCallsPerJob: Record<string, number>;
        storeSyncUsPerJobByMethod: Record<string, number>;
        /** Queueing through `/run` (parallel): requests/s, and this process's CPU per job (gateway + client). */
        enqueuePerSecond: Spread;
        enqueueCpuUsPerJob: number;
        enqueuePostgresCpuUsPerJob: number | null;
        warnLines: number;
        errorLines: number;
        /** The in-memory floor of the same workers × concurrency, and jobs/s × it (per round: pairwise). */
        floor: string;
        vsFloor: RatioSummary;
      }
    >;
    /** CPUs the bench process may run on (gateway or floor server, workers and database share them). */
    cores: number;
    /** The in-memory floors (same worker processes, no store, no hono), by label. */
    floors: Record<
      string,
      {
        workers: number;
        concurrency: number;
        jobsPerSecond: Spread;
        /** Medians over rounds, µs per job, over the drain: the floor server (this process) and the workers. */
        serverCpuUsPerJob: number;
        workerCpuUsPerJob: number;
        /** Cores busy during the drain: jobs/s × (server + workers) CPU per job. */
        coresBusy: number;
        /** The drain rate if server + workers kept every core busy: cores × 10⁶ / (server + workers) µs per job. */
        cpuBoundJobsPerSecond: number;
        jobsPerTake: number;
        emptyTakesPerJob: number;
        /** Queueing through the floor's `/run` (parallel): requests/s, and this process's CPU per job (server + client). */
        enqueuePerSecond: Spread;
        enqueueCpuUsPerJob: number;
        warnLines: number;
        errorLines: number;
      }
    >;
    /** (c) per store: medians over every variant's runs. */
    cpuPerJob: Record<string, { drainUs: number; enqueueUs: number; storeShare: number; postgresUs: number | null; enqueuePostgresUs: number | null }>;
    skipped: string[];
  };
  targets: TargetVerdict[];
}

function ratio(a: readonly number[], b: readonly number[]): RatioSummary {
  return { ofMedians: median(a) / median(b), perRound: spread(pairwiseRatios(a, b)) };
}

/** Computes the figures and target verdicts from whichever benchmarks ran. */
export function summarize(results: {
  coldStart?: ColdStartResult;
  takeLatency?: TakeLatencyResult;
  throughput?: ThroughputResult;
  gatewayRunsync?: GatewayRunsyncResult;
  gatewayThroughput?: GatewayThroughputResult;
}): BenchSummary {
  const summary: BenchSummary = { targets: [] };
  const { coldStart, takeLatency, throughput, gatewayRunsync, gatewayThroughput } = results;
  if (coldStart) {
    const samples = coldStart.samplesMs;
    const variants = Object.fromEntries(
      COLD_START_VARIANTS.map((v) => [
        v,
        {
          command: coldStart.variants[v].command,
          measures: coldStart.variants[v].measures,
          ms: spread(samples[v]),
          vsNode: v === COLD_START_NODE ? null : ratio(samples[v], samples[COLD_START_NODE]),
          vsFloor: v === COLD_START_FLOOR ? null : ratio(samples[v], samples[COLD_START_FLOOR]),
        },
      ]),
    ) as NonNullable<BenchSummary['coldStart']>['variants'];
    summary.coldStart = { rounds: samples[COLD_START_NODE].length, headline: COLD_START_HEADLINE, variants };
    const head = variants[COLD_START_HEADLINE];
    const r = head.vsNode!;
    summary.targets.push({
      name: 'spawn → first job-take (echo bundle)',
      goal: `≤ ${TARGETS.coldStartVsNode}× node -e 0`,
      measured: `×${fmt(r.ofMedians, 2)} (per-round median ×${fmt(r.perRound.median, 2)}); ${fmt(head.ms.median, 1)} vs ${fmt(variants[COLD_START_NODE].ms.median, 1)} ms`,
      met: r.ofMedians <= TARGETS.coldStartVsNode,
    });
  }
  if (takeLatency) {
    const per = (s: TakeLatencyResult['kiln']) => Object.fromEntries(LATENCY_SERIES.map((k) => [k, latencySummary(s[k].filter(Number.isFinite))])) as Record<LatencySeriesName, LatencySummary>;
    const kiln = per(takeLatency.kiln);
    const floor = per(takeLatency.floor);
    const total = takeLatency.jobs + takeLatency.warmupJobs;
    const perJob = (counts: Record<string, number>) => Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0).map(([k, n]) => [k, n / total]));
    summary.takeLatency = {
      jobs: takeLatency.jobs,
      warmupJobs: takeLatency.warmupJobs,
      kiln,
      floor,
      enqueueToDoneP50Ratio: kiln.enqueueToDoneMs.median / floor.enqueueToDoneMs.median,
      enqueueToDoneP99Ratio: kiln.enqueueToDoneMs.p99 / floor.enqueueToDoneMs.p99,
      requestsPerJob: { kiln: perJob(takeLatency.kiln.counts), floor: perJob(takeLatency.floor.counts) },
      logLines: {
        kiln: { warn: takeLatency.kiln.output.warnLines, error: takeLatency.kiln.output.errorLines },
        floor: { warn: takeLatency.floor.output.warnLines, error: takeLatency.floor.output.errorLines },
      },
    };
    summary.targets.push({
      name: 'take → handler start p50',
      goal: `≤ ${TARGETS.takeToHandlerP50Ms} ms`,
      measured: `${fmt(kiln.takeToHandlerMs.median, 3)} ms (p99 ${fmt(kiln.takeToHandlerMs.p99, 3)}; floor p50 ${fmt(floor.takeToHandlerMs.median, 3)})`,
      met: kiln.takeToHandlerMs.median <= TARGETS.takeToHandlerP50Ms,
    });
  }
  if (throughput) {
    const floorRuns = throughput.runs['floor c=1']!.map((r) => r.jobsPerSecond);
    const variants: NonNullable<BenchSummary['throughput']>['variants'] = {};
    for (const v of throughput.variants) {
      const runs = throughput.runs[v.label]!;
      const rates = runs.map((r) => r.jobsPerSecond);
      const takes = runs.reduce((n, r) => n + (r.counts['take'] ?? 0) + (r.counts['take-batch'] ?? 0), 0);
      variants[v.label] = {
        jobsPerSecond: spread(rates),
        vsFloorC1: ratio(rates, floorRuns),
        takesPerJob: takes / (throughput.jobs * runs.length),
        workerCpuUsPerJob: runs.every((r) => r.workerCpuUsPerJob !== undefined) ? median(runs.map((r) => r.workerCpuUsPerJob!)) : undefined,
        serverCpuUsPerJob: median(runs.map((r) => r.serverCpuUsPerJob)),
        warnLines: runs.reduce((n, r) => n + r.warnLines, 0),
        errorLines: runs.reduce((n, r) => n + r.errorLines, 0),
      };
    }
    summary.throughput = { jobs: throughput.jobs, rounds: throughput.rounds, variants };
    const c8 = variants['kiln c=8'];
    if (c8) {
      summary.targets.push({
        name: 'no-op jobs/s, one worker, c=8',
        goal: `≥ ${TARGETS.jobsPerSecondAtC8}/s`,
        measured: `${fmt(c8.jobsPerSecond.median, 0)}/s [${fmt(c8.jobsPerSecond.min, 0)}–${fmt(c8.jobsPerSecond.max, 0)}], ×${fmt(c8.vsFloorC1.ofMedians, 2)} of floor c=1`,
        met: c8.jobsPerSecond.median >= TARGETS.jobsPerSecondAtC8,
      });
    }
  }
  if (gatewayRunsync) summarizeGatewayRunsync(gatewayRunsync, summary);
  if (gatewayThroughput) summarizeGatewayThroughput(gatewayThroughput, summary);
  return summary;
}

function perUnit(stats: readonly StoreCallStats[], units: number): { calls: Record<string, number>; syncUs: Record<string, number>; totalSyncUs: number } {
  const calls: Record<string, number> = {};
  const syncUs: Record<string, number> = {};
  for (const s of stats) {
    for (const [m, n] of Object.entries(s.calls)) calls[m] = (calls[m] ?? 0) + n / units;
    for (const [m, ms] of Object.entries(s.syncMs)) syncUs[m] = (syncUs[m] ?? 0) + (ms * 1000) / units;
  }
  return { calls, syncUs, totalSyncUs: Object.values(syncUs).reduce((a, b) => a + b, 0) };
}

function summarizeGatewayRunsync(r: GatewayRunsyncResult, summary: BenchSummary): void {
  const echoBlocks = r.blocks[RUNSYNC_ECHO]!;
  const echoAll = echoBlocks.flatMap((b) => b.samplesMs);
  const echoP50s = echoBlocks.map((b) => median(b.samplesMs));
  const echoP99s = echoBlocks.map((b) => percentile(b.samplesMs, 99));
  const relayBlocks = r.blocks[RUNSYNC_RELAY] ?? [];
  const relayAll = relayBlocks.flatMap((b) => b.samplesMs);
  const relayP50s = relayBlocks.map((b) => median(b.samplesMs));
  const relayP99s = relayBlocks.map((b) => percentile(b.samplesMs, 99));
  const variants: NonNullable<BenchSummary['gatewayRunsync']>['variants'] = {};
  for (const v of r.variants) {
    const blocks = r.blocks[v.label]!;
    const all = blocks.flatMap((b) => b.samplesMs);
    const p50s = blocks.map((b) => median(b.samplesMs));
    const p99s = blocks.map((b) => percentile(b.samplesMs, 99));
    const isEcho = v.label === RUNSYNC_ECHO;
    const stores = blocks.map((b) => b.store).filter((s): s is StoreCallStats => s !== null);
    const requests = r.requestsPerRound * blocks.length;
    const store = stores.length > 0 ? perUnit(stores, requests) : null;
    const optional = (xs: (number | null)[]) => (xs.every((x) => x !== null) && xs.length > 0 ? median(xs as number[]) : null);
    variants[v.label] = {
      latencyMs: latencySummary(all),
      perRoundP50: spread(p50s),
      perRoundP99: spread(p99s),
      vsEchoP50: isEcho ? null : { ofMedians: median(all) / median(echoAll), perRound: spread(pairwiseRatios(p50s, echoP50s)) },
      vsEchoP99: isEcho ? null : { ofMedians: percentile(all, 99) / percentile(echoAll, 99), perRound: spread(pairwiseRatios(p99s, echoP99s)) },
      vsRelayP50: v.kind !== 'gateway' || relayAll.length === 0 ? null : { ofMedians: median(all) / median(relayAll), perRound: spread(pairwiseRatios(p50s, relayP50s)) },
      vsRelayP99: v.kind !== 'gateway' || relayAll.length === 0 ? null : { ofMedians: percentile(all, 99) / percentile(relayAll, 99), perRound: spread(pairwiseRatios(p99s, relayP99s)) },
      benchCpuUsPerRequest: median(blocks.map((b) => b.benchCpuUsPerRequest)),
      workerCpuUsPerRequest: optional(blocks.map((b) => b.workerCpuUsPerRequest)),
      postgresCpuUsPerRequest: optional(blocks.map((b) => b.postgresCpuUsPerRequest)),
      storeCallsPerRequest: store?.calls ?? null,
      storeSyncUsPerRequestByMethod: store?.syncUs ?? null,
      storeSyncUsPerRequest: store?.totalSyncUs ?? null,
      badAnswers: r.badAnswers[v.label] ?? 0,
      warnLines: r.logLines[v.label]?.warn ?? 0,
      errorLines: r.logLines[v.label]?.error ?? 0,
    };
  }
  summary.gatewayRunsync = { rounds: r.rounds, requestsPerRound: r.requestsPerRound, warmupRequests: r.warmupRequests, variants, skipped: r.skipped };
  const head = variants[RUNSYNC_HEADLINE];
  const echo = variants[RUNSYNC_ECHO]!;
  const relay = variants[RUNSYNC_RELAY];
  if (head?.vsEchoP50) {
    const floor =
      relay?.vsEchoP50 && head.vsRelayP50
        ? `; relay floor p50 ${fmt(relay.latencyMs.median, 3)} ms = ×${fmt(relay.vsEchoP50.ofMedians, 2)} echo (per round ${ratioSpread(relay.vsEchoP50)}), kiln ×${fmt(head.vsRelayP50.ofMedians, 2)} of it (per round ${ratioSpread(head.vsRelayP50)})`
        : '';
    summary.targets.push({
      name: 'runsync round trip p50 (gateway, SQLite, no-op worker)',
      goal: `≤ ${TARGETS.runsyncVsEchoP50}× node:http echo (same run)`,
      measured: `×${fmt(head.vsEchoP50.ofMedians, 2)} echo (per round ${ratioSpread(head.vsEchoP50)}); p50 ${fmt(head.latencyMs.median, 3)} vs ${fmt(echo.latencyMs.median, 3)} ms, p99 ${fmt(head.latencyMs.p99, 3)} vs ${fmt(echo.latencyMs.p99, 3)} ms${floor}`,
      met: head.vsEchoP50.ofMedians <= TARGETS.runsyncVsEchoP50,
    });
  }
}

function summarizeGatewayThroughput(r: GatewayThroughputResult, summary: BenchSummary): void {
  const floors: NonNullable<BenchSummary['gatewayThroughput']>['floors'] = {};
  for (const f of r.floorVariants) {
    const runs = r.floorRuns[f.label]!;
    const jobs = r.jobs * runs.length;
    const serverCpuUsPerJob = median(runs.map((x) => x.serverCpuUsPerJob));
    const workerCpuUsPerJob = median(runs.map((x) => x.workerCpuUsPerJob));
    floors[f.label] = {
      workers: f.workers,
      concurrency: f.concurrency,
      jobsPerSecond: spread(runs.map((x) => x.jobsPerSecond)),
      serverCpuUsPerJob,
      workerCpuUsPerJob,
      coresBusy: median(runs.map((x) => (x.jobsPerSecond * (x.serverCpuUsPerJob + x.workerCpuUsPerJob)) / 1e6)),
      cpuBoundJobsPerSecond: (r.cores * 1e6) / (serverCpuUsPerJob + workerCpuUsPerJob),
      jobsPerTake: jobs / Math.max(1, runs.reduce((n, x) => n + x.takesWithJobs, 0)),
      emptyTakesPerJob: runs.reduce((n, x) => n + x.emptyTakes, 0) / jobs,
      enqueuePerSecond: spread(runs.map((x) => x.enqueuePerSecond)),
      enqueueCpuUsPerJob: median(runs.map((x) => x.enqueueCpuUsPerJob)),
      warnLines: runs.reduce((n, x) => n + x.warnLines, 0),
      errorLines: runs.reduce((n, x) => n + x.errorLines, 0),
    };
  }
  const variants: NonNullable<BenchSummary['gatewayThroughput']>['variants'] = {};
  for (const v of r.variants) {
    const runs = r.runs[v.label]!;
    const store = perUnit(runs.map((x) => x.store), r.jobs * runs.length);
    const claims = runs.reduce((n, x) => n + x.claims, 0);
    const optional = (xs: (number | null)[]) => (xs.every((x) => x !== null) && xs.length > 0 ? median(xs as number[]) : null);
    const gatewayCpuUsPerJob = median(runs.map((x) => x.gatewayCpuUsPerJob));
    const storeSyncUsPerJob = median(runs.map((x) => x.storeSyncUsPerJob));
    const floor = floorLabel(v.workers, v.concurrency);
    variants[v.label] = {
      store: v.store,
      workers: v.workers,
      concurrency: v.concurrency,
      jobsPerSecond: spread(runs.map((x) => x.jobsPerSecond)),
      gatewayCpuUsPerJob,
      storeSyncUsPerJob,
      storeShare: median(runs.map((x) => x.storeSyncUsPerJob / x.gatewayCpuUsPerJob)),
      workerCpuUsPerJob: median(runs.map((x) => x.workerCpuUsPerJob)),
      postgresCpuUsPerJob: optional(runs.map((x) => x.postgresCpuUsPerJob)),
      jobsPerTake: (r.jobs * runs.length) / Math.max(1, claims),
      emptyClaimsPerJob: runs.reduce((n, x) => n + x.emptyClaims, 0) / (r.jobs * runs.length),
      storeCallsPerJob: store.calls,
      storeSyncUsPerJobByMethod: store.syncUs,
      enqueuePerSecond: spread(runs.map((x) => x.enqueuePerSecond)),
      enqueueCpuUsPerJob: median(runs.map((x) => x.enqueueCpuUsPerJob)),
      enqueuePostgresCpuUsPerJob: optional(runs.map((x) => x.enqueuePostgresCpuUsPerJob)),
      warnLines: runs.reduce((n, x) => n + x.warnLines, 0),
      errorLines: runs.reduce((n, x) => n + x.errorLines, 0),
      floor,
      vsFloor: ratio(
        runs.map((x) => x.jobsPerSecond),
        r.floorRuns[floor]!.map((x) => x.jobsPerSecond),
      ),
    };
  }
  const cpuPerJob: NonNullable<BenchSummary['gatewayThroughput']>['cpuPerJob'] = {};
  for (const store of [...new Set(r.variants.map((v) => v.store))]) {
    const runs = r.variants.filter((v) => v.store === store).flatMap((v) => r.runs[v.label]!);
    const optional = (xs: (number | null)[]) => (xs.every((x) => x !== null) && xs.length > 0 ? median(xs as number[]) : null);
    cpuPerJob[store] = {
      drainUs: median(runs.map((x) => x.gatewayCpuUsPerJob)),
      enqueueUs: median(runs.map((x) => x.enqueueCpuUsPerJob)),
      storeShare: median(runs.map((x) => x.storeSyncUsPerJob / x.gatewayCpuUsPerJob)),
      postgresUs: optional(runs.map((x) => x.postgresCpuUsPerJob)),
      enqueuePostgresUs: optional(runs.map((x) => x.enqueuePostgresCpuUsPerJob)),
    };
  }
  summary.gatewayThroughput = { jobs: r.jobs, warmupJobs: r.warmupJobs, rounds: r.rounds, enqueueParallelism: r.enqueueParallelism, variants, cores: r.cores, floors, cpuPerJob, skipped: r.skipped };
  const four = Object.entries(variants).filter(([, v]) => v.store === 'sqlite' && v.workers === 4);
  if (four.length > 0) {
    const [bestLabel, best] = four.reduce((a, b) => (b[1].jobsPerSecond.median > a[1].jobsPerSecond.median ? b : a));
    const floor = floors[best.floor]!;
    const goal = TARGETS.gatewayJobsPerSecond4wSqlite;
    summary.targets.push({
      name: 'gateway drain, 4 workers, SQLite',
      goal: `≥ ${goal.toLocaleString('en-US')} jobs/s`,
      measured:
        four.map(([label, v]) => `${label.replace('SQLite 4w ', '')}: ${fmt(v.jobsPerSecond.median, 0)}/s [${range(v.jobsPerSecond, 0)}]`).join('; ') +
        ` (best: ${bestLabel}); ${best.floor.replace('in-memory ', '')}: ${fmt(floor.jobsPerSecond.median, 0)}/s [${range(floor.jobsPerSecond, 0)}]` +
        ` (${floor.jobsPerSecond.median >= goal ? 'meets' : 'itself below'} the goal; its CPU per job caps it at ${fmt(floor.cpuBoundJobsPerSecond, 0)}/s on ${r.cores} cores),` +
        ` kiln ×${fmt(best.vsFloor.ofMedians, 2)} of it (per round ${ratioSpread(best.vsFloor)})`,
      met: best.jobsPerSecond.median >= goal,
    });
  }
}

/** The summary as a readable plain-text report. */
export function formatReport(summary: BenchSummary, header: string): string {
  const out: string[] = [header, ''];
  const c = summary.coldStart;
  if (c) {
    out.push(`Cold start — clean env (PATH, HOME, RUNPOD_*), ${c.rounds} rounds interleaved (+ warm-up), ms`);
    const ofMedians = (r: RatioSummary | null) => (r === null ? '—' : `×${fmt(r.ofMedians, 2)}`);
    const perRound = (r: RatioSummary | null) => (r === null ? '—' : ratioSpread(r));
    out.push(
      table(
        ['variant', 'measures', 'median', 'min–max', '× node -e 0', '× node -e 0 per round: median [min–max]', '× floor loop', '× floor loop per round: median [min–max]'],
        COLD_START_VARIANTS.map((name) => {
          const v = c.variants[name];
          return [name === c.headline ? `${name} *` : name, v.measures, fmt(v.ms.median, 1), range(v.ms, 1), ofMedians(v.vsNode), perRound(v.vsNode), ofMedians(v.vsFloor), perRound(v.vsFloor)];
        }),
      ),
    );
    out.push(
      '  × columns: ratio of medians, then the median [min–max] of per-round ratios (same round, order rotated)',
      `  * the target's figure: ${c.variants[c.headline].command}, the single-file esbuild bundle a thin deploy image ships;`,
      `    ${c.variants['echo worker (tsc output)'].command} is the unbundled ESM tsc output (valibot and @kiln/worker resolved from node_modules)`,
      '',
    );
  }
  const l = summary.takeLatency;
  if (l) {
    out.push(`One job at a time through a parked take — ${l.jobs} jobs each (+ ${l.warmupJobs} warm-up), kiln c=1 and floor loop alternating, ms`);
    const row = (name: string, s: LatencySummary) => [name, fmt(s.median, 3), fmt(s.p90, 3), fmt(s.p99, 3), fmt(s.min, 3), fmt(s.max, 3)];
    const pair = (name: string, key: LatencySeriesName) => [row(`kiln  ${name}`, l.kiln[key]), row(`floor ${name}`, l.floor[key])];
    out.push(
      table(
        ['interval', 'p50', 'p90', 'p99', 'min', 'max'],
        [
          ...pair('take answer → handler start (≤, from enqueue() call)', 'takeToHandlerMs'),
          ...pair('take answer → handler start (≥, from enqueue() return)', 'takeToHandlerLowerMs'),
          ...pair('take answeredAt → handler start', 'takeToHandlerAnsweredAtMs'),
          ...pair('handler start → job-done arrival', 'handlerToDoneMs'),
          ...pair('enqueue → job-done arrival', 'enqueueToDoneMs'),
          ...pair('job-done arrival → next job-take arrival', 'doneToNextTakeMs'),
          row('enqueue() call itself (kiln side)', l.kiln.enqueueCallMs),
        ],
      ),
    );
    const a = PERF_ANCHORS;
    out.push(
      '  the parked take is answered (written to the socket) inside enqueue(): the true interval lies between the ≥ and ≤ rows;',
      '  answeredAt is stamped in res.end()\'s callback, which can run after the worker already reacted (negative minimums)',
      `  enqueue → job-done, kiln / floor (same run): p50 ×${fmt(l.enqueueToDoneP50Ratio, 2)}, p99 ×${fmt(l.enqueueToDoneP99Ratio, 2)}`,
      `  for reference (other runs, absolute): runpod-python p50 ${a.runpodPythonEnqueueToDone.p50} / p99 ${a.runpodPythonEnqueueToDone.p99} ms (${a.runpodPythonEnqueueToDone.ref}); Node loop p50 ${a.nodeLoopEnqueueToDone.p50} / p99 ${a.nodeLoopEnqueueToDone.p99} ms (${a.nodeLoopEnqueueToDone.ref})`,
      `  clock check: take → handler start on timeOrigin+now() clocks differs from CLOCK_MONOTONIC by ${fmt(l.kiln.takeToHandlerWallMs.median - l.kiln.takeToHandlerMs.median, 3)} ms (kiln), ${fmt(l.floor.takeToHandlerWallMs.median - l.floor.takeToHandlerMs.median, 3)} ms (floor) at p50`,
      `  requests per job: kiln ${perJob(l.requestsPerJob.kiln)}; floor ${perJob(l.requestsPerJob.floor)}`,
      `  worker log lines: kiln ${l.logLines.kiln.warn} WARN / ${l.logLines.kiln.error} ERROR`,
      '',
    );
  }
  const t = summary.throughput;
  if (t) {
    out.push(`Throughput — ${t.jobs} no-op jobs queued before start, first take → last job-done, ${t.rounds} rounds (order rotated)`);
    out.push(
      table(
        ['variant', 'jobs/s median', 'min–max', '× floor c=1 (of medians)', '× per round: median [min–max]', 'takes/job', 'worker CPU µs/job', 'server CPU µs/job', 'WARN/ERROR lines'],
        Object.entries(t.variants).map(([label, v]) => [
          label,
          fmt(v.jobsPerSecond.median, 0),
          range(v.jobsPerSecond, 0),
          label === 'floor c=1' ? '—' : `×${fmt(v.vsFloorC1.ofMedians, 2)}`,
          label === 'floor c=1' ? '—' : ratioSpread(v.vsFloorC1),
          fmt(v.takesPerJob, 3),
          v.workerCpuUsPerJob === undefined ? '?' : fmt(v.workerCpuUsPerJob, 0),
          fmt(v.serverCpuUsPerJob, 0),
          `${v.warnLines}/${v.errorLines}`,
        ]),
      ),
    );
    out.push(`  for reference (other runs): Node loop c=1 ${PERF_ANCHORS.nodeLoopJobsPerSecond.median} jobs/s (${PERF_ANCHORS.nodeLoopJobsPerSecond.ref})`, '');
  }
  const g = summary.gatewayRunsync;
  if (g) {
    out.push(
      `Gateway /runsync round trip — in-process gateway, 1 warm no-op worker (esbuild bundle, c=1), one keep-alive node:http client, sequential,`,
      `  ${g.rounds} rounds × ${g.requestsPerRound} requests per variant (+ ${g.warmupRequests} warm-up each), order rotated, ms`,
    );
    const echo = g.variants[RUNSYNC_ECHO]!;
    out.push(
      table(
        ['variant', 'p50', 'p90', 'p99', 'min', 'max', '× echo p50', '× echo p50 per round', '× echo p99', '× relay p50', '× relay p50 per round', '× relay p99', 'bench CPU µs/req', 'worker CPU µs/req', 'PG server CPU µs/req', 'store µs/req', 'bad', 'WARN/ERROR'],
        Object.entries(g.variants).map(([label, v]) => [
          label === RUNSYNC_HEADLINE ? `${label} *` : label,
          fmt(v.latencyMs.median, 3),
          fmt(v.latencyMs.p90, 3),
          fmt(v.latencyMs.p99, 3),
          fmt(v.latencyMs.min, 3),
          fmt(v.latencyMs.max, 3),
          v.vsEchoP50 ? `×${fmt(v.vsEchoP50.ofMedians, 2)}` : '—',
          v.vsEchoP50 ? ratioSpread(v.vsEchoP50) : '—',
          v.vsEchoP99 ? `×${fmt(v.vsEchoP99.ofMedians, 2)}` : '—',
          v.vsRelayP50 ? `×${fmt(v.vsRelayP50.ofMedians, 2)}` : '—',
          v.vsRelayP50 ? ratioSpread(v.vsRelayP50) : '—',
          v.vsRelayP99 ? `×${fmt(v.vsRelayP99.ofMedians, 2)}` : '—',
          fmt(v.benchCpuUsPerRequest, 0),
          v.workerCpuUsPerRequest === null ? '—' : fmt(v.workerCpuUsPerRequest, 0),
          v.postgresCpuUsPerRequest === null ? '—' : fmt(v.postgresCpuUsPerRequest, 0),
          v.storeSyncUsPerRequest === null ? '—' : fmt(v.storeSyncUsPerRequest, 0),
          String(v.badAnswers),
          v.vsEchoP50 ? `${v.warnLines}/${v.errorLines}` : '—',
        ]),
      ),
    );
    const a = PERF_ANCHORS;
    out.push(
      '  * the target\'s figure (SQLite is the gateway\'s default store); × columns: pooled percentile / the echo\'s (relay\'s) pooled percentile;',
      '    per round: median [min–max] of per-round p50 ratios',
      `  ${RUNSYNC_RELAY}: the runsync's three HTTP exchanges and nothing else: node:http in this process, an in-memory queue, the same`,
      '    no-op worker bundle parked on job-take; POST /runsync hands it the job and is answered when its job-done arrives (no store, no hono)',
      '  bench CPU: this process (client + echo server, relay or gateway); store µs: wall time inside synchronous store calls (SQLite: all its work; PostgreSQL: query building only)',
    );
    const relay = g.variants[RUNSYNC_RELAY];
    if (relay?.vsEchoP50) {
      out.push(
        `  three hops cost: relay floor p50 ×${fmt(relay.vsEchoP50.ofMedians, 2)} echo (per round ${ratioSpread(relay.vsEchoP50)}) — ` +
          (relay.vsEchoP50.ofMedians > TARGETS.runsyncVsEchoP50 ? `above the ${TARGETS.runsyncVsEchoP50}× target before any gateway work` : `within the ${TARGETS.runsyncVsEchoP50}× target`),
      );
    }
    for (const [label, v] of Object.entries(g.variants)) {
      if (v.storeCallsPerRequest && v.storeSyncUsPerRequestByMethod) {
        out.push(`  store calls per request, ${label}: ${largestFirst(v.storeCallsPerRequest)}; sync µs per request: ${largestFirst(v.storeSyncUsPerRequestByMethod, 0)}`);
      }
    }
    out.push(
      `  per-round p50 spread: echo ${range(echo.perRoundP50, 3)} ms` +
        Object.entries(g.variants)
          .filter(([label]) => label !== RUNSYNC_ECHO)
          .map(([label, v]) => `; ${label} ${range(v.perRoundP50, 3)} ms`)
          .join(''),
      `  for reference (other runs): node:http echo, Node client p50 ${a.echoNodeClientP50.p50} / p99 ${a.echoNodeClientP50.p99} ms (${a.echoNodeClientP50.ref}); runpod-python /runsync ×${a.runpodPythonRunsyncVsEcho.median} [${a.runpodPythonRunsyncVsEcho.min}–${a.runpodPythonRunsyncVsEcho.max}] of it, handler inline (${a.runpodPythonRunsyncVsEcho.ref})`,
      ...g.skipped.map((s) => `  skipped: ${s}`),
      '',
    );
  }
  const gt = summary.gatewayThroughput;
  if (gt) {
    out.push(
      `Gateway drain — ${gt.jobs} no-op jobs queued through /run (${gt.enqueueParallelism} parallel) with takes held, then released: first take → last job completed;`,
      `  fresh gateway + store per run, N warm workers (min = max = N, after ${gt.warmupJobs} warm-up jobs), ${gt.rounds} rounds (order rotated); CPU columns µs per job over the drain`,
    );
    out.push(
      table(
        ['variant', 'jobs/s median', 'min–max', '× floor', '× floor per round', 'gateway CPU', 'store (share)', 'PG server CPU', 'worker CPU', 'jobs/take', '/run jobs/s', '/run CPU µs/job', 'WARN/ERROR'],
        Object.entries(gt.variants).map(([label, v]) => [
          label,
          fmt(v.jobsPerSecond.median, 0),
          range(v.jobsPerSecond, 0),
          `×${fmt(v.vsFloor.ofMedians, 2)}`,
          ratioSpread(v.vsFloor),
          fmt(v.gatewayCpuUsPerJob, 0),
          `${fmt(v.storeSyncUsPerJob, 0)} (${fmt(v.storeShare * 100, 0)} %)`,
          v.postgresCpuUsPerJob === null ? '—' : fmt(v.postgresCpuUsPerJob, 0),
          fmt(v.workerCpuUsPerJob, 0),
          fmt(v.jobsPerTake, 2),
          fmt(v.enqueuePerSecond.median, 0),
          fmt(v.enqueueCpuUsPerJob, 0),
          `${v.warnLines}/${v.errorLines}`,
        ]),
      ),
    );
    out.push(
      '  gateway CPU: process.cpuUsage() of the bench process, which during the drain runs only the gateway; store: wall time inside synchronous',
      '  store calls (SQLite: all of its work; PostgreSQL: query building only, the server\'s own CPU is "PG server CPU", every postgres process)',
      '  /run CPU: this process while queueing, gateway + the in-process HTTP client',
      '  × floor: jobs/s ÷ the in-memory floor of the same workers and concurrency (table below); per round: median [min–max] of pairwise ratios',
    );
    for (const label of Object.keys(gt.variants).filter((l) => / 4w c=8$/.test(l))) {
      const v = gt.variants[label]!;
      out.push(`  store calls per job, ${label}: ${largestFirst(v.storeCallsPerJob)}; sync µs per job: ${largestFirst(v.storeSyncUsPerJobByMethod, 0)}`);
    }
    out.push(...gt.skipped.map((s) => `  skipped: ${s}`), '');
    out.push(
      'In-memory floor — the same N worker processes (bundle, command, env) on one node:http job server in this process (in-memory queue,',
      '  no store, no hono): the same warm-up and 1000 jobs through its /run, takes held, then released; first take → last job-done;',
      '  in the same rounds as the gateway variants; CPU columns µs per job over the drain',
    );
    out.push(
      table(
        ['floor', 'jobs/s median', 'min–max', 'server CPU', 'worker CPU', 'server + workers', 'cores busy', 'CPU-bound jobs/s', 'jobs/take', 'empty takes/job', '/run jobs/s', '/run CPU µs/job', 'WARN/ERROR'],
        Object.entries(gt.floors).map(([label, f]) => [
          label,
          fmt(f.jobsPerSecond.median, 0),
          range(f.jobsPerSecond, 0),
          fmt(f.serverCpuUsPerJob, 0),
          fmt(f.workerCpuUsPerJob, 0),
          fmt(f.serverCpuUsPerJob + f.workerCpuUsPerJob, 0),
          fmt(f.coresBusy, 2),
          fmt(f.cpuBoundJobsPerSecond, 0),
          fmt(f.jobsPerTake, 2),
          fmt(f.emptyTakesPerJob, 3),
          fmt(f.enqueuePerSecond.median, 0),
          fmt(f.enqueueCpuUsPerJob, 0),
          `${f.warnLines}/${f.errorLines}`,
        ]),
      ),
    );
    out.push(
      '  server CPU: process.cpuUsage() of the bench process, which during the drain runs only the floor server; worker CPU: the N workers, /proc',
      '  server + workers: all the CPU a job costs in the floor (the workers\' share is paid whatever serves them); cores busy: jobs/s × that;',
      `  CPU-bound jobs/s: ${gt.cores} cores ÷ that, the rate if server and workers kept every core busy (${gt.cores} = os.availableParallelism())`,
      '',
    );
    out.push('Gateway CPU per job — medians over every run of the store above, µs');
    out.push(
      table(
        ['store', 'drain (take + done + supervision)', 'store share of drain', '/run enqueue (incl. client)', 'PG server, drain', 'PG server, /run'],
        Object.entries(gt.cpuPerJob).map(([store, c]) => [
          store === 'sqlite' ? 'SQLite' : 'PostgreSQL',
          fmt(c.drainUs, 0),
          `${fmt(c.storeShare * 100, 0)} %`,
          fmt(c.enqueueUs, 0),
          c.postgresUs === null ? '—' : fmt(c.postgresUs, 0),
          c.enqueuePostgresUs === null ? '—' : fmt(c.enqueuePostgresUs, 0),
        ]),
      ),
    );
    out.push(`  for reference (other runs): better-sqlite3 insert + claim + complete ${PERF_ANCHORS.sqliteUsPerJob.median} µs/job (${PERF_ANCHORS.sqliteUsPerJob.ref})`, '');
  }
  if (summary.targets.length > 0) {
    out.push('Targets');
    out.push(table(['target', 'goal', 'measured', 'verdict'], summary.targets.map((v) => [v.name, v.goal, v.measured, v.met ? 'MET' : 'MISSED'])));
  }
  return out.join('\n');
}

function perJob(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([route, n]) => `${route} ${fmt(n, 2)}`)
    .join(', ');
}

/** `name n` pairs, largest first, zeros left out. */
function largestFirst(counts: Record<string, number>, digits = 2): string {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name} ${fmt(n, digits)}`)
    .join(', ');
}

function fmt(n: number, digits: number): string {
  return n.toFixed(digits);
}

function range(s: Spread, digits: number): string {
  return `${fmt(s.min, digits)}–${fmt(s.max, digits)}`;
}

function ratioSpread(r: RatioSummary): string {
  return `×${fmt(r.perRound.median, 2)} [${fmt(r.perRound.min, 2)}–${fmt(r.perRound.max, 2)}]`;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => '  ' + cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
