import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { parseErrorString } from '@kiln/protocol';
import { ManualClock } from '@kiln/protocol';
import { defineWorker, JobAbortedError } from './define-worker.ts';
import type { LoopbackJobServer } from './testing/loopback-job-server.ts';
import { useLoopbackServer } from './testing/use-loopback-server.ts';
import { startWorkerInProcess } from './testing/run-in-process.ts';

const useServer = useLoopbackServer();
let server: LoopbackJobServer;
beforeEach(() => {
  server = useServer();
});

/** A handler that waits for its signal and records why it aborted. */
function abortable(seen: unknown[]) {
  return (_job: unknown, ctx: { signal: AbortSignal }) =>
    new Promise((_resolve, reject) =>
      ctx.signal.addEventListener('abort', () => {
        seen.push(ctx.signal.reason);
        reject(ctx.signal.reason);
      }),
    );
}

test("the job's execution timeout (policy.executionTimeout) aborts its signal and fails it with a timeout error", async () => {
  const clock = new ManualClock();
  const seen: unknown[] = [];
  const worker = defineWorker({ executionTimeoutMs: 600_000, handler: abortable(seen) });
  server.enqueue({ id: 'long', input: {}, policy: { executionTimeout: 45_000 } });
  const w = startWorkerInProcess(worker, server, { clock });
  try {
    await clock.waitForSleep(45_000);
    assert.equal(seen.length, 0, 'not aborted before its time');
    await clock.advance(45_000);
    const body = (await server.waitForResult('long')).body as { error: string };
    const info = parseErrorString(body.error)!;
    assert.equal(info.error_type, 'ExecutionTimeoutError');
    assert.match(info.error_message, /execution timeout of 45000 ms/);
    assert.ok(seen[0] instanceof JobAbortedError);
    assert.equal((seen[0] as JobAbortedError).kind, 'execution-timeout');
  } finally {
    void clock.advance(600_000);
    await w.stop();
  }
});

test("without a job policy the definition's executionTimeoutMs applies", async () => {
  const clock = new ManualClock();
  const seen: unknown[] = [];
  server.enqueue({ id: 'def', input: {} });
  const w = startWorkerInProcess(defineWorker({ executionTimeoutMs: 90_000, handler: abortable(seen) }), server, { clock });
  try {
    await clock.waitForSleep(90_000);
    await clock.advance(90_000);
    await server.waitForResult('def');
    assert.equal((seen[0] as JobAbortedError).kind, 'execution-timeout');
  } finally {
    void clock.advance(600_000);
    await w.stop();
  }
});

test('job-stop aborts the named job with cause job-stop and no job-done is sent for it', async () => {
  const seen: unknown[] = [];
  server.enqueue({ id: 'stop-me', input: {} });
  const stopMe = abortable(seen);
  const w = startWorkerInProcess(defineWorker({ handler: (job, ctx) => (job.id === 'stop-me' ? stopMe(job, ctx) : 'ok') }), server);
  try {
    await server.waitFor(() => server.on('take').some((r) => r.status === 200));
    server.stopJobs('stop-me');
    await server.waitFor(() => w.logs.some((l) => l['message'] === 'Job stopped.' && l['requestId'] === 'stop-me'));
    assert.equal((seen[0] as JobAbortedError).kind, 'job-stop');
    // The worker is free again: the next job runs and is reported; the stopped one never is.
    server.enqueue({ id: 'next', input: {} });
    assert.deepEqual((await server.waitForResult('next')).body, { output: 'ok' });
    assert.equal(server.result('stop-me'), undefined);
    assert.equal(server.on('done').filter((r) => r.path.endsWith('/stop-me')).length, 0);
  } finally {
    await w.stop();
  }
});

test('a handler that ignores its aborted signal is reported after abortGraceMs and the job still ends', async () => {
  const clock = new ManualClock();
  const worker = defineWorker({ abortGraceMs: 2500, handler: () => new Promise(() => {}) });
  server.enqueue({ id: 'stuck', input: {}, policy: { executionTimeout: 10_000 } });
  const w = startWorkerInProcess(worker, server, { clock });
  try {
    await clock.waitForSleep(10_000);
    await clock.advance(10_000);
    await clock.waitForSleep(2500);
    assert.equal(server.result('stuck'), undefined, 'waits for the grace period first');
    await clock.advance(2500);
    const body = (await server.waitForResult('stuck')).body as { error: string };
    assert.equal(parseErrorString(body.error)!.error_type, 'ExecutionTimeoutError');
    assert.ok(w.logs.some((l) => l['level'] === 'ERROR' && /did not settle within 2500 ms/.test(String(l['message']))));
    // And the slot is free again.
    server.enqueue({ id: 'after-stuck', input: {}, policy: { executionTimeout: 10_000 } });
    await server.waitFor(() => server.on('take').filter((r) => r.status === 200).length === 2);
  } finally {
    void clock.advance(600_000);
    await w.stop();
  }
});
