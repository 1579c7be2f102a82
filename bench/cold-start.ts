/**
 * Cold start: process spawn → the first job-take request arriving at a loopback job server, for
 * the compiled echo example, beside `node -e 0` (spawn → exit), the smallest kiln worker (no zod)
 * and the protocol floor (a bare node:http take loop), all with a clean environment and
 * interleaved round by round.
 */
import { LoopbackJobServer } from '@kiln/worker/testing';
import { unlessChildExits, type ProcessGroup } from './child-process.ts';
import type { BenchConfig } from './config.ts';

/** One variant's spawn-to-milestone times, one per measured round (ms). */
export interface ColdStartResult {
  /** `node -e 0`: spawn → exit. */
  nodeExitMs: number[];
  /** `node examples/echo/dist/worker.js`: spawn → first job-take arrival. */
  echoFirstTakeMs: number[];
  /** `node bench/workers/bare-worker.mjs` (kiln, no schema, no zod): spawn → first job-take arrival. */
  bareFirstTakeMs: number[];
  /** `node bench/workers/floor-loop.mjs`: spawn → first job-take arrival. */
  floorFirstTakeMs: number[];
  /** Order the variants ran in, per measured round. */
  orders: string[][];
}

type Variant = 'node -e 0' | 'echo worker' | 'bare worker' | 'floor loop';
const VARIANTS: readonly Variant[] = ['node -e 0', 'echo worker', 'bare worker', 'floor loop'];
/** The worker file each variant runs (`node -e 0` runs none). */
const WORKER_FILE: Record<Variant, keyof BenchConfig['files'] | undefined> = {
  'node -e 0': undefined,
  'echo worker': 'echoWorker',
  'bare worker': 'bareWorker',
  'floor loop': 'floorLoop',
};
const FIRST_TAKE_TIMEOUT_MS = 15_000;

/** Runs warm-up rounds, then `rounds` measured rounds, rotating the variants' order each round. */
export async function measureColdStart(config: BenchConfig, processes: ProcessGroup): Promise<ColdStartResult> {
  const { rounds, warmupRounds } = config.coldStart;
  const result: ColdStartResult = { nodeExitMs: [], echoFirstTakeMs: [], bareFirstTakeMs: [], floorFirstTakeMs: [], orders: [] };
  for (let round = -warmupRounds; round < rounds; round++) {
    const shift = ((round % VARIANTS.length) + VARIANTS.length) % VARIANTS.length;
    const order = [...VARIANTS.slice(shift), ...VARIANTS.slice(0, shift)];
    const times = new Map<Variant, number>();
    for (const variant of order) {
      const workerId = `cold-${round}-${variant.replace(/\W+/g, '-')}`;
      const file = WORKER_FILE[variant];
      times.set(variant, file === undefined ? await spawnToExit(config, processes) : await spawnToFirstTake(config, processes, [config.files[file]], workerId));
    }
    if (round < 0) continue;
    result.nodeExitMs.push(times.get('node -e 0')!);
    result.echoFirstTakeMs.push(times.get('echo worker')!);
    result.bareFirstTakeMs.push(times.get('bare worker')!);
    result.floorFirstTakeMs.push(times.get('floor loop')!);
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
