import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { JobRecord, JobStore, LogLine, NewJob } from './job-store.ts';
import { openPostgresStore } from './postgres-store.ts';
import { openSqliteStore } from './sqlite-store.ts';
import { freshPostgresSchema, postgresTestGate, tempSqlitePath } from './test-databases.ts';
import type { TempSqlitePath, TestSchema } from './test-databases.ts';

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;
const TIMEOUT = 60_000;
const RETAIN = 30 * 60_000;

let jobCounter = 0;

/** A new job of endpoint `tts` created at T0, unless told otherwise. */
function newJob(overrides: Partial<NewJob> = {}): NewJob {
  jobCounter += 1;
  return {
    id: `job-${String(jobCounter).padStart(5, '0')}`,
    endpoint: 'tts',
    input: { text: `hello ${jobCounter}` },
    createdAt: T0,
    expiresAt: T0 + HOUR,
    executionTimeoutMs: TIMEOUT,
    ...overrides,
  };
}

function ids(jobs: readonly JobRecord[]): string[] {
  return jobs.map((j) => j.id);
}

/** Resolves with the next endpoint the store reports as having claimable jobs. */
function nextWakeUp(store: JobStore, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no onJobsAvailable call within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = store.onJobsAvailable((endpoint) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(endpoint);
    });
  });
}

/**
 * The behaviour every JobStore adapter must have. `open` opens a store on the current test's
 * database; calling it again opens another store on the same database (another gateway).
 */
export function defineContract(name: string, open: () => Promise<JobStore>): void {
  describe(name, () => {
    let store: JobStore;
    let others: JobStore[] = [];

    async function openAnother(): Promise<JobStore> {
      const another = await open();
      others.push(another);
      return another;
    }

    /** Enqueues a job and claims it for `workerId` at `now`. */
    async function claimed(workerId = 'w1', overrides: Partial<NewJob> = {}, now = T0 + 1000): Promise<JobRecord> {
      const { job } = await store.enqueue(newJob({ endpoint: `claimed-${workerId}`, ...overrides }));
      const [taken] = await store.claim(job.endpoint, workerId, 1, now);
      assert.equal(taken?.id, job.id);
      return taken;
    }

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await Promise.all([store, ...others].map((s) => s.close()));
      others = [];
    });

    test('migrate is idempotent', async () => {
      await store.migrate();
      await store.migrate();
      await (await openAnother()).migrate();
    });

    test('enqueue stores an IN_QUEUE job with every field; get finds it only on its endpoint', async () => {
      const { job, created } = await store.enqueue(
        newJob({
          id: 'a',
          input: { prompt: 'x', n: [1, 2, { deep: true }] },
          webhook: 'https://example.test/hook',
          policy: { executionTimeout: 5000, ttl: 60_000, lowPriority: true },
          s3Config: { accessId: 'id', accessSecret: 'secret', bucketName: 'b', endpointUrl: 'https://s3.test' },
          executionTimeoutMs: 5000,
          expiresAt: T0 + 60_000,
          idempotencyKey: 'key-1',
        }),
      );
      assert.equal(created, true);
      const expected: JobRecord = {
        id: 'a',
        endpoint: 'tts',
        status: 'IN_QUEUE',
        input: { prompt: 'x', n: [1, 2, { deep: true }] },
        webhook: 'https://example.test/hook',
        policy: { executionTimeout: 5000, ttl: 60_000, lowPriority: true },
        s3Config: { accessId: 'id', accessSecret: 'secret', bucketName: 'b', endpointUrl: 'https://s3.test' },
        error: null,
        workerId: null,
        attempts: 0,
        retries: 0,
        lowPriority: true,
        createdAt: T0,
        queuedAt: T0,
        takenAt: null,
        finishedAt: null,
        expiresAt: T0 + 60_000,
        executionDeadline: null,
        executionTimeoutMs: 5000,
        retainUntil: null,
        idempotencyKey: 'key-1',
      };
      assert.deepEqual(job, expected);
      assert.equal('output' in job, false, 'no output key before any output');
      assert.deepEqual(await store.get('tts', 'a'), expected);
      assert.equal(await store.get('other', 'a'), undefined);
      assert.equal(await store.get('tts', 'unknown'), undefined);
    });

    test('defaults: no webhook, empty policy, no s3Config, not lowPriority; a null input stays null', async () => {
      const { job } = await store.enqueue(newJob({ input: null }));
      assert.equal(job.input, null);
      assert.equal(job.webhook, null);
      assert.deepEqual(job.policy, {});
      assert.equal(job.s3Config, null);
      assert.equal(job.lowPriority, false);
      assert.equal(job.idempotencyKey, null);
      assert.equal((await store.get('tts', job.id))?.input, null);
    });

    test('an idempotency key already used on the endpoint returns the existing job with created=false', async () => {
      const first = await store.enqueue(newJob({ idempotencyKey: 'k' }));
      const again = await store.enqueue(newJob({ idempotencyKey: 'k', input: 'different' }));
      assert.equal(again.created, false);
      assert.deepEqual(again.job, first.job);
      const elsewhere = await store.enqueue(newJob({ idempotencyKey: 'k', endpoint: 'vfx' }));
      assert.equal(elsewhere.created, true, 'keys are per endpoint');
      const noKey1 = await store.enqueue(newJob());
      const noKey2 = await store.enqueue(newJob());
      assert.equal(noKey1.created && noKey2.created, true, 'jobs without a key never collide');
      assert.equal((await store.counts('tts')).inQueue, 3);
    });

    test('claim takes the oldest queuedAt first, lowPriority only after the others, and sets the claim fields', async () => {
      await store.enqueue(newJob({ id: 'low-oldest', createdAt: T0 - 5000, policy: { lowPriority: true } }));
      await store.enqueue(newJob({ id: 'b', createdAt: T0 + 2 }));
      await store.enqueue(newJob({ id: 'a', createdAt: T0 + 1 }));
      await store.enqueue(newJob({ id: 'c', createdAt: T0 + 3 }));
      await store.enqueue(newJob({ id: 'other-endpoint', endpoint: 'vfx', createdAt: T0 - 9000 }));

      const now = T0 + 10_000;
      const first = await store.claim('tts', 'w1', 2, now);
      assert.deepEqual(ids(first), ['a', 'b']);
      for (const job of first) {
        assert.equal(job.status, 'IN_PROGRESS');
        assert.equal(job.workerId, 'w1');
        assert.equal(job.takenAt, now);
        assert.equal(job.executionDeadline, now + TIMEOUT);
        assert.equal(job.attempts, 1);
      }
      assert.deepEqual(ids(await store.claim('tts', 'w2', 5, now)), ['c', 'low-oldest']);
      assert.deepEqual(await store.claim('tts', 'w3', 5, now), []);
      assert.deepEqual(await store.claim('vfx', 'w3', 0, now), [], 'limit 0 claims nothing');
      assert.equal((await store.get('vfx', 'other-endpoint'))?.status, 'IN_QUEUE');
    });

    test('claim skips jobs past expiresAt', async () => {
      await store.enqueue(newJob({ id: 'expired', expiresAt: T0 + 100 }));
      await store.enqueue(newJob({ id: 'fresh', expiresAt: T0 + HOUR }));
      assert.deepEqual(ids(await store.claim('tts', 'w1', 10, T0 + 101)), ['fresh']);
      assert.equal((await store.get('tts', 'expired'))?.status, 'IN_QUEUE');
    });

    test('concurrent claimers on separate connections never get the same job', async () => {
      const total = 200;
      for (let i = 0; i < total; i++) await store.enqueue(newJob({ id: `c-${i}`, createdAt: T0 + i }));
      const claimers = await Promise.all(Array.from({ length: 10 }, () => openAnother()));
      const seen = new Map<string, string>();
      await Promise.all(
        claimers.map(async (claimer, n) => {
          const workerId = `w${n}`;
          for (let round = 0; ; round++) {
            const jobs = await claimer.claim('tts', workerId, 1 + ((n + round) % 4), T0 + 1000);
            if (jobs.length === 0) return;
            for (const job of jobs) {
              assert.equal(seen.has(job.id), false, `${job.id} claimed by ${seen.get(job.id)} and ${workerId}`);
              assert.equal(job.workerId, workerId);
              seen.set(job.id, workerId);
            }
          }
        }),
      );
      assert.equal(seen.size, total);
      const counts = await store.counts('tts');
      assert.equal(counts.inProgress, total);
      assert.equal(counts.inQueue, 0);
      const held = (await Promise.all(claimers.map((_, n) => store.heldBy(`w${n}`)))).flat();
      assert.equal(held.length, total);
      assert.ok(held.every((j) => j.attempts === 1));
    });

    test('progress stores the output only while the job is held by that worker', async () => {
      const job = await claimed('w1');
      assert.equal(await store.progress(job.id, 'w1', { percent: 50 }), true);
      assert.deepEqual((await store.get(job.endpoint, job.id))?.output, { percent: 50 });
      assert.equal(await store.progress(job.id, 'intruder', { percent: 99 }), false);
      assert.deepEqual((await store.get(job.endpoint, job.id))?.output, { percent: 50 });
      assert.equal(await store.progress('unknown', 'w1', 1), false);
    });

    test('finish completes, or fails when an error is set; only the holder can finish, and only once', async () => {
      const job = await claimed('w1');
      assert.equal(await store.finish(job.id, 'intruder', { output: 'stolen' }, T0 + 2000, T0 + RETAIN), undefined);
      const done = await store.finish(job.id, 'w1', { output: { audio: 'x.wav' } }, T0 + 2000, T0 + 2000 + RETAIN);
      assert.equal(done?.status, 'COMPLETED');
      assert.deepEqual(done?.output, { audio: 'x.wav' });
      assert.equal(done?.error, null);
      assert.equal(done?.finishedAt, T0 + 2000);
      assert.equal(done?.retainUntil, T0 + 2000 + RETAIN);
      assert.equal(done?.workerId, 'w1');

      assert.equal(await store.finish(job.id, 'w1', { error: 'late duplicate' }, T0 + 3000, T0 + RETAIN), undefined);
      assert.equal(await store.progress(job.id, 'w1', 'late progress'), false);
      assert.deepEqual(await store.get(job.endpoint, job.id), done, 'nothing changed');

      const other = await claimed('w2');
      const failed = await store.finish(other.id, 'w2', { error: 'CUDA out of memory' }, T0 + 2000, T0 + RETAIN);
      assert.equal(failed?.status, 'FAILED');
      assert.equal(failed?.error, 'CUDA out of memory');
      assert.equal('output' in (failed ?? {}), false);

      const withBoth = await claimed('w3');
      const failedWithOutput = await store.finish(withBoth.id, 'w3', { output: { partial: true }, error: 'boom' }, T0 + 2000, T0 + RETAIN);
      assert.equal(failedWithOutput?.status, 'FAILED');
      assert.deepEqual(failedWithOutput?.output, { partial: true });
    });

    test('a final output of null is kept apart from no output; finishing without output drops the progress value', async () => {
      const a = await claimed('w1');
      assert.equal(await store.progress(a.id, 'w1', 'halfway'), true);
      const nullOutput = await store.finish(a.id, 'w1', { output: null }, T0 + 2000, T0 + RETAIN);
      assert.equal(nullOutput?.output, null);
      assert.equal('output' in (nullOutput ?? {}), true);

      const b = await claimed('w2');
      assert.equal(await store.progress(b.id, 'w2', 'halfway'), true);
      const noOutput = await store.finish(b.id, 'w2', {}, T0 + 2000, T0 + RETAIN);
      assert.equal(noOutput?.status, 'COMPLETED');
      assert.equal('output' in (noOutput ?? {}), false);
    });

    test('a finish after cancel or timeout returns undefined and changes nothing', async () => {
      const job = await claimed('w1');
      const cancelled = await store.cancel(job.endpoint, job.id, T0 + 1500, T0 + RETAIN);
      assert.equal(cancelled?.changed, true);
      assert.equal(await store.finish(job.id, 'w1', { output: 'late' }, T0 + 2000, T0 + RETAIN), undefined);
      assert.equal(await store.progress(job.id, 'w1', 'late'), false);
      assert.equal(await store.appendStream(job.id, 'w1', ['late']), false);
      assert.deepEqual(await store.get(job.endpoint, job.id), cancelled?.job);

      const slow = await claimed('w2', { executionTimeoutMs: 500 }, T0 + 1000);
      const [timedOut] = await store.timeOutExecutions(T0 + 1501, T0 + RETAIN);
      assert.equal(timedOut?.id, slow.id);
      assert.equal(await store.finish(slow.id, 'w2', { output: 'late' }, T0 + 2000, T0 + RETAIN), undefined);
      assert.deepEqual(await store.get(slow.endpoint, slow.id), timedOut);
    });

    test('appendStream numbers chunks from 1 in order; streamChunks reads after a seq', async () => {
      const job = await claimed('w1');
      assert.equal(await store.appendStream(job.id, 'w1', ['a', { b: 2 }]), true);
      assert.equal(await store.appendStream(job.id, 'w1', []), true, 'an empty append is fine while held');
      assert.equal(await store.appendStream(job.id, 'w1', [null, 3]), true);
      assert.deepEqual(await store.streamChunks(job.id, 0), [
        { seq: 1, output: 'a' },
        { seq: 2, output: { b: 2 } },
        { seq: 3, output: null },
        { seq: 4, output: 3 },
      ]);
      assert.deepEqual(await store.streamChunks(job.id, 2), [
        { seq: 3, output: null },
        { seq: 4, output: 3 },
      ]);
      assert.deepEqual(await store.streamChunks(job.id, 4), []);
      assert.deepEqual(await store.streamChunks('unknown', 0), []);

      assert.equal(await store.appendStream(job.id, 'intruder', ['x']), false);
      await store.finish(job.id, 'w1', {}, T0 + 2000, T0 + RETAIN);
      assert.equal(await store.appendStream(job.id, 'w1', ['after the end']), false);
      assert.equal((await store.streamChunks(job.id, 0)).length, 4);
    });

    test('concurrent appends to one job get distinct, gapless numbers', async () => {
      const job = await claimed('w1');
      const writers = [store, ...(await Promise.all([openAnother(), openAnother()]))];
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => writers[i % writers.length]!.appendStream(job.id, 'w1', [`${i}a`, `${i}b`])),
      );
      const chunks = await store.streamChunks(job.id, 0);
      assert.deepEqual(
        chunks.map((c) => c.seq),
        Array.from({ length: 60 }, (_, i) => i + 1),
      );
      for (let i = 0; i < 30; i++) {
        const a = chunks.find((c) => c.output === `${i}a`);
        const b = chunks.find((c) => c.output === `${i}b`);
        assert.equal(b!.seq, a!.seq + 1, 'the chunks of one append stay together');
      }
    });

    test('cancel: queued or in progress → CANCELLED; a final job comes back unchanged; unknown → undefined', async () => {
      const { job: queued } = await store.enqueue(newJob());
      const first = await store.cancel('tts', queued.id, T0 + 500, T0 + 500 + RETAIN);
      assert.equal(first?.changed, true);
      assert.equal(first?.job.status, 'CANCELLED');
      assert.equal(first?.job.finishedAt, T0 + 500);
      assert.equal(first?.job.retainUntil, T0 + 500 + RETAIN);
      const second = await store.cancel('tts', queued.id, T0 + 900, T0 + 900 + RETAIN);
      assert.deepEqual(second, { job: first?.job, changed: false });

      const running = await claimed('w1');
      const stopped = await store.cancel(running.endpoint, running.id, T0 + 1500, T0 + RETAIN);
      assert.equal(stopped?.changed, true);
      assert.equal(stopped?.job.status, 'CANCELLED');
      assert.equal(stopped?.job.workerId, 'w1', 'the caller still knows which worker to stop');

      const done = await claimed('w2');
      const completed = await store.finish(done.id, 'w2', { output: 1 }, T0 + 2000, T0 + RETAIN);
      assert.deepEqual(await store.cancel(done.endpoint, done.id, T0 + 3000, T0 + RETAIN), { job: completed, changed: false });

      assert.equal(await store.cancel('tts', 'unknown', T0, T0), undefined);
      assert.equal(await store.cancel('wrong-endpoint', queued.id, T0, T0), undefined);
    });

    test('retry keeps the id, bumps retries, clears output, error, worker and stream, and queues it again', async () => {
      const job = await claimed('w1');
      await store.appendStream(job.id, 'w1', ['chunk']);
      await store.progress(job.id, 'w1', 'half');
      await store.finish(job.id, 'w1', { error: 'boom', output: 'partial' }, T0 + 2000, T0 + RETAIN);

      const retried = await store.retry(job.endpoint, job.id, T0 + 5000, T0 + 5000 + HOUR);
      assert.ok(retried);
      assert.equal(retried.id, job.id);
      assert.equal(retried.status, 'IN_QUEUE');
      assert.equal(retried.retries, 1);
      assert.equal(retried.error, null);
      assert.equal('output' in retried, false);
      assert.equal(retried.workerId, null);
      assert.equal(retried.queuedAt, T0 + 5000);
      assert.equal(retried.expiresAt, T0 + 5000 + HOUR);
      assert.equal(retried.takenAt, null);
      assert.equal(retried.finishedAt, null);
      assert.equal(retried.executionDeadline, null);
      assert.equal(retried.retainUntil, null);
      assert.equal(retried.createdAt, job.createdAt);
      assert.deepEqual(retried.input, job.input);
      assert.deepEqual(await store.streamChunks(job.id, 0), []);

      const [again] = await store.claim(job.endpoint, 'w2', 1, T0 + 6000);
      assert.equal(again?.id, job.id);
      assert.equal(await store.appendStream(job.id, 'w2', ['new']), true);
      assert.deepEqual(await store.streamChunks(job.id, 0), [{ seq: 1, output: 'new' }], 'numbering restarts with the new run');
      assert.equal((await store.counts(job.endpoint)).retried, 1);
    });

    test('retry applies only to FAILED or TIMED_OUT jobs of that endpoint', async () => {
      const { job: queued } = await store.enqueue(newJob());
      assert.equal(await store.retry('tts', queued.id, T0, T0 + HOUR), undefined);
      const running = await claimed('w1');
      assert.equal(await store.retry(running.endpoint, running.id, T0, T0 + HOUR), undefined);
      await store.finish(running.id, 'w1', { output: 'ok' }, T0 + 2000, T0 + RETAIN);
      assert.equal(await store.retry(running.endpoint, running.id, T0 + 3000, T0 + HOUR), undefined, 'COMPLETED');
      assert.equal((await store.get(running.endpoint, running.id))?.status, 'COMPLETED');

      const slow = await claimed('w2', { executionTimeoutMs: 10 });
      await store.timeOutExecutions(T0 + 5000, T0 + RETAIN);
      assert.equal(await store.retry('wrong-endpoint', slow.id, T0 + 6000, T0 + HOUR), undefined);
      assert.equal((await store.retry(slow.endpoint, slow.id, T0 + 6000, T0 + HOUR))?.status, 'IN_QUEUE', 'TIMED_OUT');
      assert.equal(await store.retry('tts', 'unknown', T0, T0 + HOUR), undefined);
    });

    test('purgeQueue cancels the queued jobs of one endpoint only', async () => {
      const running = await claimed('w1', { endpoint: 'tts' });
      await store.enqueue(newJob());
      await store.enqueue(newJob({ policy: { lowPriority: true } }));
      const { job: elsewhere } = await store.enqueue(newJob({ endpoint: 'vfx' }));
      assert.equal(await store.purgeQueue('tts', T0 + 2000, T0 + 2000 + RETAIN), 2);
      const counts = await store.counts('tts');
      assert.equal(counts.cancelled, 2);
      assert.equal(counts.inQueue, 0);
      assert.equal((await store.get('tts', running.id))?.status, 'IN_PROGRESS');
      assert.equal((await store.get('vfx', elsewhere.id))?.status, 'IN_QUEUE');
      assert.equal(await store.purgeQueue('tts', T0 + 3000, T0 + RETAIN), 0);
    });

    test('timeOutExecutions times out IN_PROGRESS jobs past their executionDeadline, not before', async () => {
      const job = await claimed('w1', { executionTimeoutMs: 500 }, T0 + 1000);
      const queued = (await store.enqueue(newJob({ expiresAt: T0 + 1 }))).job;
      assert.deepEqual(await store.timeOutExecutions(T0 + 1500, T0 + RETAIN), [], 'at the deadline it is not past yet');
      const [timedOut, ...rest] = await store.timeOutExecutions(T0 + 1501, T0 + 1501 + RETAIN);
      assert.equal(rest.length, 0);
      assert.equal(timedOut?.id, job.id);
      assert.equal(timedOut?.status, 'TIMED_OUT');
      assert.equal(timedOut?.finishedAt, T0 + 1501);
      assert.equal(timedOut?.retainUntil, T0 + 1501 + RETAIN);
      assert.equal(timedOut?.workerId, 'w1');
      assert.deepEqual(await store.timeOutExecutions(T0 + 9999, T0 + RETAIN), []);
      assert.equal((await store.get('tts', queued.id))?.status, 'IN_QUEUE', 'queued jobs have no execution deadline');
    });

    test('expireQueued times out IN_QUEUE jobs past expiresAt', async () => {
      const { job: old } = await store.enqueue(newJob({ expiresAt: T0 + 100 }));
      const { job: young } = await store.enqueue(newJob({ expiresAt: T0 + HOUR }));
      const running = await claimed('w1', { expiresAt: T0 + 1001 }, T0 + 1000);
      assert.deepEqual(await store.expireQueued(T0 + 100, T0 + RETAIN), []);
      const expired = await store.expireQueued(T0 + 2000, T0 + 2000 + RETAIN);
      assert.deepEqual(ids(expired), [old.id]);
      assert.equal(expired[0]?.status, 'TIMED_OUT');
      assert.equal(expired[0]?.finishedAt, T0 + 2000);
      assert.equal(expired[0]?.retainUntil, T0 + 2000 + RETAIN);
      assert.equal((await store.get('tts', young.id))?.status, 'IN_QUEUE');
      assert.equal((await store.get(running.endpoint, running.id))?.status, 'IN_PROGRESS');
    });

    test('releaseWorkerJobs requeues a dead worker’s jobs keeping attempts, then fails them after maxAttempts', async () => {
      const endpoint = 'tts';
      const { job } = await store.enqueue(newJob({ endpoint }));
      await store.claim(endpoint, 'w1', 1, T0 + 1000);
      await store.progress(job.id, 'w1', 'half');
      const other = await claimed('w-other');

      const first = await store.releaseWorkerJobs('w1', 'worker w1 stopped pinging', 2, T0 + 5000, T0 + 5000 + RETAIN);
      assert.deepEqual(first.failed, []);
      assert.equal(first.requeued.length, 1);
      const requeued = first.requeued[0]!;
      assert.equal(requeued.id, job.id);
      assert.equal(requeued.status, 'IN_QUEUE');
      assert.equal(requeued.workerId, null);
      assert.equal(requeued.queuedAt, T0 + 5000);
      assert.equal(requeued.attempts, 1);
      assert.equal(requeued.takenAt, null);
      assert.equal(requeued.executionDeadline, null);
      assert.equal('output' in requeued, false, 'the dead attempt’s progress is gone');

      const [second] = await store.claim(endpoint, 'w2', 1, T0 + 6000);
      assert.equal(second?.attempts, 2);
      const last = await store.releaseWorkerJobs('w2', 'worker w2 exited with code 137', 2, T0 + 7000, T0 + 7000 + RETAIN);
      assert.deepEqual(last.requeued, []);
      assert.equal(last.failed.length, 1);
      const failed = last.failed[0]!;
      assert.equal(failed.status, 'FAILED');
      assert.equal(failed.error, 'worker w2 exited with code 137');
      assert.equal(failed.attempts, 2);
      assert.equal(failed.finishedAt, T0 + 7000);
      assert.equal(failed.retainUntil, T0 + 7000 + RETAIN);

      assert.deepEqual(await store.releaseWorkerJobs('w2', 'again', 2, T0 + 8000, T0 + RETAIN), { requeued: [], failed: [] });
      assert.equal((await store.get(other.endpoint, other.id))?.status, 'IN_PROGRESS', 'other workers keep their jobs');
    });

    test('releaseAbandonedJobs releases the jobs nobody vouched for since silentSince; a claim or markWorkerAlive vouches', async () => {
      for (const id of ['a1', 'a2', 'a3']) await store.enqueue(newJob({ id, endpoint: 'ab', createdAt: T0 + Number(id[1]) }));
      await store.claim('ab', 'orphan', 1, T0 + 1000);
      await store.claim('ab', 'alive', 1, T0 + 1000);
      await store.claim('ab', 'late', 1, T0 + 4000);
      assert.deepEqual(ids(await store.markWorkerAlive('alive', T0 + 4000)), ['a2']);
      assert.deepEqual(await store.markWorkerAlive('nobody', T0 + 4000), []);

      const reason = 'was not heard from (its gateway crashed) while running the job';
      assert.deepEqual(await store.releaseAbandonedJobs(T0 + 1000, reason, 2, T0 + 5000, T0 + RETAIN), { requeued: [], failed: [] }, 'exactly silentSince is not before it');
      const wake = nextWakeUp(store);
      const first = await store.releaseAbandonedJobs(T0 + 3000, reason, 2, T0 + 5000, T0 + 5000 + RETAIN);
      assert.equal(await wake, 'ab', 'requeued jobs wake the takers');
      assert.deepEqual(ids(first.requeued), ['a1'], 'only the job nobody vouched for since T0 + 3000');
      assert.deepEqual(first.failed, []);
      assert.equal(first.requeued[0]!.workerId, null);
      assert.equal(first.requeued[0]!.queuedAt, T0 + 5000);
      assert.equal(first.requeued[0]!.attempts, 1);
      assert.deepEqual(ids(await store.heldBy('alive')), ['a2']);
      assert.deepEqual(ids(await store.heldBy('late')), ['a3']);

      await store.claim('ab', 'orphan2', 1, T0 + 6000);
      const last = await store.releaseAbandonedJobs(T0 + 9000, reason, 2, T0 + 9000, T0 + 9000 + RETAIN);
      assert.deepEqual(ids(last.requeued), ['a2', 'a3']);
      assert.equal(last.failed.length, 1);
      assert.equal(last.failed[0]!.id, 'a1');
      assert.equal(last.failed[0]!.status, 'FAILED');
      assert.equal(last.failed[0]!.error, `worker orphan2 ${reason}`);
      assert.equal(last.failed[0]!.finishedAt, T0 + 9000);
      assert.equal(last.failed[0]!.retainUntil, T0 + 9000 + RETAIN);
    });

    test('unclaim puts jobs still held by the worker back with attempts − 1 and their place in the queue', async () => {
      for (const id of ['u1', 'u2', 'u3']) await store.enqueue(newJob({ id, createdAt: T0 + Number(id[1]) }));
      assert.deepEqual(ids(await store.claim('tts', 'w1', 3, T0 + 1000)), ['u1', 'u2', 'u3']);
      assert.equal(await store.unclaim(['u1', 'u2'], 'intruder'), 0);
      assert.equal(await store.unclaim([], 'w1'), 0);
      assert.equal(await store.unclaim(['u1', 'u2', 'unknown'], 'w1'), 2);
      const back = await store.get('tts', 'u1');
      assert.equal(back?.status, 'IN_QUEUE');
      assert.equal(back?.attempts, 0);
      assert.equal(back?.workerId, null);
      assert.equal(back?.takenAt, null);
      assert.equal(back?.queuedAt, T0 + 1);
      assert.equal(await store.unclaim(['u1'], 'w1'), 0, 'no longer held');
      assert.deepEqual(ids(await store.heldBy('w1')), ['u3']);
      assert.deepEqual(ids(await store.claim('tts', 'w2', 5, T0 + 2000)), ['u1', 'u2']);
    });

    test('heldBy lists the IN_PROGRESS jobs of a worker by id', async () => {
      for (const id of ['h3', 'h1', 'h2']) await store.enqueue(newJob({ id, endpoint: 'held' }));
      await store.claim('held', 'w1', 3, T0 + 1000);
      await store.finish('h2', 'w1', {}, T0 + 2000, T0 + RETAIN);
      assert.deepEqual(ids(await store.heldBy('w1')), ['h1', 'h3']);
      assert.deepEqual(await store.heldBy('nobody'), []);
    });

    test('deleteExpired removes finished jobs past retainUntil and any job past expiresAt, with their stream', async () => {
      const finished = await claimed('w1', { expiresAt: T0 + HOUR });
      await store.appendStream(finished.id, 'w1', ['x']);
      await store.finish(finished.id, 'w1', { output: 1 }, T0 + 2000, T0 + 5000);
      const kept = await claimed('w2', { expiresAt: T0 + HOUR });
      await store.finish(kept.id, 'w2', { output: 1 }, T0 + 2000, T0 + 50_000);
      const { job: stale } = await store.enqueue(newJob({ expiresAt: T0 + 9000 }));
      const { job: live } = await store.enqueue(newJob({ expiresAt: T0 + HOUR }));
      const running = await claimed('w3', { expiresAt: T0 + 9000 });

      assert.equal(await store.deleteExpired(T0 + 5000), 0, 'at retainUntil it is not past yet');
      assert.equal(await store.deleteExpired(T0 + 10_000), 3);
      assert.equal(await store.get(finished.endpoint, finished.id), undefined);
      assert.deepEqual(await store.streamChunks(finished.id, 0), []);
      assert.equal(await store.get('tts', stale.id), undefined);
      assert.equal(await store.get(running.endpoint, running.id), undefined);
      assert.equal((await store.get(kept.endpoint, kept.id))?.status, 'COMPLETED');
      assert.equal((await store.get('tts', live.id))?.status, 'IN_QUEUE');
      assert.equal(await store.deleteExpired(T0 + 10_000), 0);
    });

    test('queueStats agrees with counts on what scaling needs, lowPriority excluded', async () => {
      assert.deepEqual(await store.queueStats('tts'), { inQueueScalable: 0, oldestQueuedAt: null, inProgress: 0 });
      await store.enqueue(newJob({ createdAt: T0 - 3000 }));
      await store.enqueue(newJob({ createdAt: T0 - 2000 }));
      await store.enqueue(newJob({ createdAt: T0 - 9000, policy: { lowPriority: true } }));
      await store.enqueue(newJob({ createdAt: T0 - 1000 }));
      await store.claim('tts', 'w1', 1, T0);
      const stats = await store.queueStats('tts');
      const counts = await store.counts('tts');
      assert.deepEqual(stats, { inQueueScalable: counts.inQueueScalable, oldestQueuedAt: counts.oldestQueuedAt, inProgress: counts.inProgress });
      assert.deepEqual(stats, { inQueueScalable: 2, oldestQueuedAt: T0 - 2000, inProgress: 1 });
    });

    test('jobs queued in the same millisecond are claimed first in, first out', async () => {
      const queued = [];
      for (let i = 0; i < 20; i++) queued.push((await store.enqueue(newJob({ createdAt: T0 }))).job);
      const claimedIds = [];
      for (let i = 0; i < 20; i++) claimedIds.push(...ids(await store.claim('tts', 'w1', 1, T0 + 1)));
      assert.deepEqual(claimedIds, ids(queued));
    });

    test('a queued job timed out by its TTL stays readable (TIMED_OUT) until its retention ends', async () => {
      const { job } = await store.enqueue(newJob({ expiresAt: T0 + 1000 }));
      assert.deepEqual(ids(await store.expireQueued(T0 + 1001, T0 + 60_000)), [job.id]);
      assert.equal(await store.deleteExpired(T0 + 2000), 0);
      assert.equal((await store.get('tts', job.id))?.status, 'TIMED_OUT');
      assert.equal(await store.deleteExpired(T0 + 60_001), 1);
      assert.equal(await store.get('tts', job.id), undefined);
    });

    test('counts per endpoint; oldestQueuedAt and inQueueScalable ignore lowPriority jobs', async () => {
      const empty = await store.counts('tts');
      assert.deepEqual(empty, {
        inQueue: 0,
        inProgress: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
        timedOut: 0,
        retried: 0,
        oldestQueuedAt: null,
        inQueueScalable: 0,
      });
      const [toRun, toComplete, toFail, toTimeOut, toCancel] = await Promise.all(
        [60_000, 60_000, 60_000, 1, 60_000].map(async (executionTimeoutMs, i) => {
          const { job } = await store.enqueue(newJob({ createdAt: T0 - 5000 + i, executionTimeoutMs }));
          return job;
        }),
      );
      assert.deepEqual(ids(await store.claim('tts', 'w1', 5, T0 + 1000)), ids([toRun!, toComplete!, toFail!, toTimeOut!, toCancel!]));
      await store.finish(toComplete!.id, 'w1', { output: 1 }, T0 + 2000, T0 + HOUR);
      await store.finish(toFail!.id, 'w1', { error: 'x' }, T0 + 2000, T0 + HOUR);
      await store.cancel('tts', toCancel!.id, T0 + 2000, T0 + HOUR);
      assert.deepEqual(ids(await store.timeOutExecutions(T0 + 1002, T0 + HOUR)), [toTimeOut!.id]);
      await store.retry('tts', toFail!.id, T0 + 3000, T0 + HOUR);
      await store.enqueue(newJob({ createdAt: T0 - 900, policy: { lowPriority: true } }));
      await store.enqueue(newJob({ createdAt: T0 - 500 }));
      await store.enqueue(newJob({ createdAt: T0 - 100 }));
      await store.enqueue(newJob({ endpoint: 'vfx', createdAt: T0 - 9999 }));

      assert.deepEqual(await store.counts('tts'), {
        inQueue: 4,
        inProgress: 1,
        completed: 1,
        failed: 0,
        cancelled: 1,
        timedOut: 1,
        retried: 1,
        oldestQueuedAt: T0 - 500,
        inQueueScalable: 3,
      });
    });

    test('logs: stored in order, read by endpoint, worker or job, after a seq, up to a limit', async () => {
      const line = (workerId: string, jobId: string | null, text: string, endpoint = 'tts'): LogLine => ({
        endpoint,
        workerId,
        jobId,
        stream: text.startsWith('err') ? 'stderr' : 'stdout',
        time: T0,
        line: text,
      });
      await store.appendLogs([line('w1', null, 'boot'), line('w1', 'j1', 'out j1'), line('w2', 'j2', 'err j2')]);
      await store.appendLogs([]);
      await store.appendLogs([line('w1', 'j1', 'done j1'), line('w9', null, 'other endpoint', 'vfx')]);

      const all = await store.readLogs({ endpoint: 'tts' });
      assert.deepEqual(
        all.map((l) => l.line),
        ['boot', 'out j1', 'err j2', 'done j1'],
      );
      const seqs = all.map((l) => l.seq!);
      assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'seq increases');
      assert.deepEqual(all[2], { seq: seqs[2], endpoint: 'tts', workerId: 'w2', jobId: 'j2', stream: 'stderr', time: T0, line: 'err j2' });

      assert.deepEqual((await store.readLogs({ endpoint: 'tts', workerId: 'w1' })).map((l) => l.line), ['boot', 'out j1', 'done j1']);
      assert.deepEqual((await store.readLogs({ endpoint: 'tts', jobId: 'j1' })).map((l) => l.line), ['out j1', 'done j1']);
      assert.deepEqual((await store.readLogs({ endpoint: 'tts', workerId: 'w2', jobId: 'j1' })).map((l) => l.line), []);
      assert.deepEqual((await store.readLogs({ endpoint: 'tts', workerId: 'w1', jobId: 'j1' })).map((l) => l.line), ['out j1', 'done j1']);
      assert.deepEqual((await store.readLogs({ endpoint: 'tts', afterSeq: seqs[1] })).map((l) => l.line), ['err j2', 'done j1']);
      assert.deepEqual((await store.readLogs({ endpoint: 'tts', limit: 2 })).map((l) => l.line), ['boot', 'out j1']);
      assert.deepEqual(
        (await store.readLogs({ endpoint: 'tts', workerId: 'w1', afterSeq: seqs[0], limit: 1 })).map((l) => l.line),
        ['out j1'],
      );
      assert.deepEqual((await store.readLogs({ endpoint: 'vfx', workerId: 'w1' })).map((l) => l.line), []);
    });

    test('onJobsAvailable fires on enqueue, retry, unclaim and requeue; unsubscribing stops it', async () => {
      const heard: string[] = [];
      const unsubscribe = store.onJobsAvailable((endpoint) => heard.push(endpoint));

      let wake = nextWakeUp(store);
      await store.enqueue(newJob({ id: 'n1', endpoint: 'tts' }));
      assert.equal(await wake, 'tts');

      await store.claim('tts', 'w1', 1, T0 + 1000);
      wake = nextWakeUp(store);
      await store.unclaim(['n1'], 'w1');
      assert.equal(await wake, 'tts');

      await store.claim('tts', 'w1', 1, T0 + 1000);
      wake = nextWakeUp(store);
      await store.releaseWorkerJobs('w1', 'gone', 5, T0 + 2000, T0 + RETAIN);
      assert.equal(await wake, 'tts');

      await store.claim('tts', 'w2', 1, T0 + 3000);
      await store.finish('n1', 'w2', { error: 'x' }, T0 + 4000, T0 + RETAIN);
      wake = nextWakeUp(store);
      await store.retry('tts', 'n1', T0 + 5000, T0 + HOUR);
      assert.equal(await wake, 'tts');

      unsubscribe();
      assert.deepEqual(heard, ['tts', 'tts', 'tts', 'tts']);
      wake = nextWakeUp(store);
      await store.enqueue(newJob({ endpoint: 'vfx' }));
      assert.equal(await wake, 'vfx');
      assert.equal(heard.length, 4, 'the unsubscribed listener heard nothing more');
    });
  });
}

describe('SQLite store', () => {
  let database: TempSqlitePath;
  beforeEach(async () => {
    database = await tempSqlitePath();
  });
  afterEach(async () => {
    await database.remove();
  });

  defineContract('contract', () => openSqliteStore({ path: database.path }));

  test('creates the folder of its file, and works in memory', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kiln-store-'));
    try {
      const file = path.join(dir, 'nested', 'deeper', 'jobs.db');
      const store = await openSqliteStore({ path: file });
      await store.enqueue(newJob({ id: 'persisted' }));
      await store.close();
      assert.ok((await stat(file)).isFile());
      const reopened = await openSqliteStore({ path: file });
      assert.equal((await reopened.get('tts', 'persisted'))?.status, 'IN_QUEUE');
      await reopened.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const memory = await openSqliteStore({ path: ':memory:' });
    await memory.enqueue(newJob({ id: 'm' }));
    assert.equal((await memory.get('tts', 'm'))?.id, 'm');
    await memory.close();
  });
});

const gate = await postgresTestGate();

if (!gate.run && gate.fail) {
  test('PostgreSQL store', () => assert.fail(gate.message));
} else {
  describe('PostgreSQL store', { skip: gate.run ? false : gate.message }, () => {
    let database: TestSchema;
    beforeEach(async () => {
      database = await freshPostgresSchema();
    });
    afterEach(async () => {
      await database.drop();
    });

    const open = () => openPostgresStore({ url: database.url, schema: database.schema });

    defineContract('contract', open);

    test('another gateway on the same schema hears an enqueue; one on another schema does not', async () => {
      const elsewhere = await freshPostgresSchema();
      const [first, second, stranger] = await Promise.all([
        open(),
        open(),
        openPostgresStore({ url: elsewhere.url, schema: elsewhere.schema }),
      ]);
      try {
        const strangerHeard: string[] = [];
        stranger.onJobsAvailable((endpoint) => strangerHeard.push(endpoint));
        const heard = nextWakeUp(second);
        const heardByStrangerFirst = nextWakeUp(stranger);
        await first.enqueue(newJob({ endpoint: 'tts' }));
        assert.equal(await heard, 'tts');
        // The stranger's own enqueue arrives after any cross-talk would have, on the same listener.
        await stranger.enqueue(newJob({ endpoint: 'own' }));
        assert.equal(await heardByStrangerFirst, 'own');
        assert.deepEqual(strangerHeard, ['own']);
      } finally {
        await Promise.all([first.close(), second.close(), stranger.close()]);
        await elsewhere.drop();
      }
    });

    test('gateways starting together on a new schema migrate it once', async () => {
      const stores = await Promise.all(Array.from({ length: 4 }, () => open()));
      try {
        const { job } = await stores[0]!.enqueue(newJob());
        assert.equal((await stores[3]!.get('tts', job.id))?.id, job.id);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });

    test('refuses a schema name that is not a plain lower-case identifier', async () => {
      await assert.rejects(openPostgresStore({ url: database.url, schema: 'Bad"Name' }), /lower-case letters/);
      await assert.rejects(openPostgresStore({ url: database.url, schema: 'x'.repeat(60) }), /at most 43 characters/);
    });
  });
}
