/**
 * kiln's benchmark suite: worker cold start, take → handler start latency, and no-op job
 * throughput against a loopback RunPod job server, each beside a floor measured in the same run;
 * then the gateway: `/runsync` round trip beside a bare node:http echo, and jobs/s draining a
 * queued batch with 1 and 4 workers on SQLite and PostgreSQL, with gateway CPU per job.
 * Prints a table and writes every figure and raw sample to `bench/results/<date-time>.json`.
 *
 * @example
 * npm run bench                       # full run (~1.5 min)
 * npm run bench -- --quick            # smoke run
 * npm run bench -- --only=throughput
 * npm run bench -- --only=gateway-runsync,gateway-throughput
 * npm run bench -- --only=stream-latency   # chunk POST → client: SSE, long-poll, runpod-sdk
 * npm run bench -- --only=dashboard        # jobs API with 100,000 jobs; completion → row in Chromium
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessGroup } from './child-process.ts';
import { measureColdStart, type ColdStartResult } from './cold-start.ts';
import { readBenchConfig, type BenchConfig } from './config.ts';
import { measureThroughput, type ThroughputResult } from './job-throughput.ts';
import { killGatewayWorkers, prepareGatewayBench, type GatewayBenchSetup } from './gateway-harness.ts';
import { measureGatewayRunsync, type GatewayRunsyncResult } from './gateway-runsync.ts';
import { measureGatewayThroughput, type GatewayThroughputResult } from './gateway-throughput.ts';
import { formatModelsPull, measureModelsPull, summarizeModelsPull, type ModelsPullResult } from './models-pull.ts';
import { formatExampleTts, measureExampleTts, type ExampleTtsResult } from './example-tts.ts';
import { formatExampleAvatar, measureExampleAvatar, type ExampleAvatarResult } from './example-avatar.ts';
import { formatExampleVfx, measureExampleVfx, type ExampleVfxResult } from './example-vfx.ts';
import { formatReport, summarize } from './report.ts';
import { formatDashboard, measureDashboard, summarizeDashboard, type DashboardBenchResult } from './dashboard.ts';
import { formatStreamLatency, measureStreamLatency, summarizeStreamLatency, type StreamLatencyResult } from './stream-latency.ts';
import { measureTakeLatency, type TakeLatencyResult } from './take-latency.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');

async function main(config: BenchConfig, processes: ProcessGroup): Promise<void> {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const t0 = performance.now();
  const progress = (text: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${text}\n`);
  const results: {
    coldStart?: ColdStartResult;
    takeLatency?: TakeLatencyResult;
    throughput?: ThroughputResult;
    gatewayRunsync?: GatewayRunsyncResult;
    gatewayThroughput?: GatewayThroughputResult;
    streamLatency?: StreamLatencyResult;
    modelsPull?: ModelsPullResult;
    exampleTts?: ExampleTtsResult;
    exampleAvatar?: ExampleAvatarResult;
    exampleVfx?: ExampleVfxResult;
    dashboard?: DashboardBenchResult;
  } = {};

  if (config.only.includes('cold-start')) {
    progress(`cold start: ${config.coldStart.rounds} rounds`);
    results.coldStart = await measureColdStart(config, processes);
  }
  if (config.only.includes('take-latency')) {
    progress(`take latency: ${config.takeLatency.jobs} + ${config.takeLatency.warmupJobs} warm-up jobs per worker`);
    results.takeLatency = await measureTakeLatency(config, processes, (n) => n % 500 === 0 && progress(`  ${n} jobs`));
  }
  if (config.only.includes('throughput')) {
    progress(`throughput: ${config.throughput.jobs} jobs, ${config.throughput.rounds} rounds`);
    results.throughput = await measureThroughput(config, processes, (round, run, variant) =>
      progress(`  round ${round + 1} ${variant.label}: ${run.jobsPerSecond.toFixed(0)} jobs/s`),
    );
  }

  if (config.only.includes('gateway-runsync') || config.only.includes('gateway-throughput')) {
    const setup: GatewayBenchSetup = await prepareGatewayBench(config);
    try {
      if (setup.postgres.available === false) progress(`gateway: ${setup.postgres.reason}; PostgreSQL variants skipped`);
      if (config.only.includes('gateway-runsync')) {
        const { rounds, requestsPerRound, warmupRequests } = config.gatewayRunsync;
        progress(`gateway runsync: ${rounds} rounds × ${requestsPerRound} requests per variant (+ ${warmupRequests} warm-up)`);
        results.gatewayRunsync = await measureGatewayRunsync(config, setup, progress);
      }
      if (config.only.includes('gateway-throughput')) {
        const { jobs, rounds } = config.gatewayThroughput;
        progress(`gateway throughput: ${jobs} jobs per run, ${rounds} rounds`);
        results.gatewayThroughput = await measureGatewayThroughput(config, setup, (round, run, variant) =>
          progress(`  round ${round + 1} ${variant.label}: ${run.jobsPerSecond.toFixed(0)} jobs/s, gateway ${run.gatewayCpuUsPerJob.toFixed(0)} µs CPU/job`),
          (round, run, variant) =>
            progress(`  round ${round + 1} ${variant.label}: ${run.jobsPerSecond.toFixed(0)} jobs/s, server ${run.serverCpuUsPerJob.toFixed(0)} µs CPU/job, workers ${run.workerCpuUsPerJob.toFixed(0)}`),
        );
      }
    } finally {
      setup.cleanup();
    }
  }

  if (config.only.includes('stream-latency')) {
    const { rounds, chunksPerJob } = config.streamLatency;
    progress(`stream latency: ${rounds} rounds × ${chunksPerJob} chunks per client`);
    results.streamLatency = await measureStreamLatency(config, progress);
  }

  if (config.only.includes('models-pull')) results.modelsPull = await measureModelsPull(config, processes, progress);

  if (config.only.includes('example-tts')) {
    progress(`example-tts: ${config.exampleTts.rounds} cold starts, ${config.exampleTts.warmJobs} warm jobs`);
    results.exampleTts = await measureExampleTts(config, processes, progress);
  }
  if (config.only.includes('example-avatar')) {
    progress(`example-avatar: ${config.exampleAvatar.rounds} cold starts, ${config.exampleAvatar.warmJobs} warm jobs`);
    results.exampleAvatar = await measureExampleAvatar(config, processes, progress);
  }
  if (config.only.includes('example-vfx')) {
    progress(`example-vfx: ${config.exampleVfx.rounds} cold starts, ${config.exampleVfx.warmJobs} warm jobs`);
    results.exampleVfx = await measureExampleVfx(config, processes, progress);
  }

  if (config.only.includes('dashboard')) results.dashboard = await measureDashboard(config, progress);

  const summary = { ...summarize(results), ...(results.streamLatency ? { streamLatency: summarizeStreamLatency(results.streamLatency) } : {}) };
  const loadAfter = os.loadavg();
  const durationS = (performance.now() - t0) / 1000;
  const cpus = os.cpus();
  const header = [
    `kiln bench — ${startedAt.toISOString()}${config.quick ? ' (--quick: below the issue’s sample sizes)' : ''}`,
    `node ${process.version}, ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, load avg ${loadBefore[0]!.toFixed(2)} → ${loadAfter[0]!.toFixed(2)}, ${durationS.toFixed(0)} s`,
  ].join('\n');
  process.stdout.write(formatReport(summary, header) + '\n');
  if (summary.streamLatency && results.streamLatency) process.stdout.write(formatStreamLatency(summary.streamLatency, results.streamLatency) + '\n');
  if (results.modelsPull) {
    Object.assign(summary, { modelsPull: summarizeModelsPull(results.modelsPull) });
    process.stdout.write(formatModelsPull(results.modelsPull) + '\n');
  }
  if (results.exampleTts) process.stdout.write(formatExampleTts(results.exampleTts) + '\n');
  if (results.exampleAvatar) process.stdout.write(formatExampleAvatar(results.exampleAvatar) + '\n');
  if (results.exampleVfx) process.stdout.write(formatExampleVfx(results.exampleVfx) + '\n');
  if (results.dashboard) {
    const dashboard = summarizeDashboard(results.dashboard);
    Object.assign(summary, { dashboard });
    process.stdout.write(formatDashboard(dashboard) + '\n');
  }

  const dir = path.join(config.repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${startedAt.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
  const meta = { startedAt: startedAt.toISOString(), durationS, node: process.version, cpus: cpus.map((c) => c.model), loadBefore, loadAfter, argv: process.argv.slice(2) };
  // A database password in KILN_TEST_DATABASE_URL stays out of the file.
  const savedConfig = { ...config, gateway: { ...config.gateway, postgresUrl: config.gateway.postgresUrl.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@') } };
  writeFileSync(file, JSON.stringify({ meta, config: savedConfig, summary, raw: roundDeep(results) }, null, 1) + '\n');
  process.stdout.write(`\nresults: ${path.relative(process.cwd(), file)}\n`);
}

/** Raw samples at µs precision keep the file small. */
function roundDeep(value: unknown): unknown {
  if (typeof value === 'number') return Math.round(value * 1000) / 1000;
  if (Array.isArray(value)) return value.map(roundDeep);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, roundDeep(v)]));
  return value;
}

let config: BenchConfig;
try {
  config = readBenchConfig(process.argv.slice(2), process.env, repoRoot);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
}
const processes = new ProcessGroup();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    processes.killAll();
    killGatewayWorkers();
    process.exit(130);
  });
}
try {
  await main(config, processes);
} catch (err) {
  processes.killAll();
  killGatewayWorkers();
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  // Pending waits (server timeouts) would keep the process alive: leave now.
  process.exit(1);
}
