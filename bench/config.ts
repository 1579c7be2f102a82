/**
 * The benchmark's options, parsed once from the command line into a frozen object that every
 * benchmark receives. The only bench module that reads `process.argv` / `process.env`.
 */
import path from 'node:path';

/** The benchmarks `--only` can pick. */
export const BENCH_NAMES = ['cold-start', 'take-latency', 'throughput', 'gateway-runsync', 'gateway-throughput', 'stream-latency', 'models-pull', 'example-tts', 'example-avatar', 'example-vfx', 'dashboard'] as const;
/** One of {@link BENCH_NAMES}. */
export type BenchName = (typeof BENCH_NAMES)[number];

/** Everything the benchmarks need to know, resolved once. */
export interface BenchConfig {
  readonly quick: boolean;
  readonly only: readonly BenchName[];
  readonly repoRoot: string;
  /** The node binary running the bench; children use the same one. */
  readonly node: string;
  /** PATH and HOME only: this machine's NODE_EXTRA_CA_CERTS slows every node start ×2.6 (PERF.md). */
  readonly baseEnv: Readonly<Record<string, string>>;
  /** What a gateway's worker inherits from the bench's environment (the names of process-driver.ts's DEFAULT_INHERITED_ENV, when set): the floors' workers get the same. */
  readonly inheritedWorkerEnv: Readonly<Record<string, string>>;
  /** Flags that let node run a bench worker written in TypeScript against the runtime's sources. */
  readonly tsxArgs: readonly string[];
  readonly files: {
    /** The echo example as a thin deploy image ships it: one esbuild CommonJS file (runtime + valibot inlined). */
    readonly echoBundle: string;
    /** The echo example's tsc output (ESM; imports @kiln/worker's dist/ and valibot from node_modules). */
    readonly echoWorker: string;
    /** The smallest kiln worker in plain JS on the compiled runtime (no input schema, no schema library). */
    readonly bareWorker: string;
    /** A kiln worker whose handler only returns timestamps; concurrency from BENCH_CONCURRENCY. */
    readonly noopWorker: string;
    /** The protocol floor: node:http take → done loop, no runtime; concurrency from FLOOR_CONCURRENCY. */
    readonly floorLoop: string;
  };
  readonly coldStart: { readonly rounds: number; readonly warmupRounds: number };
  readonly takeLatency: { readonly jobs: number; readonly warmupJobs: number; readonly pauseMs: readonly [number, number] };
  readonly throughput: { readonly jobs: number; readonly rounds: number; readonly concurrencies: readonly number[] };
  /** The gateway benchmarks' database: `KILN_TEST_DATABASE_URL`, else the local test server (as the gateway's tests). */
  readonly gateway: { readonly postgresUrl: string };
  /** Sequential `/runsync` round trips beside a bare node:http echo; per round, each variant sends `requestsPerRound`. */
  readonly gatewayRunsync: { readonly rounds: number; readonly requestsPerRound: number; readonly warmupRequests: number };
  /** 1,000 jobs queued through `/run`, then drained by N workers at each concurrency, per store. */
  /** Chunk POST → client arrival for SSE, the long-poll and runpod-sdk: per round, one job of `chunksPerJob` chunks per client. */
  readonly streamLatency: { readonly rounds: number; readonly chunksPerJob: number; readonly spacingMs: readonly [number, number] };
  /** The TTS example: cold-start rounds (a fresh worker each), then warm jobs one at a time on the last one. */
  readonly exampleTts: { readonly rounds: number; readonly warmJobs: number };
  /** The avatar example: as `exampleTts`, on a fixed 2 s input. */
  readonly exampleAvatar: { readonly rounds: number; readonly warmJobs: number };
  /** The VFX example: as `exampleTts`, every stage on a fixed 10-frame clip. */
  readonly exampleVfx: { readonly rounds: number; readonly warmJobs: number };
  /** Jobs seeded for the jobs-API latencies, requests per query, and jobs timed in the browser. */
  readonly dashboard: { readonly jobs: number; readonly requests: number; readonly liveJobs: number };
  readonly gatewayThroughput: {
    readonly jobs: number;
    readonly warmupJobs: number;
    readonly rounds: number;
    readonly workers: readonly number[];
    readonly concurrencies: readonly number[];
    /** Parallel `/run` requests while queueing. */
    readonly enqueueParallelism: number;
  };
}

const USAGE = `usage: npm run bench -- [--quick] [--only=${BENCH_NAMES.join(',')}]
  --quick   fewer rounds and jobs (a smoke run; below the issue's minimum sample sizes)
  --only    run only the named benchmarks (comma-separated)
  KILN_TEST_DATABASE_URL  PostgreSQL for the gateway benchmarks (default postgres://postgres@127.0.0.1:5432/test)`;

/** Parses the command line; throws with the usage text on unknown flags. */
export function readBenchConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, repoRoot: string): BenchConfig {
  let quick = false;
  let only: BenchName[] = [...BENCH_NAMES];
  for (const arg of argv) {
    if (arg === '--quick') quick = true;
    else if (arg.startsWith('--only=')) {
      const names = arg.slice('--only='.length).split(',').filter(Boolean);
      const unknown = names.filter((n) => !(BENCH_NAMES as readonly string[]).includes(n));
      if (unknown.length > 0 || names.length === 0) throw new Error(`unknown benchmark '${unknown.join(',')}'\n${USAGE}`);
      only = names as BenchName[];
    } else if (arg === '--help' || arg === '-h') throw new Error(USAGE);
    else throw new Error(`unknown flag '${arg}'\n${USAGE}`);
  }
  const baseEnv: Record<string, string> = {};
  if (env['PATH'] !== undefined) baseEnv['PATH'] = env['PATH'];
  if (env['HOME'] !== undefined) baseEnv['HOME'] = env['HOME'];
  return Object.freeze({
    quick,
    only: Object.freeze(only),
    repoRoot,
    node: process.execPath,
    baseEnv: Object.freeze(baseEnv),
    inheritedWorkerEnv: Object.freeze(
      Object.fromEntries(
        ['PATH', 'HOME', 'LANG', 'TZ', 'NODE_OPTIONS', 'PYTHONPATH', 'VIRTUAL_ENV', 'CUDA_VISIBLE_DEVICES'].flatMap((k) => (env[k] === undefined ? [] : [[k, env[k]]])),
      ),
    ),
    tsxArgs: Object.freeze(['--conditions=kiln-source', '--import', 'tsx']),
    files: Object.freeze({
      echoBundle: path.join(repoRoot, 'examples/echo/dist/worker.bundle.cjs'),
      echoWorker: path.join(repoRoot, 'examples/echo/dist/worker.js'),
      bareWorker: path.join(repoRoot, 'bench/workers/bare-worker.mjs'),
      noopWorker: path.join(repoRoot, 'bench/workers/noop-worker.ts'),
      floorLoop: path.join(repoRoot, 'bench/workers/floor-loop.mjs'),
    }),
    coldStart: Object.freeze({ rounds: quick ? 5 : 15, warmupRounds: 1 }),
    takeLatency: Object.freeze({ jobs: quick ? 300 : 2000, warmupJobs: quick ? 30 : 100, pauseMs: Object.freeze([1, 4] as const) }),
    throughput: Object.freeze({ jobs: quick ? 1000 : 4000, rounds: quick ? 2 : 5, concurrencies: Object.freeze([1, 8]) }),
    gateway: Object.freeze({ postgresUrl: env['KILN_TEST_DATABASE_URL'] || 'postgres://postgres@127.0.0.1:5432/test' }),
    gatewayRunsync: Object.freeze({ rounds: quick ? 2 : 5, requestsPerRound: quick ? 300 : 500, warmupRequests: quick ? 100 : 300 }),
    streamLatency: Object.freeze({ rounds: quick ? 1 : 3, chunksPerJob: quick ? 50 : 200, spacingMs: Object.freeze([3, 7] as const) }),
    exampleTts: Object.freeze({ rounds: quick ? 3 : 10, warmJobs: quick ? 10 : 40 }),
    exampleAvatar: Object.freeze({ rounds: quick ? 3 : 8, warmJobs: quick ? 5 : 20 }),
    exampleVfx: Object.freeze({ rounds: quick ? 3 : 6, warmJobs: quick ? 5 : 15 }),
    dashboard: Object.freeze({ jobs: quick ? 20_000 : 100_000, requests: quick ? 20 : 60, liveJobs: quick ? 10 : 40 }),
    gatewayThroughput: Object.freeze({
      jobs: 1000,
      warmupJobs: quick ? 100 : 200,
      rounds: quick ? 1 : 3,
      workers: Object.freeze([1, 4]),
      concurrencies: Object.freeze([1, 8]),
      enqueueParallelism: 16,
    }),
  });
}
