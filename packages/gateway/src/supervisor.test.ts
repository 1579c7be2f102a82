import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { ManualClock } from '@kiln/protocol';
import type { JobStore } from './job-store.ts';
import { openSqliteStore } from './sqlite-store.ts';
import { Supervisor, type SupervisionSettings } from './supervisor.ts';
import { tempSqlitePath } from './test-databases.ts';
import { WorkerRegistry } from './worker-registry.ts';

const SETTINGS: SupervisionSettings = { maxAttempts: 2, pingTimeoutMs: 30_000, stopGraceMs: 10_000, retentionMs: 1_800_000 };

let clock: ManualClock;
let store: JobStore;
let registry: WorkerRegistry;
let supervisor: Supervisor;
let killed: { workerId: string; reason: string }[];
let notified: string[];
let removeDb: () => Promise<void>;

beforeEach(async () => {
  clock = new ManualClock();
  const db = await tempSqlitePath();
  removeDb = db.remove;
  store = await openSqliteStore({ path: db.path });
  registry = new WorkerRegistry({ clock });
  killed = [];
  notified = [];
  supervisor = new Supervisor({
    store,
    registry,
    clock,
    settings: SETTINGS,
    notify: (id) => notified.push(id),
    killWorker: (workerId, reason) => killed.push({ workerId, reason }),
    log: { info() {}, warn() {} },
  });
});
afterEach(async () => {
  await store.close();
  await removeDb();
});

async function enqueue(id: string, options: { executionTimeoutMs?: number; ttlMs?: number } = {}) {
  const now = clock.now();
  await store.enqueue({ id, endpoint: 'ep', input: { n: 1 }, createdAt: now, expiresAt: now + (options.ttlMs ?? 86_400_000), executionTimeoutMs: options.executionTimeoutMs ?? 600_000 });
}

async function takeAs(workerId: string, n = 1) {
  registry.recordTake(workerId);
  return store.claim('ep', workerId, n, clock.now());
}

test('a job past its execution timeout becomes TIMED_OUT and its worker is told through job-stop', async () => {
  registry.register({ workerId: 'w1', endpoint: 'ep', token: 't' });
  await enqueue('j1', { executionTimeoutMs: 5000 });
  await takeAs('w1');
  await clock.advance(5000);
  await supervisor.tick();
  assert.equal((await store.get('ep', 'j1'))!.status, 'IN_PROGRESS', 'exactly at the deadline is not past it');
  await clock.advance(1);
  await supervisor.tick();
  assert.equal((await store.get('ep', 'j1'))!.status, 'TIMED_OUT');
  assert.deepEqual(registry.takeStops('w1'), ['j1']);
  assert.ok(notified.includes('j1'));
  // A late result changes nothing.
  assert.equal(await store.finish('j1', 'w1', { output: 'late' }, clock.now(), clock.now() + 1000), undefined);
});

test('a worker still running a timed-out job after the grace period is killed; one that let go is not', async () => {
  registry.register({ workerId: 'stubborn', endpoint: 'ep', token: 't1' });
  registry.register({ workerId: 'polite', endpoint: 'ep', token: 't2' });
  await enqueue('a', { executionTimeoutMs: 5000 });
  await enqueue('b', { executionTimeoutMs: 5000 });
  await takeAs('stubborn');
  await takeAs('polite');
  await clock.advance(5001);
  await supervisor.tick();
  await clock.advance(SETTINGS.stopGraceMs - 1);
  registry.recordPing('stubborn', { jobIds: ['a'] });
  registry.recordPing('polite', { jobIds: [] });
  await supervisor.tick();
  assert.equal(killed.length, 0, 'not before the grace period ends');
  await clock.advance(1);
  await supervisor.tick();
  assert.deepEqual(killed.map((k) => k.workerId), ['stubborn']);
  assert.match(killed[0]!.reason, /still ran job a 10000 ms after its execution timeout/);
});

test('a queued job past its TTL becomes TIMED_OUT and is never handed out', async () => {
  await enqueue('old', { ttlMs: 60_000 });
  await clock.advance(60_001);
  await supervisor.tick();
  assert.equal((await store.get('ep', 'old'))!.status, 'TIMED_OUT');
  assert.deepEqual(await store.claim('ep', 'w', 1, clock.now()), []);
});

test('a worker that exits mid-job: the job goes back to the queue, then FAILED after maxAttempts naming the worker and the cause', async () => {
  registry.register({ workerId: 'w1', endpoint: 'ep', token: 't1' });
  await enqueue('crashy');
  await takeAs('w1');
  await supervisor.workerExited('w1', { code: null, signal: 'SIGKILL' });
  let job = (await store.get('ep', 'crashy'))!;
  assert.equal(job.status, 'IN_QUEUE');
  assert.equal(job.attempts, 1);
  assert.equal(registry.get('w1'), undefined, 'the dead worker is forgotten');

  registry.register({ workerId: 'w2', endpoint: 'ep', token: 't2' });
  await takeAs('w2');
  await supervisor.workerExited('w2', { code: 1, signal: null });
  job = (await store.get('ep', 'crashy'))!;
  assert.equal(job.status, 'FAILED');
  assert.match(job.error ?? '', /worker w2 exited with code 1 while running the job/);
});

test('a worker that holds a job and stops pinging is released and killed; an idle silent worker is left alone', async () => {
  registry.register({ workerId: 'silent', endpoint: 'ep', token: 't1' });
  registry.register({ workerId: 'idle', endpoint: 'ep', token: 't2' });
  await enqueue('j');
  await takeAs('silent');
  registry.recordTake('idle');
  await clock.advance(SETTINGS.pingTimeoutMs);
  await supervisor.tick();
  assert.equal(killed.length, 0, 'exactly at the timeout is not past it');
  await clock.advance(1);
  await supervisor.tick();
  assert.deepEqual(killed.map((k) => k.workerId), ['silent']);
  assert.match(killed[0]!.reason, /worker silent stopped pinging/);
  const job = (await store.get('ep', 'j'))!;
  assert.equal(job.status, 'IN_QUEUE');
});

test('pings keep a busy worker alive', async () => {
  registry.register({ workerId: 'w', endpoint: 'ep', token: 't' });
  await enqueue('long');
  await takeAs('w');
  for (let i = 0; i < 5; i++) {
    await clock.advance(20_000);
    registry.recordPing('w', { jobIds: ['long'] });
    await supervisor.tick();
  }
  assert.deepEqual(killed, []);
  assert.equal(registry.get('w')!.state, 'running');
});

test('finished results are deleted after their retention', async () => {
  registry.register({ workerId: 'w', endpoint: 'ep', token: 't' });
  await enqueue('done');
  await takeAs('w');
  await store.finish('done', 'w', { output: 1 }, clock.now(), clock.now() + 1000);
  await clock.advance(1001);
  await supervisor.tick();
  assert.equal(await store.get('ep', 'done'), undefined);
});

test('jobs of a worker no gateway knows (its gateway crashed) go back to the queue once unvouched for longer than pingTimeoutMs', async () => {
  // `orphan` was spawned by a gateway that died: this registry never heard of it.
  await enqueue('orphaned');
  await store.claim('ep', 'orphan', 1, clock.now());
  registry.register({ workerId: 'live', endpoint: 'ep', token: 't' });
  await enqueue('kept');
  await takeAs('live');
  for (let i = 0; i < 3; i++) {
    await clock.advance(SETTINGS.pingTimeoutMs / 2);
    registry.recordPing('live', { jobIds: ['kept'] });
    await supervisor.tick();
    if (i === 0) assert.equal((await store.get('ep', 'orphaned'))!.status, 'IN_PROGRESS', 'not before pingTimeoutMs');
  }
  const orphaned = (await store.get('ep', 'orphaned'))!;
  assert.equal(orphaned.status, 'IN_QUEUE');
  assert.equal(orphaned.attempts, 1);
  assert.ok(notified.includes('orphaned'));
  const kept = (await store.get('ep', 'kept'))!;
  assert.equal(kept.status, 'IN_PROGRESS', 'a live worker’s job stays with it, however long it runs');
  assert.equal(kept.workerId, 'live');
  assert.deepEqual(killed, []);
});

test('a job the worker never reports in its pings (lost take answer) goes back to the queue, attempt not counted', async () => {
  registry.register({ workerId: 'w', endpoint: 'ep', token: 't' });
  await enqueue('lost');
  await enqueue('kept');
  await takeAs('w', 2);
  // The worker keeps pinging, but only ever lists 'kept'.
  for (let elapsed = 0; elapsed <= SETTINGS.pingTimeoutMs; elapsed += 10_000) {
    registry.recordPing('w', { jobIds: ['kept'] });
    await supervisor.tick();
    assert.equal((await store.get('ep', 'lost'))!.status, 'IN_PROGRESS', `still held at +${elapsed} ms`);
    await clock.advance(10_000);
  }
  registry.recordPing('w', { jobIds: ['kept'] });
  await supervisor.tick();
  const lost = (await store.get('ep', 'lost'))!;
  assert.equal(lost.status, 'IN_QUEUE');
  assert.equal(lost.attempts, 0);
  assert.equal((await store.get('ep', 'kept'))!.status, 'IN_PROGRESS');
  assert.equal(killed.length, 0, 'the worker itself is fine');
});
