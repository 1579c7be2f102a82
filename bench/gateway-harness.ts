/**
 * What the gateway benchmarks share: the no-op worker bundled as a deploy image ships it, an
 * in-process {@link Gateway} on an instrumented job store, the same workers on the in-memory floor
 * server, a keep-alive JSON HTTP client, and CPU time of other processes (the workers, the
 * PostgreSQL server) read from `/proc`.
 *
 * The gateway runs in the bench process (its TypeScript sources, as `--conditions=kiln-source`
 * resolves them; tsx transpiles them once at load), so `process.cpuUsage()` is the gateway's CPU
 * whenever the bench itself is idle. Its workers are real child processes that it spawns.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildSync } from 'esbuild';
import postgres from 'postgres';
import { httpCall } from './http-call.ts';
import { CONFIG_LIMITS, Gateway, openPostgresStore, openSqliteStore, parseConfig, type GatewayLogger, type JobStore } from '@kiln/gateway';
import { ProcessGroup, type ChildHandle } from './child-process.ts';
import { sleep } from './clock.ts';
import type { BenchConfig } from './config.ts';
import { FloorJobServer } from './floor-job-server.ts';

/** The job stores a gateway can run on. */
export type StoreKind = 'sqlite' | 'postgres';
/** How stores are named in tables. */
export const STORE_LABEL: Record<StoreKind, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

/** The endpoint every bench gateway serves. */
export const BENCH_ENDPOINT = 'noop';

// ---------------------------------------------------------------------------------------------
// Setup shared by both gateway benchmarks.

/** A temp folder with the bundled no-op worker; `cleanup()` removes it. */
export interface GatewayBenchSetup {
  dir: string;
  /** `bench/workers/noop-worker.ts` as one esbuild CommonJS file (@kiln/worker's dist/ inlined). */
  workerBundle: string;
  /** Whether PostgreSQL answered; the reason when it did not. */
  postgres: { available: true } | { available: false; reason: string };
  cleanup(): void;
}

/** Bundles the no-op worker into a temp folder and checks whether PostgreSQL answers. */
export async function prepareGatewayBench(config: BenchConfig): Promise<GatewayBenchSetup> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-gateway-'));
  const workerBundle = path.join(dir, 'noop-worker.bundle.cjs');
  // As examples/echo's `bundle` script: no kiln-source condition, so @kiln/worker comes from its compiled dist/.
  buildSync({
    entryPoints: [config.files.noopWorker],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: workerBundle,
    logLevel: 'warning',
    absWorkingDir: config.repoRoot,
  });
  return {
    dir,
    workerBundle,
    postgres: await checkPostgres(config.gateway.postgresUrl),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function checkPostgres(url: string): Promise<GatewayBenchSetup['postgres']> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return { available: true };
  } catch (err) {
    return { available: false, reason: `PostgreSQL unreachable at ${url.replace(/\/\/[^@/]*@/, '//')}: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    await sql.end({ timeout: 0 });
  }
}

// ---------------------------------------------------------------------------------------------
// The instrumented store.

/** Per store method: calls, and wall time of the synchronous part of the call (all of it for SQLite). */
export interface StoreCallStats {
  calls: Record<string, number>;
  syncMs: Record<string, number>;
}

/**
 * Wraps a job store: counts calls and times their synchronous part per method (better-sqlite3
 * runs every statement inside the call, so for SQLite that is the store's whole cost on the
 * gateway's thread; for PostgreSQL only query building), counts finished jobs, and can hold
 * claims back (a gate) so that a whole batch is queued before any worker gets a job.
 */
export class StoreProbe {
  readonly store: JobStore;
  stats: StoreCallStats = { calls: {}, syncMs: {} };
  /** Jobs handed out by claim() and claim() calls that returned none, since the last reset. */
  claimedJobs = 0;
  emptyClaims = 0;
  /** finish() calls that completed a job, since the last reset. */
  finished = 0;
  #gate: Promise<void> | undefined;
  #openGate: (() => void) | undefined;
  #onFinish: ((finished: number) => void) | undefined;
  readonly #wrapped = new Map<string, unknown>();

  constructor(inner: JobStore) {
    const record = (method: string, ms: number) => {
      this.stats.calls[method] = (this.stats.calls[method] ?? 0) + 1;
      this.stats.syncMs[method] = (this.stats.syncMs[method] ?? 0) + ms;
    };
    const special: Record<string, (...args: never[]) => unknown> = {
      claim: async (...args: Parameters<JobStore['claim']>) => {
        if (this.#gate) await this.#gate;
        const t = performance.now();
        const pending = inner.claim(...args);
        record('claim', performance.now() - t);
        const jobs = await pending;
        if (jobs.length === 0) this.emptyClaims++;
        this.claimedJobs += jobs.length;
        return jobs;
      },
      finish: (...args: Parameters<JobStore['finish']>) => {
        const t = performance.now();
        const pending = inner.finish(...args);
        record('finish', performance.now() - t);
        return pending.then((job) => {
          if (job) {
            this.finished++;
            this.#onFinish?.(this.finished);
          }
          return job;
        });
      },
    };
    this.store = new Proxy(inner, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof prop !== 'string' || typeof value !== 'function') return value;
        let fn = this.#wrapped.get(prop);
        if (fn === undefined) {
          fn =
            special[prop] ??
            ((...args: unknown[]) => {
              const t = performance.now();
              const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
              record(prop, performance.now() - t);
              return result;
            });
          this.#wrapped.set(prop, fn);
        }
        return fn;
      },
    });
  }

  /** Zeroes every counter. */
  reset(): void {
    this.stats = { calls: {}, syncMs: {} };
    this.claimedJobs = 0;
    this.emptyClaims = 0;
    this.finished = 0;
  }

  /** Holds every claim() from now on until {@link release}. */
  hold(): void {
    this.#gate ??= new Promise((resolve) => (this.#openGate = resolve));
  }

  /** Lets held and later claims through. */
  release(): void {
    const open = this.#openGate;
    this.#gate = undefined;
    this.#openGate = undefined;
    open?.();
  }

  /** Calls `listener` synchronously each time a job is completed (with the count since the last reset). */
  onFinish(listener: ((finished: number) => void) | undefined): void {
    this.#onFinish = listener;
  }
}

// ---------------------------------------------------------------------------------------------
// A gateway on a fresh store.

/** Log lines by level; WARN/ERROR messages kept (a few). The gateway logs one INFO line per finished job. */
export class CountingLog {
  info = 0;
  warn = 0;
  error = 0;
  readonly last: string[] = [];
  readonly logger: GatewayLogger = {
    info: () => void this.info++,
    warn: (message) => {
      this.warn++;
      this.#keep(`WARN ${message}`);
    },
    error: (message) => {
      this.error++;
      this.#keep(`ERROR ${message}`);
    },
  };
  #keep(line: string): void {
    this.last.push(line);
    if (this.last.length > 5) this.last.shift();
  }
}

/** A started gateway with its probe. */
export interface GatewayRig {
  gateway: Gateway;
  probe: StoreProbe;
  log: CountingLog;
  /** `http://127.0.0.1:<port>/v2/noop` */
  endpointUrl: string;
  /** Waits until `n` workers asked for jobs (state idle). */
  waitForIdleWorkers(n: number, timeoutMs?: number): Promise<void>;
  /** PIDs of the gateway's worker processes (children of this process running the bundle). */
  workerPids(): number[];
  /** Stops the gateway (workers, server, store) and deletes its database. */
  stop(): Promise<void>;
}

const liveGateways = new Set<Gateway>();

/** The floors' worker processes (see {@link startFloorWorkers}). */
const floorProcesses = new ProcessGroup();

/** SIGKILLs the workers of every gateway and floor still running (for an interrupted or failed run). */
export function killGatewayWorkers(): void {
  for (const gateway of liveGateways) for (const worker of gateway.registry.list()) gateway.killWorkerProcess(worker.workerId);
  floorProcesses.killAll();
}

/** Starts an in-process gateway with `workers` no-op workers (min = max) at `concurrency`, on a fresh store. */
export async function startGateway(
  config: BenchConfig,
  setup: GatewayBenchSetup,
  options: { store: StoreKind; workers: number; concurrency: number },
): Promise<GatewayRig> {
  const tag = randomBytes(6).toString('hex');
  let inner: JobStore;
  let dropDatabase: () => Promise<void>;
  if (options.store === 'sqlite') {
    const file = path.join(setup.dir, `jobs-${tag}.db`);
    inner = await openSqliteStore({ path: file });
    dropDatabase = async () => {
      for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
    };
  } else {
    const url = config.gateway.postgresUrl;
    const schema = `kiln_bench_${tag}`;
    inner = await openPostgresStore({ url, schema });
    dropDatabase = async () => {
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
      } finally {
        await sql.end({ timeout: 5 });
      }
    };
  }
  const probe = new StoreProbe(inner);
  const gatewayConfig = parseConfig(
    {
      endpoints: {
        [BENCH_ENDPOINT]: {
          worker: { command: `"${config.node}" "${setup.workerBundle}"`, cwd: setup.dir },
          workersMin: options.workers,
          workersMax: options.workers,
          idleTimeout: 3600,
          env: { BENCH_CONCURRENCY: String(options.concurrency) },
        },
      },
      gateway: { host: '127.0.0.1', port: 0, stopGraceMs: 5000 },
    },
    { baseDir: setup.dir, env: {} },
  );
  const log = new CountingLog();
  const gateway = new Gateway(gatewayConfig, { store: probe.store, tickMs: 1000, log: log.logger });
  liveGateways.add(gateway);
  let url: string;
  try {
    url = await gateway.start();
  } catch (err) {
    liveGateways.delete(gateway);
    await gateway.stop().catch(() => {});
    await dropDatabase().catch(() => {});
    throw err;
  }
  const endpointUrl = `${url}/v2/${BENCH_ENDPOINT}`;
  return {
    gateway,
    probe,
    log,
    endpointUrl,
    async waitForIdleWorkers(n, timeoutMs = 20_000) {
      const deadline = performance.now() + timeoutMs;
      while (gateway.registry.counts(BENCH_ENDPOINT).idle < n) {
        if (performance.now() > deadline) {
          throw new Error(`gateway: ${n} idle workers wanted, have ${JSON.stringify(gateway.registry.counts(BENCH_ENDPOINT))}; last log lines: ${log.last.join(' | ')}`);
        }
        await sleep(5);
      }
    },
    workerPids: () => {
      // Other gateways and the floors run the same bundle at the same time (runsync): pick this gateway's by worker id.
      const ids = new Set(gateway.registry.list().map((w) => w.workerId));
      return childPidsRunning(setup.workerBundle).filter((pid) => ids.has(podIdOf(pid) ?? ''));
    },
    async stop() {
      try {
        await gateway.stop();
      } finally {
        liveGateways.delete(gateway);
        await dropDatabase();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The floors' workers.

/** No-op worker processes on a {@link FloorJobServer}. */
export interface FloorWorkers {
  /** Their process ids. */
  readonly pids: readonly number[];
  /** The runtime's WARN / ERROR log lines, summed over the workers. */
  logLines(): { warn: number; error: number };
  /** Waits until each of `n` workers has a job-take parked on the server. */
  waitForParked(n: number, timeoutMs?: number): Promise<void>;
  /** SIGKILLs them; resolves once they have exited. */
  stop(): Promise<void>;
}

/** The gateway's defaults the bench gateways run with (its `takeHoldMs` and `pingIntervalMs`). */
export const FLOOR_SERVER_SETTINGS = { holdMs: CONFIG_LIMITS.takeHoldMs.default, pingIntervalMs: CONFIG_LIMITS.pingIntervalMs.default } as const;

/** Starts a {@link FloorJobServer} for the bench endpoint with the gateway's default hold time. */
export async function startFloorServer(): Promise<FloorJobServer> {
  const server = new FloorJobServer({ endpoint: BENCH_ENDPOINT, holdMs: FLOOR_SERVER_SETTINGS.holdMs });
  await server.start();
  return server;
}

/**
 * Spawns `workers` no-op workers at `concurrency` against `server` as {@link startGateway}'s
 * gateway spawns its own: the same bundle, command, cwd and environment (what the gateway's
 * process driver inherits, the endpoint's `BENCH_CONCURRENCY`, the RUNPOD_* it sets).
 */
export function startFloorWorkers(
  config: BenchConfig,
  setup: GatewayBenchSetup,
  server: FloorJobServer,
  options: { workers: number; concurrency: number },
): FloorWorkers {
  const children: ChildHandle[] = [];
  for (let i = 0; i < options.workers; i++) {
    const env = {
      ...config.inheritedWorkerEnv,
      BENCH_CONCURRENCY: String(options.concurrency),
      ...server.workerEnv(server.addWorker(), FLOOR_SERVER_SETTINGS.pingIntervalMs),
    };
    children.push(floorProcesses.spawn(config.node, [setup.workerBundle], { env, cwd: setup.dir }));
  }
  return {
    pids: children.map((c) => c.pid).filter((pid): pid is number => pid !== undefined),
    logLines: () => ({ warn: children.reduce((n, c) => n + c.output.warnLines, 0), error: children.reduce((n, c) => n + c.output.errorLines, 0) }),
    async waitForParked(n, timeoutMs = 20_000) {
      const deadline = performance.now() + timeoutMs;
      while (server.parkedWorkers < n) {
        if (performance.now() > deadline) {
          const tails = children.map((c) => c.output.tail.slice(-300)).join(' | ');
          throw new Error(`floor: ${n} workers with a parked take wanted, have ${server.parkedWorkers}; worker output: ${tails}`);
        }
        await sleep(5);
      }
    },
    async stop() {
      await Promise.all(children.map((c) => c.kill()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP client.

/** A JSON-over-HTTP client on one keep-alive `node:http` Agent (as PERF.md's Node client). */
export class JsonClient {
  readonly #agent: http.Agent;

  constructor(maxSockets: number) {
    this.#agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  /** POSTs `body` (JSON text) and reads the whole answer. */
  post(url: URL, body: string): Promise<{ status: number; body: string }> {
    return httpCall(this.#agent, 'POST', url, {}, body);
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** A bare `node:http` JSON echo server (the floor): parses the body, answers `{ id, status, output: input }`. */
export async function startEchoServer(): Promise<{ url: URL; stop(): Promise<void> }> {
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input?: unknown };
      const body = JSON.stringify({ id: `echo-${++n}`, status: 'COMPLETED', output: request.input ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: new URL(`http://127.0.0.1:${port}/echo`),
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Sends `count` requests from `parallel` loops; returns the answers' bodies, throws on a non-200 answer. */
export async function postMany(client: JsonClient, url: URL, bodies: readonly string[], parallel: number): Promise<string[]> {
  const answers: string[] = new Array<string>(bodies.length);
  let next = 0;
  const loop = async () => {
    for (let i = next++; i < bodies.length; i = next++) {
      const res = await client.post(url, bodies[i]!);
      if (res.status !== 200) throw new Error(`POST ${url.pathname} answered ${res.status}: ${res.body.slice(0, 200)}`);
      answers[i] = res.body;
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, bodies.length) }, loop));
  return answers;
}

// ---------------------------------------------------------------------------------------------
// CPU time of other processes.

/** This process's CPU time (user + system) so far, µs. */
export function ownCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * CPU time of a process so far, µs: the sum over its threads of `/proc/<pid>/task/<tid>/schedstat`
 * (ns), falling back to `/proc/<pid>/stat` (10 ms ticks). Undefined when the process is gone.
 */
export function processCpuUs(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // A thread that ended between the listing and the read.
      }
    }
    if (Number.isFinite(ns) && ns > 0) return ns / 1000;
  } catch {
    // No schedstat: use the tick counters.
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

function procEntries(): { pid: number; ppid: number; comm: string }[] {
  const out: { pid: number; ppid: number; comm: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.push({ pid: Number(name), ppid, comm });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

function childPidsRunning(file: string): number[] {
  return procEntries()
    .filter((p) => p.ppid === process.pid)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes(file);
      } catch {
        return false;
      }
    })
    .map((p) => p.pid);
}

/** RUNPOD_POD_ID in a process's environment (the worker id a gateway gave it). */
function podIdOf(pid: number): string | undefined {
  try {
    const entry = readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .find((e) => e.startsWith('RUNPOD_POD_ID='));
    return entry?.slice('RUNPOD_POD_ID='.length);
  } catch {
    return undefined;
  }
}

/** CPU µs so far of every PostgreSQL server process on this machine (backends, WAL writer …), by pid. */
export function postgresServerCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of procEntries()) {
    if (p.comm !== 'postgres') continue;
    const us = processCpuUs(p.pid);
    if (us !== undefined) out.set(p.pid, us);
  }
  return out;
}

/** CPU µs used between two readings of a set of processes (processes new in `after` count from 0). */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let us = 0;
  for (const [pid, t] of after) us += t - (before.get(pid) ?? 0);
  return us;
}

/** CPU µs so far of each pid. */
export function cpuOf(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const us = processCpuUs(pid);
    if (us !== undefined) out.set(pid, us);
  }
  return out;
}
