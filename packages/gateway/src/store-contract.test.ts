import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { JobRecord, JobStore, LogLine, NewJob, NewWebhookDelivery } from './job-store.ts';
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

function ids(jobs: readonly { id: string }[]): string[] {
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
          webhookEvents: ['start', 'completed'],
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
        webhookEvents: ['start', 'completed'],
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
        streamSeq: 0,
        progressSeq: 0,
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
      assert.deepEqual(job.webhookEvents, ['completed']);
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

    test('progressSeq counts the stored progress updates of a run: kept by a requeue, reset with streamSeq by retry', async () => {
      const job = await claimed('w1');
      assert.equal(job.progressSeq, 0);
      assert.equal(job.streamSeq, 0);
      assert.equal(await store.progress(job.id, 'w1', 'a'), true);
      assert.equal(await store.progress(job.id, 'w1', 'b'), true);
      assert.equal(await store.progress(job.id, 'intruder', 'x'), false);
      assert.equal(await store.appendStream(job.id, 'w1', ['c1', 'c2', 'c3']), true);
      const running = await store.get(job.endpoint, job.id);
      assert.equal(running?.progressSeq, 2, 'a refused update does not count');
      assert.equal(running?.output, 'b');
      assert.equal(running?.streamSeq, 3);

      // A requeued job keeps counting, so numbers handed out before stay unique within the run.
      const { requeued } = await store.releaseWorkerJobs('w1', 'gone', 5, T0 + 2000, T0 + RETAIN);
      assert.equal(requeued[0]?.progressSeq, 2);
      assert.equal('output' in requeued[0]!, false);
      await store.claim(job.endpoint, 'w2', 1, T0 + 3000);
      assert.equal(await store.progress(job.id, 'w2', 'c'), true);
      assert.equal((await store.get(job.endpoint, job.id))?.progressSeq, 3);

      const failed = await store.finish(job.id, 'w2', { error: 'boom' }, T0 + 4000, T0 + RETAIN);
      assert.equal(failed?.progressSeq, 3);
      assert.equal(await store.progress(job.id, 'w2', 'late'), false);
      assert.equal((await store.get(job.endpoint, job.id))?.progressSeq, 3, 'a late update does not count');

      const retried = await store.retry(job.endpoint, job.id, T0 + 5000, T0 + HOUR);
      assert.equal(retried?.progressSeq, 0);
      assert.equal(retried?.streamSeq, 0);
      await store.claim(job.endpoint, 'w3', 1, T0 + 6000);
      assert.equal(await store.progress(job.id, 'w3', 'again'), true);
      assert.equal((await store.get(job.endpoint, job.id))?.progressSeq, 1);
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
      const { job: queued } = await store.enqueue(newJob());
      const { job: low } = await store.enqueue(newJob({ policy: { lowPriority: true } }));
      const { job: elsewhere } = await store.enqueue(newJob({ endpoint: 'vfx' }));
      assert.deepEqual((await store.purgeQueue('tts', T0 + 2000, T0 + 2000 + RETAIN)).sort(), [queued.id, low.id].sort(), 'the ids of the jobs it cancelled');
      const counts = await store.counts('tts');
      assert.equal(counts.cancelled, 2);
      assert.equal(counts.inQueue, 0);
      assert.equal((await store.get('tts', running.id))?.status, 'IN_PROGRESS');
      assert.equal((await store.get('vfx', elsewhere.id))?.status, 'IN_QUEUE');
      assert.deepEqual(await store.purgeQueue('tts', T0 + 3000, T0 + RETAIN), []);
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

    test('listJobs: newest first (createdAt, then id, descending), one endpoint, summaries without input or output', async () => {
      for (const [id, createdAt] of [['b', T0 + 1], ['a', T0 + 1], ['old', T0 - 5], ['new', T0 + 9], ['c', T0 + 1]] as const) {
        await store.enqueue(newJob({ id, createdAt, endpoint: 'list' }));
      }
      await store.enqueue(newJob({ id: 'elsewhere', createdAt: T0 + 3, endpoint: 'other' }));
      const [taken] = await store.claim('list', 'w1', 1, T0 + 20);
      assert.equal(taken?.id, 'old');
      await store.finish('old', 'w1', { error: 'boom', output: 'partial' }, T0 + 30, T0 + RETAIN);

      const all = await store.listJobs({ endpoint: 'list', limit: 10 });
      assert.deepEqual(ids(all), ['new', 'c', 'b', 'a', 'old']);
      assert.deepEqual(all[4], {
        id: 'old',
        endpoint: 'list',
        status: 'FAILED',
        error: 'boom',
        workerId: 'w1',
        attempts: 1,
        retries: 0,
        createdAt: T0 - 5,
        queuedAt: T0 - 5,
        takenAt: T0 + 20,
        finishedAt: T0 + 30,
      });
      assert.deepEqual(await store.listJobs({ endpoint: 'nothing-here', limit: 10 }), []);
    });

    test('listJobs pages by cursor: no job twice, none skipped, unmoved by jobs added or deleted meanwhile', async () => {
      for (let i = 0; i < 23; i++) {
        // Pairs share a millisecond, so pages also split ties.
        await store.enqueue(newJob({ id: `p-${String(i).padStart(2, '0')}`, createdAt: T0 + Math.floor(i / 2), endpoint: 'pages', expiresAt: T0 + (i === 5 ? 10 : HOUR) }));
      }
      const seen: string[] = [];
      let after: { createdAt: number; id: string } | undefined;
      for (let page = 0; ; page++) {
        const jobs = await store.listJobs({ endpoint: 'pages', limit: 5, ...(after ? { after } : {}) });
        seen.push(...jobs.map((j) => j.id));
        if (jobs.length < 5) break;
        const last = jobs.at(-1)!;
        after = { createdAt: last.createdAt, id: last.id };
        if (page === 1) {
          await store.enqueue(newJob({ id: 'p-newest', createdAt: T0 + 100, endpoint: 'pages' }));
          assert.equal(await store.deleteExpired(T0 + 11), 1, 'p-05 expired');
        }
      }
      const expected = Array.from({ length: 23 }, (_, i) => `p-${String(22 - i).padStart(2, '0')}`).filter((id) => id !== 'p-05');
      assert.deepEqual(seen, expected);
    });

    test('listJobs filters by status, one or several, in listing order', async () => {
      for (let i = 0; i < 12; i++) await store.enqueue(newJob({ id: `s-${String(i).padStart(2, '0')}`, createdAt: T0 + i, endpoint: 'states' }));
      const claimedJobs = await store.claim('states', 'w1', 6, T0 + 100);
      assert.deepEqual(ids(claimedJobs), ['s-00', 's-01', 's-02', 's-03', 's-04', 's-05']);
      for (const id of ['s-00', 's-02', 's-04']) await store.finish(id, 'w1', { output: 1 }, T0 + 200, T0 + RETAIN);
      await store.finish('s-01', 'w1', { error: 'x' }, T0 + 200, T0 + RETAIN);
      await store.cancel('states', 's-11', T0 + 200, T0 + RETAIN);

      const list = async (statuses: JobRecord['status'][], limit = 20, after?: { createdAt: number; id: string }) =>
        ids((await store.listJobs({ endpoint: 'states', statuses, limit, ...(after ? { after } : {}) })));
      assert.deepEqual(await list(['COMPLETED']), ['s-04', 's-02', 's-00']);
      assert.deepEqual(await list(['IN_PROGRESS']), ['s-05', 's-03']);
      assert.deepEqual(await list(['IN_QUEUE', 'CANCELLED']), ['s-11', 's-10', 's-09', 's-08', 's-07', 's-06']);
      assert.deepEqual(await list(['COMPLETED', 'FAILED', 'IN_PROGRESS']), ['s-05', 's-04', 's-03', 's-02', 's-01', 's-00']);
      assert.deepEqual(await list(['COMPLETED', 'FAILED', 'IN_PROGRESS'], 2, { createdAt: T0 + 4, id: 's-04' }), ['s-03', 's-02']);
      assert.deepEqual(await list(['COMPLETED', 'COMPLETED']), ['s-04', 's-02', 's-00'], 'a state named twice counts once');
      assert.deepEqual(await list(['TIMED_OUT']), []);
      assert.deepEqual(await list([]), (await list(['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'])), 'no filter: every state');
    });

    /** A pending delivery of `jobId` (event `completed`, run 0 unless told otherwise), created at `createdAt`. */
    function delivery(id: string, jobId: string, createdAt: number, overrides: Partial<NewWebhookDelivery> = {}): NewWebhookDelivery {
      return {
        id,
        jobId,
        jobRun: 0,
        endpoint: 'tts',
        event: 'completed',
        url: 'https://hooks.test/h',
        payload: JSON.stringify({ id: jobId, status: 'COMPLETED', text: 'ünïcode ✓' }),
        createdAt,
        ...overrides,
      };
    }

    test('webhooks: jobsOwingWebhook lists finished jobs whose webhook wants completed and has no delivery for their run yet', async () => {
      const hook = 'https://hooks.test/h';
      const done = await claimed('w1', { webhook: hook });
      await store.finish(done.id, 'w1', { output: 1 }, T0 + 3000, T0 + RETAIN);
      const failed = await claimed('w2', { webhook: hook });
      await store.finish(failed.id, 'w2', { error: 'boom' }, T0 + 2000, T0 + RETAIN);
      await claimed('w3', { webhook: hook });
      const quiet = await claimed('w4');
      await store.finish(quiet.id, 'w4', { output: 1 }, T0 + 2000, T0 + RETAIN);
      const startOnly = await claimed('w5', { webhook: hook, webhookEvents: ['start'] });
      await store.finish(startOnly.id, 'w5', { output: 1 }, T0 + 2000, T0 + RETAIN);
      const { job: cancelled } = await store.enqueue(newJob({ webhook: hook, webhookEvents: ['progress', 'completed'] }));
      await store.cancel('tts', cancelled.id, T0 + 4000, T0 + RETAIN);
      const { job: expired } = await store.enqueue(newJob({ webhook: hook, expiresAt: T0 + 100 }));
      await store.expireQueued(T0 + 5000, T0 + RETAIN);

      assert.deepEqual(ids(await store.jobsOwingWebhook(0, 10)), [failed.id, done.id, cancelled.id, expired.id], 'oldest finishedAt first');
      assert.deepEqual(ids(await store.jobsOwingWebhook(0, 2)), [failed.id, done.id]);
      assert.deepEqual(ids(await store.jobsOwingWebhook(T0 + 3000, 10)), [done.id, cancelled.id, expired.id], 'finished at or after finishedSince');
      assert.deepEqual((await store.get(cancelled.endpoint, cancelled.id))?.webhookEvents, ['progress', 'completed']);

      assert.equal(await store.addWebhookDelivery(delivery('d-done', done.id, T0 + 6000, { endpoint: done.endpoint })), true);
      assert.equal(await store.addWebhookDelivery(delivery('d-done-again', done.id, T0 + 6001, { endpoint: done.endpoint })), false, 'one completed delivery per run');
      assert.deepEqual(ids(await store.jobsOwingWebhook(0, 10)), [failed.id, cancelled.id, expired.id]);
      // Other events may be many per run.
      assert.equal(await store.addWebhookDelivery(delivery('p1', cancelled.id, T0 + 6000, { event: 'progress' })), true);
      assert.equal(await store.addWebhookDelivery(delivery('p2', cancelled.id, T0 + 6000, { event: 'progress' })), true);
      assert.deepEqual(ids(await store.jobsOwingWebhook(0, 10)), [failed.id, cancelled.id, expired.id]);

      // A retried job that ends again is owed a new completed delivery, for its new run.
      await store.addWebhookDelivery(delivery('d-failed', failed.id, T0 + 6000, { endpoint: failed.endpoint }));
      await store.retry(failed.endpoint, failed.id, T0 + 7000, T0 + HOUR);
      assert.deepEqual(ids(await store.jobsOwingWebhook(0, 10)), [cancelled.id, expired.id]);
      await store.claim(failed.endpoint, 'w2', 1, T0 + 8000);
      const again = await store.finish(failed.id, 'w2', { output: 'ok' }, T0 + 9000, T0 + RETAIN);
      assert.equal(again?.retries, 1);
      assert.deepEqual(ids(await store.jobsOwingWebhook(0, 10)), [cancelled.id, expired.id, failed.id]);
      assert.equal(await store.addWebhookDelivery(delivery('d-failed-run1', failed.id, T0 + 9500, { endpoint: failed.endpoint, jobRun: 1 })), true);
      assert.deepEqual(ids(await store.jobsOwingWebhook(0, 10)), [cancelled.id, expired.id]);
    });

    test('webhooks: deleteExpired keeps a finished job owing its completed webhook until the delivery is queued; the delivery outlives the job', async () => {
      const owing = await claimed('w1', { webhook: 'https://hooks.test/h' });
      await store.finish(owing.id, 'w1', { output: 'kept for the hook' }, T0 + 2000, T0 + 5000);
      const notWanted = await claimed('w2', { webhook: 'https://hooks.test/h', webhookEvents: ['output'] });
      await store.finish(notWanted.id, 'w2', { output: 1 }, T0 + 2000, T0 + 5000);

      assert.equal(await store.deleteExpired(T0 + 10_000), 1, 'only the job whose webhook does not want completed');
      assert.equal(await store.get(notWanted.endpoint, notWanted.id), undefined);
      assert.equal((await store.get(owing.endpoint, owing.id))?.output, 'kept for the hook');

      await store.addWebhookDelivery(delivery('d1', owing.id, T0 + 10_000, { endpoint: owing.endpoint }));
      assert.equal(await store.deleteExpired(T0 + 10_000), 1);
      assert.equal(await store.get(owing.endpoint, owing.id), undefined);
      assert.deepEqual(await store.jobsOwingWebhook(0, 10), [], 'a deleted job owes nothing more');
      const [claimedDelivery] = await store.claimWebhookDeliveries(T0 + 10_000, 10, T0 + 20_000);
      assert.equal(claimedDelivery?.id, 'd1');
      assert.equal(claimedDelivery?.payload, delivery('d1', owing.id, 0).payload, 'the payload is a copy');
    });

    test('webhooks: claimWebhookDeliveries takes due pending deliveries, oldest due first, and leases them until leaseUntil', async () => {
      await store.addWebhookDelivery(delivery('d2', 'j2', T0 + 2));
      await store.addWebhookDelivery(delivery('d1', 'j1', T0 + 1));
      await store.addWebhookDelivery(delivery('later', 'j3', T0 + 5000));
      assert.deepEqual(await store.claimWebhookDeliveries(T0, 10, T0 + 1000), [], 'nothing due yet');

      const first = await store.claimWebhookDeliveries(T0 + 10, 1, T0 + 1000);
      assert.deepEqual(first, [{ ...delivery('d1', 'j1', T0 + 1), state: 'pending', attempts: 1, nextAttemptAt: T0 + 1000, lastError: null, lastStatus: null, deliveredAt: null }]);
      assert.deepEqual(ids(await store.claimWebhookDeliveries(T0 + 10, 10, T0 + 1000)), ['d2']);
      assert.deepEqual(await store.claimWebhookDeliveries(T0 + 999, 10, T0 + 2000), [], 'leased');
      assert.deepEqual(await store.claimWebhookDeliveries(T0 + 999, 0, T0 + 2000), []);

      // A gateway that died mid-attempt never reports: the lease runs out and the delivery is due again.
      const retaken = await store.claimWebhookDeliveries(T0 + 1000, 10, T0 + 3000);
      assert.deepEqual(ids(retaken), ['d1', 'd2']);
      assert.deepEqual(retaken.map((d) => d.attempts), [2, 2]);
      assert.deepEqual(await store.claimWebhookDeliveries(T0 + 2999, 10, T0 + 9000), []);
      assert.deepEqual(ids(await store.claimWebhookDeliveries(T0 + 5000, 10, T0 + 9000)), ['d1', 'd2', 'later'], 'in creation order');
    });

    test('webhooks: attempt reports are guarded by the attempt number; the last failed attempt leaves it failed, and kept', async () => {
      await store.addWebhookDelivery(delivery('d', 'j', T0));
      await store.claimWebhookDeliveries(T0, 1, T0 + 100);
      const failure = { error: 'HTTP 503: busy', httpStatus: 503, retryAt: T0 + 5000, maxAttempts: 3 };
      const retrying = await store.markWebhookAttemptFailed('d', 1, failure);
      assert.deepEqual(
        { state: retrying?.state, attempts: retrying?.attempts, next: retrying?.nextAttemptAt, error: retrying?.lastError, status: retrying?.lastStatus },
        { state: 'pending', attempts: 1, next: T0 + 5000, error: 'HTTP 503: busy', status: 503 },
      );
      assert.deepEqual(await store.claimWebhookDeliveries(T0 + 4999, 10, T0 + 9000), []);

      // Attempt 2 is taken over after its lease by attempt 3: attempt 2's late reports change nothing.
      await store.claimWebhookDeliveries(T0 + 5000, 1, T0 + 6000);
      await store.claimWebhookDeliveries(T0 + 6000, 1, T0 + 7000);
      assert.equal(await store.markWebhookDelivered('d', 2, T0 + 6500, 200), false);
      assert.equal(await store.markWebhookAttemptFailed('d', 2, { ...failure, retryAt: T0 + 6500 }), undefined);
      assert.equal(await store.markWebhookDelivered('unknown', 1, T0, 200), false);

      const failed = await store.markWebhookAttemptFailed('d', 3, { error: 'timed out after 10000 ms', httpStatus: null, retryAt: T0 + 99_000, maxAttempts: 3 });
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.attempts, 3);
      assert.equal(failed?.lastStatus, null);
      assert.equal(failed?.lastError, 'timed out after 10000 ms');
      assert.deepEqual(await store.claimWebhookDeliveries(T0 + HOUR, 10, T0 + 2 * HOUR), [], 'a failed delivery is not retried');
      assert.equal(await store.markWebhookDelivered('d', 3, T0 + 7000, 200), false, 'nor delivered afterwards');
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', state: 'failed', limit: 10 })), ['d']);
      assert.equal(await store.pruneWebhookDeliveries(T0 + 10 * HOUR), 0, 'failed deliveries are kept');
    });

    test('webhooks: delivered on a 2xx; releaseWebhookDelivery gives back an unfinished attempt; redeliverWebhook starts over', async () => {
      await store.addWebhookDelivery(delivery('ok', 'j1', T0));
      await store.addWebhookDelivery(delivery('stopped', 'j2', T0));
      await store.claimWebhookDeliveries(T0, 10, T0 + 1000);
      await store.markWebhookAttemptFailed('ok', 1, { error: 'HTTP 500', httpStatus: 500, retryAt: T0 + 100, maxAttempts: 8 });
      await store.claimWebhookDeliveries(T0 + 100, 10, T0 + 200);
      assert.equal(await store.markWebhookDelivered('ok', 2, T0 + 150, 204), true);
      assert.equal(await store.markWebhookDelivered('ok', 2, T0 + 150, 204), false, 'once');
      const [listed] = await store.listWebhookDeliveries({ endpoint: 'tts', state: 'delivered', limit: 10 });
      assert.deepEqual(
        { id: listed?.id, attempts: listed?.attempts, at: listed?.deliveredAt, status: listed?.lastStatus, error: listed?.lastError },
        { id: 'ok', attempts: 2, at: T0 + 150, status: 204, error: null },
      );
      assert.equal('payload' in listed!, false, 'listings carry no payload');

      assert.equal(await store.releaseWebhookDelivery('stopped', 1, T0 + 120), true);
      const [back] = await store.claimWebhookDeliveries(T0 + 120, 10, T0 + 1000);
      assert.equal(back?.id, 'stopped');
      assert.equal(back?.attempts, 1, 'the released attempt did not count');

      const again = await store.redeliverWebhook('ok', T0 + 500);
      assert.deepEqual(
        { state: again?.state, attempts: again?.attempts, next: again?.nextAttemptAt, deliveredAt: again?.deliveredAt },
        { state: 'pending', attempts: 0, next: T0 + 500, deliveredAt: null },
      );
      assert.deepEqual(ids(await store.claimWebhookDeliveries(T0 + 500, 10, T0 + 600)), ['ok']);
      assert.equal(await store.redeliverWebhook('unknown', T0), undefined);
    });

    test('webhooks: listWebhookDeliveries shows one endpoint newest first, optionally in one state; pruning drops old delivered ones only', async () => {
      await store.addWebhookDelivery(delivery('a', 'j1', T0 + 1));
      await store.addWebhookDelivery(delivery('b', 'j2', T0 + 2));
      await store.addWebhookDelivery(delivery('c', 'j3', T0 + 3));
      await store.addWebhookDelivery(delivery('other', 'j4', T0 + 4, { endpoint: 'vfx' }));
      await store.claimWebhookDeliveries(T0 + 10, 10, T0 + 20);
      await store.markWebhookDelivered('a', 1, T0 + 11, 200);
      await store.markWebhookDelivered('other', 1, T0 + 11, 200);
      await store.markWebhookAttemptFailed('b', 1, { error: 'x', httpStatus: 400, retryAt: T0 + 20, maxAttempts: 1 });

      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', limit: 10 })), ['c', 'b', 'a']);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', limit: 2 })), ['c', 'b']);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', state: 'pending', limit: 10 })), ['c']);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', state: 'failed', limit: 10 })), ['b']);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', state: 'delivered', limit: 10 })), ['a']);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'none', limit: 10 })), []);

      assert.equal(await store.pruneWebhookDeliveries(T0 + 11), 0, 'delivered at the cut-off, not before');
      assert.equal(await store.pruneWebhookDeliveries(T0 + 12), 2);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', limit: 10 })), ['c', 'b']);
    });

    test('webhooks: listWebhookDeliveries with jobId shows that job\'s deliveries only, of that endpoint, optionally in one state', async () => {
      await store.addWebhookDelivery(delivery('a', 'j1', T0 + 1));
      await store.addWebhookDelivery(delivery('b', 'j2', T0 + 2));
      await store.addWebhookDelivery(delivery('c', 'j1', T0 + 3, { event: 'progress' }));
      await store.addWebhookDelivery(delivery('d', 'j1', T0 + 4, { endpoint: 'vfx', event: 'progress' }));
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', jobId: 'j1', limit: 10 })), ['c', 'a']);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', jobId: 'j1', limit: 1 })), ['c']);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', jobId: 'j1', state: 'pending', limit: 10 })), ['c', 'a']);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', jobId: 'j1', state: 'failed', limit: 10 })), []);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'vfx', jobId: 'j1', limit: 10 })), ['d']);
      assert.deepEqual(ids(await store.listWebhookDeliveries({ endpoint: 'tts', jobId: 'nope', limit: 10 })), []);
    });

    test('finishedTimings: jobs of one endpoint that ended since a time, newest end first, up to a limit; running and queued ones are not listed', async () => {
      const { job: early } = await store.enqueue(newJob());
      const { job: done } = await store.enqueue(newJob());
      const { job: failed } = await store.enqueue(newJob());
      const { job: cancelled } = await store.enqueue(newJob());
      const { job: running } = await store.enqueue(newJob());
      await store.enqueue(newJob()); // stays queued
      await store.enqueue(newJob({ endpoint: 'vfx' }));
      const taken = await store.claim('tts', 'w1', 4, T0 + 100);
      assert.deepEqual(ids(taken), [early.id, done.id, failed.id, cancelled.id]);
      await store.claim('vfx', 'w2', 1, T0 + 100);
      await store.finish(early.id, 'w1', { output: 1 }, T0 + 500, T0 + HOUR);
      await store.finish(done.id, 'w1', { output: 2 }, T0 + 2000, T0 + HOUR);
      await store.finish(failed.id, 'w1', { error: 'boom' }, T0 + 3000, T0 + HOUR);
      await store.cancel('tts', cancelled.id, T0 + 4000, T0 + HOUR);
      await store.claim('tts', 'w3', 1, T0 + 100);

      const listed = await store.finishedTimings({ endpoint: 'tts', since: T0 + 1000, limit: 10 });
      assert.deepEqual(ids(listed), [cancelled.id, failed.id, done.id]);
      assert.deepEqual(
        listed.map((j) => [j.status, j.queuedAt, j.takenAt, j.finishedAt]),
        [
          ['CANCELLED', T0, T0 + 100, T0 + 4000],
          ['FAILED', T0, T0 + 100, T0 + 3000],
          ['COMPLETED', T0, T0 + 100, T0 + 2000],
        ],
      );
      assert.deepEqual(ids(await store.finishedTimings({ endpoint: 'tts', since: T0 + 1000, limit: 2 })), [cancelled.id, failed.id]);
      assert.deepEqual(ids(await store.finishedTimings({ endpoint: 'tts', since: T0 + 2000, limit: 10 })), [cancelled.id, failed.id, done.id], 'since is inclusive');
      assert.deepEqual(ids(await store.finishedTimings({ endpoint: 'tts', since: T0, limit: 10 })), [cancelled.id, failed.id, done.id, early.id]);
      assert.deepEqual(ids(await store.finishedTimings({ endpoint: 'vfx', since: T0, limit: 10 })), []);
      assert.ok(!ids(await store.finishedTimings({ endpoint: 'tts', since: 0, limit: 10 })).includes(running.id));
    });

    test('webhooks: gateways claiming deliveries together never get the same one', async () => {
      const total = 120;
      for (let i = 0; i < total; i++) await store.addWebhookDelivery(delivery(`d-${i}`, `j-${i}`, T0 + i));
      const gateways = await Promise.all(Array.from({ length: 6 }, () => openAnother()));
      const seen = new Map<string, number>();
      await Promise.all(
        gateways.map(async (gateway, n) => {
          for (let round = 0; ; round++) {
            const claimedNow = await gateway.claimWebhookDeliveries(T0 + HOUR, 1 + ((n + round) % 5), T0 + 2 * HOUR);
            if (claimedNow.length === 0) return;
            for (const d of claimedNow) {
              assert.equal(seen.has(d.id), false, `${d.id} claimed by gateways ${seen.get(d.id)} and ${n}`);
              seen.set(d.id, n);
            }
          }
        }),
      );
      assert.equal(seen.size, total);
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
