// Crash safety: `kiln serve` is SIGKILLed while 2,000 jobs are queued and running on real echo
// workers, then started again on the same store. Every job whose /run answered 200 must reach
// exactly one terminal state (COMPLETED): none lost, none completed twice. Once on SQLite, once on
// PostgreSQL. The gateway is a real child process (the built CLI: `tsc -b` first, as `npm test` does).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { openPostgresStore, openSqliteStore, type JobRecord, type JobStore } from '@kiln/gateway';
import { freePort, mapPool, ROOT, startGateway, type GatewayLogEntry, type GatewayProcess } from './support/crash-gateway.ts';

/** What this test uses of the gateway's test-database helpers (`packages/gateway/src/test-databases.ts`). */
interface TestDatabases {
  postgresTestUrl(): string;
  postgresTestGate(): Promise<{ run: true } | { run: false; fail: boolean; message: string }>;
  freshPostgresSchema(): Promise<{ url: string; schema: string; drop(): Promise<void> }>;
}
// Not part of the gateway's public exports, and tsc refuses relative imports (even type-only ones)
// into another project's sources (TS2878): loaded by URL, typed by the interface above.
const { freshPostgresSchema, postgresTestGate, postgresTestUrl } = (await import(
  new URL('../packages/gateway/src/test-databases.ts', import.meta.url).href
)) as TestDatabases;

const ENDPOINT = 'echo';
const JOBS = 2000;
const SUBMIT_CONCURRENCY = 32;
const STATUS_CONCURRENCY = 16;
/** Long enough that the four workers are busy when the gateway dies, short enough for 2,000 jobs. */
const JOB_SLEEP_MS = 20;
/** Jobs completed before the kill: the crash must hit a queue that is well under way. */
const COMPLETED_BEFORE_KILL = 200;
const WORKERS_MAX = 4;
const PING_TIMEOUT_MS = 3000;
const MAX_ATTEMPTS = 3;
const RECOVERY_DEADLINE_MS = 45_000;
const TERMINAL: ReadonlySet<string> = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT']);

type Database = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; schema: string };

interface Observation {
  status: string;
  workerId: string | undefined;
  output: string;
}

function configFor(db: Database): unknown {
  return {
    endpoints: {
      [ENDPOINT]: {
        worker: { command: `${process.execPath} dist/worker.js`, cwd: path.join(ROOT, 'examples/echo') },
        workersMin: 0,
        workersMax: WORKERS_MAX,
        idleTimeout: 5,
        // One worker per queued job, capped at workersMax: all four start at once.
        scaler: { type: 'REQUEST_COUNT', value: 1 },
      },
    },
    gateway: {
      pingIntervalMs: 1000,
      pingTimeoutMs: PING_TIMEOUT_MS,
      stopGraceMs: 2000,
      maxAttempts: MAX_ATTEMPTS,
      ...(db.kind === 'sqlite' ? { databaseUrl: db.path } : { databaseUrl: db.url, databaseSchema: db.schema }),
    },
  };
}

function openStore(db: Database): Promise<JobStore> {
  return db.kind === 'sqlite' ? openSqliteStore({ path: db.path }) : openPostgresStore({ url: db.url, schema: db.schema });
}

async function readJobs(db: Database, ids: readonly string[]): Promise<Map<string, JobRecord | undefined>> {
  const store = await openStore(db);
  try {
    const records = await mapPool(ids, 8, (id) => store.get(ENDPOINT, id));
    return new Map(ids.map((id, i) => [id, records[i]]));
  } finally {
    await store.close();
  }
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function get(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Accepted results as the gateway logs them (`job X COMPLETED on worker W`), one entry per accepted job-done. */
function acceptedResults(log: GatewayLogEntry[]): GatewayLogEntry[] {
  return log.filter((e) => e.jobId !== undefined && e.status !== undefined && /^job \S+ (COMPLETED|FAILED) on worker /.test(e.message));
}

/** Ids of the workers a gateway spawned. */
function spawnedWorkers(log: GatewayLogEntry[]): Set<string> {
  return new Set(log.flatMap((e) => /^starting worker (\S+) for endpoint /.exec(e.message)?.[1] ?? []));
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

function tally(records: Iterable<JobRecord | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) out[r?.status ?? 'MISSING'] = (out[r?.status ?? 'MISSING'] ?? 0) + 1;
  return out;
}

/** Runs the scenario in `dir` (config, logs, SQLite file); whatever happens, no gateway or worker outlives it. */
async function crashScenario(t: TestContext, db: Database, dir: string): Promise<void> {
  const gateways: GatewayProcess[] = [];
  try {
    await runScenario(t, db, dir, gateways);
  } finally {
    for (const g of gateways) g.killGroup();
  }
}

async function runScenario(t: TestContext, db: Database, dir: string, gateways: GatewayProcess[]): Promise<void> {
  const started = Date.now();
  const configFile = path.join(dir, 'kiln.config.json');
  await writeFile(configFile, JSON.stringify(configFor(db), null, 2));
  const port = await freePort();
  const startOne = async (n: number) => {
    const gateway = await startGateway({ configFile, port, logFile: path.join(dir, `gateway-${n}.log`), endpoint: ENDPOINT });
    gateways.push(gateway);
    return gateway;
  };

  // --- Run 1: submit 2,000 jobs, SIGKILL the gateway once a good part of them has completed.
  const first = await startOne(1);
  const base1 = `${first.url}/v2/${ENDPOINT}`;
  const answers = await mapPool(
    Array.from({ length: JOBS }, (_, i) => i),
    SUBMIT_CONCURRENCY,
    async (i) => {
      const { status, json } = await post(`${base1}/run`, { input: { message: `crash-${i}`, sleepMs: JOB_SLEEP_MS } });
      return status === 200 ? { id: String(json['id']), message: `crash-${i}` } : undefined;
    },
  );
  const accepted = answers.filter((a) => a !== undefined);
  assert.equal(accepted.length, JOBS, 'every /run answered 200 while the gateway was up');
  const ids = accepted.map((a) => a.id);
  const messageOf = new Map(accepted.map((a) => [a.id, a.message]));
  assert.equal(new Set(ids).size, JOBS, 'every job has its own id');
  const submittedAt = Date.now();

  const killDeadline = Date.now() + 30_000;
  let health: Record<string, number> = {};
  for (;;) {
    health = (await get(`${base1}/health`)).json['jobs'] as Record<string, number>;
    if ((health['completed'] ?? 0) >= COMPLETED_BEFORE_KILL) break;
    assert.ok(Date.now() < killDeadline, `only ${JSON.stringify(health)} after 30 s: the workers do not run`);
    await delay(25);
  }
  first.signal('SIGKILL');
  const firstExit = await first.exited;
  assert.equal(firstExit.signal, 'SIGKILL');
  const killedAt = Date.now();

  // --- The store as the crash left it: every accepted job is there (a 200 from /run is durable).
  const atCrash = await readJobs(db, ids);
  const crashTally = tally(atCrash.values());
  t.diagnostic(`at the kill: ${JSON.stringify(crashTally)} (health just before: ${JSON.stringify(health)})`);
  const missingAtCrash = ids.filter((id) => atCrash.get(id) === undefined);
  assert.deepEqual(missingAtCrash, [], 'jobs whose /run answered 200 are in the store after the crash');
  const completedAtCrash = ids.filter((id) => atCrash.get(id)!.status === 'COMPLETED');
  const orphaned = ids.filter((id) => atCrash.get(id)!.status === 'IN_PROGRESS');
  const queuedAtCrash = ids.filter((id) => atCrash.get(id)!.status === 'IN_QUEUE');
  assert.equal(completedAtCrash.length + orphaned.length + queuedAtCrash.length, JOBS, `only COMPLETED, IN_PROGRESS and IN_QUEUE at the crash: ${JSON.stringify(crashTally)}`);
  assert.ok(orphaned.length > 0, 'the crash caught jobs running on workers (the case under test)');
  assert.ok(queuedAtCrash.length > 0, 'the crash caught queued jobs');

  const log1 = first.log();
  const workers1 = spawnedWorkers(log1);
  for (const id of orphaned) assert.ok(workers1.has(atCrash.get(id)!.workerId ?? ''), `orphaned job ${id} is held by a worker of the dead gateway`);
  // A result the dead gateway acknowledged (it logs after the store accepted it) survived the crash.
  const accepted1 = acceptedResults(log1);
  for (const e of accepted1) assert.equal(atCrash.get(e.jobId!)?.status, 'COMPLETED', `job ${e.jobId} completed before the crash stays COMPLETED`);
  const orphanWorkersAlive = first.groupAlive();

  // --- Run 2: the same config, store and port. Poll /status for every job until all are terminal.
  const second = await startOne(2);
  const restartedAt = Date.now();
  const base2 = `${second.url}/v2/${ENDPOINT}`;
  const seen = new Map<string, Observation[]>(ids.map((id) => [id, []]));
  const flips: string[] = [];
  const notFound = new Set<string>();
  let rounds = 0;
  for (;;) {
    rounds++;
    const observed = await mapPool(ids, STATUS_CONCURRENCY, async (id) => {
      const { status, json } = await get(`${base2}/status/${id}`);
      if (status === 404) notFound.add(id);
      const now: Observation = {
        status: String(json['status']),
        workerId: json['workerId'] === undefined ? undefined : String(json['workerId']),
        output: JSON.stringify(json['output']),
      };
      const history = seen.get(id)!;
      const firstTerminal = history.find((o) => TERMINAL.has(o.status));
      if (firstTerminal && (firstTerminal.status !== now.status || firstTerminal.workerId !== now.workerId || firstTerminal.output !== now.output)) {
        flips.push(`${id}: ${JSON.stringify(firstTerminal)} then ${JSON.stringify(now)}`);
      }
      history.push(now);
      return now.status;
    });
    const open = observed.filter((s) => !TERMINAL.has(s)).length;
    if (open === 0) break;
    if (Date.now() - restartedAt > RECOVERY_DEADLINE_MS) {
      assert.fail(
        `${open} job(s) still not terminal ${RECOVERY_DEADLINE_MS} ms after the restart: ${JSON.stringify(Object.fromEntries(countBy(observed, (s) => s)))} ` +
          '(the gateway runs from dist/: is the build current? `npx tsc -b`)',
      );
    }
    await delay(500);
  }
  const recoveredAt = Date.now();
  // One more full pass after everything was terminal: terminal states must not move.
  await mapPool(ids, STATUS_CONCURRENCY, async (id) => {
    const { json } = await get(`${base2}/status/${id}`);
    const last = seen.get(id)!.at(-1)!;
    if (String(json['status']) !== last.status || JSON.stringify(json['output']) !== last.output) {
      flips.push(`${id}: ${JSON.stringify(last)} then ${String(json['status'])} ${JSON.stringify(json['output'])}`);
    }
  });

  // Graceful stop of the second gateway (its log is then complete), then the final store.
  second.signal('SIGTERM');
  const secondExit = await Promise.race([second.exited, delay(20_000, undefined, { ref: false }).then(() => undefined)]);
  assert.ok(secondExit, 'the restarted gateway stops on SIGTERM');
  for (const g of gateways) g.killGroup();
  const final = await readJobs(db, ids);
  const log2 = second.log();
  const workers2 = spawnedWorkers(log2);
  const accepted2 = acceptedResults(log2);

  t.diagnostic(
    `submit ${submittedAt - started} ms, kill after ${killedAt - submittedAt} ms, recovery ${recoveredAt - restartedAt} ms ` +
      `(${rounds} status rounds), total ${Date.now() - started} ms; orphaned ${orphaned.length}, ` +
      `queued ${queuedAtCrash.length}, completed ${completedAtCrash.length} at the kill; ` +
      `workers of the dead gateway still alive at the restart: ${orphanWorkersAlive}`,
  );

  // --- None lost, one terminal state each, and it is COMPLETED.
  assert.deepEqual([...notFound], [], 'no accepted job is unknown to the restarted gateway');
  assert.deepEqual(flips, [], 'no job left a terminal state it had been seen in');
  assert.deepEqual(tally(final.values()), { COMPLETED: JOBS }, 'every job ends COMPLETED');
  for (const id of ids) {
    const job = final.get(id)!;
    const output = job.output as { message?: string; workerId?: string };
    assert.equal(job.error, null, `job ${id} has no error`);
    assert.equal(output.message, messageOf.get(id), `job ${id} echoes its own input`);
    assert.equal(output.workerId, job.workerId, `job ${id}'s result comes from the worker that held it`);
  }

  // --- None completed twice. A job COMPLETED before the crash was not run or finished again:
  // its record (worker, output with that execution's uptime, finish time) is the one the crash left.
  for (const id of completedAtCrash) {
    const before = atCrash.get(id)!;
    const after = final.get(id)!;
    assert.deepEqual(
      { workerId: after.workerId, output: after.output, finishedAt: after.finishedAt, attempts: after.attempts },
      { workerId: before.workerId, output: before.output, finishedAt: before.finishedAt, attempts: before.attempts },
      `job ${id}, COMPLETED before the crash, is unchanged`,
    );
  }
  // Every job-done the gateways accepted is logged once per job; the second gateway accepted
  // exactly the jobs that were not COMPLETED at the crash, each once.
  const perJob = countBy([...accepted1, ...accepted2], (e) => e.jobId!);
  const twice = [...perJob].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], 'no job had two results accepted');
  const completedBefore = new Set(completedAtCrash);
  assert.deepEqual(
    accepted2.map((e) => e.jobId!).sort(),
    [...orphaned, ...queuedAtCrash].sort(),
    'after the restart, exactly the unfinished jobs were completed, each once',
  );
  for (const e of accepted2) assert.ok(!completedBefore.has(e.jobId!));

  // --- Jobs held by the dead gateway's workers were put back in the queue (not left to time out)
  // and ran again on a worker of the new gateway; queued ones ran once.
  for (const id of orphaned) {
    const job = final.get(id)!;
    assert.ok(workers2.has(job.workerId ?? ''), `orphaned job ${id} completed on a worker of the restarted gateway`);
    assert.equal(job.attempts, 2, `orphaned job ${id}: claimed by the dead worker, then once more`);
  }
  for (const id of queuedAtCrash) {
    const job = final.get(id)!;
    assert.ok(workers2.has(job.workerId ?? ''), `queued job ${id} ran on a worker of the restarted gateway`);
    assert.equal(job.attempts, 1, `queued job ${id} was claimed once`);
  }
  const requeuedByLog = new Set(log2.filter((e) => /back in the queue/.test(e.message)).flatMap((e) => e.jobIds ?? []));
  assert.deepEqual(orphaned.filter((id) => !requeuedByLog.has(id)), [], 'the restarted gateway logs each orphaned job as requeued');
  // Killed above; whether they are gone also depends on init reaping the orphans, so only reported.
  const gone = Date.now() + 3000;
  while ((first.groupAlive() || second.groupAlive()) && Date.now() < gone) await delay(50);
  if (first.groupAlive() || second.groupAlive()) t.diagnostic('warning: processes of the gateways’ groups still exist after SIGKILL (unreaped?)');
}

test('crash safety on SQLite: SIGKILL with 2,000 jobs in flight, restart, each job completes exactly once', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-crash-'));
  try {
    await crashScenario(t, { kind: 'sqlite', path: path.join(dir, 'kiln.db') }, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const gate = await postgresTestGate();
const POSTGRES_TEST = 'crash safety on PostgreSQL: SIGKILL with 2,000 jobs in flight, restart, each job completes exactly once';
if (!gate.run && gate.fail) {
  test(POSTGRES_TEST, () => assert.fail(gate.message));
} else {
  test(POSTGRES_TEST, { skip: gate.run ? false : gate.message, timeout: 120_000 }, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-crash-'));
    const schema = await freshPostgresSchema();
    try {
      await crashScenario(t, { kind: 'postgres', url: postgresTestUrl(), schema: schema.schema }, dir);
    } finally {
      await schema.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
