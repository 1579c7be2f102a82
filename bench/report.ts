/**
 * Turns raw benchmark results into figures (medians, spreads, same-run ratios, target verdicts)
 * and prints them as a plain-text table.
 */
import { COLD_START_FLOOR, COLD_START_HEADLINE, COLD_START_NODE, COLD_START_VARIANTS, type ColdStartResult, type ColdStartVariant } from './cold-start.ts';
import type { ThroughputResult } from './job-throughput.ts';
import { latencySummary, median, pairwiseRatios, spread, type LatencySummary, type Spread } from './stats.ts';
import { LATENCY_SERIES, type LatencySeriesName, type TakeLatencyResult } from './take-latency.ts';

/** The targets. */
export const TARGETS = {
  /** Take → handler start p50, ms. */
  takeToHandlerP50Ms: 1,
  /** No-op jobs/s, one worker at concurrency 8. */
  jobsPerSecondAtC8: 1000,
  /** Spawn → first job-take of the echo worker bundle, as a multiple of `node -e 0`. */
  coldStartVsNode: 1.5,
} as const;

/** Reference figures from PERF.md (other runs: compared in absolute terms only). */
export const PERF_ANCHORS = {
  runpodPythonEnqueueToDone: { p50: 54, p99: 104, ref: 'PERF.md 3a' },
  nodeLoopEnqueueToDone: { p50: 1.3, p99: 3.5, ref: 'PERF.md 3e' },
  nodeLoopJobsPerSecond: { median: 1170, ref: 'PERF.md 3e' },
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
  targets: TargetVerdict[];
}

function ratio(a: readonly number[], b: readonly number[]): RatioSummary {
  return { ofMedians: median(a) / median(b), perRound: spread(pairwiseRatios(a, b)) };
}

/** Computes the figures and target verdicts from whichever benchmarks ran. */
export function summarize(results: { coldStart?: ColdStartResult; takeLatency?: TakeLatencyResult; throughput?: ThroughputResult }): BenchSummary {
  const summary: BenchSummary = { targets: [] };
  const { coldStart, takeLatency, throughput } = results;
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
  return summary;
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
