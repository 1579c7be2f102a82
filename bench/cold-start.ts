/**
 * Cold start: process spawn → the first job-take request arriving at a loopback job server, for
 * the echo example as a thin deploy image ships it (one esbuild CommonJS bundle; the headline
 * figure) and as tsc emits it (ESM, for honesty), beside `node -e 0` (spawn → exit), the smallest
 * kiln worker (no input schema, no schema library) and the protocol floor (a bare node:http take
 * loop), all with a clean environment and interleaved round by round. The echo example validates
 * its input with valibot.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LoopbackJobServer } from '@kiln/worker/testing';
import { unlessChildExits, type ProcessGroup } from './child-process.ts';
import type { BenchConfig } from './config.ts';

/** The variants, in their round-0 order. */
export const COLD_START_VARIANTS = ['node -e 0', 'echo worker (bundle)', 'echo worker (tsc output)', 'bare kiln worker (tsc output)', 'floor loop'] as const;
/** One of {@link COLD_START_VARIANTS}. */
export type ColdStartVariant = (typeof COLD_START_VARIANTS)[number];
/** The variant every ratio is taken against (spawn → exit). */
export const COLD_START_NODE: ColdStartVariant = 'node -e 0';
/** The variant the target is judged on: the single-file bundle a thin deploy image runs. */
export const COLD_START_HEADLINE: ColdStartVariant = 'echo worker (bundle)';
/** The protocol floor (no runtime). */
export const COLD_START_FLOOR: ColdStartVariant = 'floor loop';

/** The worker file each variant runs (`node -e 0` runs none). */
const WORKER_FILE: Record<ColdStartVariant, keyof BenchConfig['files'] | undefined> = {
  'node -e 0': undefined,
  'echo worker (bundle)': 'echoBundle',
  'echo worker (tsc output)': 'echoWorker',
  'bare kiln worker (tsc output)': 'bareWorker',
  'floor loop': 'floorLoop',
};
const FIRST_TAKE_TIMEOUT_MS = 15_000;

/** How a variant is run and what is timed. */
export interface ColdStartVariantInfo {
  /** The command line, paths relative to the repository root. */
  command: string;
  measures: 'spawn → exit' | 'spawn → 1st job-take';
}

/** Every variant's spawn-to-milestone times, one per measured round (ms). */
export interface ColdStartResult {
  variants: Record<ColdStartVariant, ColdStartVariantInfo>;
  /** Per variant, one time per measured round; index i of every series is the same round. */
  samplesMs: Record<ColdStartVariant, number[]>;
  /** Order the variants ran in, per measured round. */
  orders: ColdStartVariant[][];
}

/** How each variant is run, for the report and the results file. */
export function coldStartVariantInfo(config: BenchConfig): Record<ColdStartVariant, ColdStartVariantInfo> {
  const entries = COLD_START_VARIANTS.map((variant): [ColdStartVariant, ColdStartVariantInfo] => {
    const file = WORKER_FILE[variant];
    return file === undefined
      ? [variant, { command: 'node -e 0', measures: 'spawn → exit' }]
      : [variant, { command: `node ${path.relative(config.repoRoot, config.files[file])}`, measures: 'spawn → 1st job-take' }];
  });
  return Object.fromEntries(entries) as Record<ColdStartVariant, ColdStartVariantInfo>;
}

/** Runs warm-up rounds, then `rounds` measured rounds, rotating the variants' order each round. */
export async function measureColdStart(config: BenchConfig, processes: ProcessGroup): Promise<ColdStartResult> {
  for (const variant of COLD_START_VARIANTS) {
    const file = WORKER_FILE[variant];
    if (file !== undefined && !existsSync(config.files[file])) {
      throw new Error(`cold start: ${variant} needs ${path.relative(config.repoRoot, config.files[file])}; run \`npm run build\` first`);
    }
  }
  const { rounds, warmupRounds } = config.coldStart;
  const samplesMs = Object.fromEntries(COLD_START_VARIANTS.map((v) => [v, [] as number[]])) as Record<ColdStartVariant, number[]>;
  const result: ColdStartResult = { variants: coldStartVariantInfo(config), samplesMs, orders: [] };
  const n = COLD_START_VARIANTS.length;
  for (let round = -warmupRounds; round < rounds; round++) {
    const shift = ((round % n) + n) % n;
    const order = [...COLD_START_VARIANTS.slice(shift), ...COLD_START_VARIANTS.slice(0, shift)];
    const times = new Map<ColdStartVariant, number>();
    for (const variant of order) {
      const workerId = `cold-${round}-${variant.replace(/\W+/g, '-')}`;
      const file = WORKER_FILE[variant];
      times.set(variant, file === undefined ? await spawnToExit(config, processes) : await spawnToFirstTake(config, processes, [config.files[file]], workerId));
    }
    if (round < 0) continue;
    for (const variant of COLD_START_VARIANTS) samplesMs[variant].push(times.get(variant)!);
    result.orders.push(order);
  }
  return result;
}

async function spawnToExit(config: BenchConfig, processes: ProcessGroup): Promise<number> {
  const child = processes.spawn(config.node, ['-e', '0'], { env: { ...config.baseEnv }, cwd: config.repoRoot });
  try {
    const exit = await child.exited;
    if (exit.code !== 0) throw new Error(`node -e 0 exited with ${exit.code ?? exit.signal}\n${child.output.tail}`);
    return exit.at - child.spawnedAt;
  } finally {
    await child.kill();
  }
}

async function spawnToFirstTake(config: BenchConfig, processes: ProcessGroup, args: string[], workerId: string): Promise<number> {
  // A fresh server per trial: no queue or connection left over from the previous worker.
  const server = new LoopbackJobServer({ holdMs: 30_000, record: true });
  await server.start();
  // A queued job makes the first take answer at once, which is what wakes `waitFor` (it checks on answers).
  server.enqueue({ id: `${workerId}-job`, input: { message: 'cold start' } });
  const env = { ...config.baseEnv, ...server.workerEnv(workerId, { pingIntervalMs: 10_000 }) };
  const isTake = (path: string) => path.includes('/job-take/') || path.includes('/job-take-batch/');
  const child = processes.spawn(config.node, args, { env, cwd: config.repoRoot });
  try {
    await unlessChildExits(
      child,
      server.waitFor(() => server.requests.some((r) => isTake(r.path)), FIRST_TAKE_TIMEOUT_MS, `first job-take of ${workerId}`),
      `cold start of ${args.join(' ')}`,
    );
    const take = server.requests.find((r) => isTake(r.path))!;
    return take.t - child.spawnedAt;
  } finally {
    await child.kill();
    await server.stop();
  }
}
