import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { ManualClock } from '@kiln/protocol';
import { defineWorker } from './define-worker.ts';
import { LOOP_TIMINGS } from './job-loop.ts';
import type { LoopbackJobServer } from './testing/loopback-job-server.ts';
import { useLoopbackServer } from './testing/use-loopback-server.ts';
import { startWorkerInProcess } from './testing/run-in-process.ts';

const useServer = useLoopbackServer();
let server: LoopbackJobServer;
beforeEach(() => {
  server = useServer();
});

const echo = defineWorker({ handler: (job) => job.input });

test('malformed job-take answers are logged and skipped, never a crash; the next good job still runs', async () => {
  server.cannedAnswer(
    'take',
    { status: 200, body: '{"input": {}}', contentType: 'application/json' },
    { status: 200, body: 'not json', contentType: 'application/json' },
    { status: 200, body: '{"id":"x","input":{}}', contentType: 'text/plain' },
    { status: 200, body: '', contentType: 'application/json' },
  );
  const w = startWorkerInProcess(echo, server);
  try {
    await server.waitFor(() => server.on('take').length >= 5, 10_000, 'five takes');
    server.enqueue({ id: 'good', input: { ok: true } });
    assert.deepEqual((await server.waitForResult('good')).body, { output: { ok: true } });
    const errors = w.logs.filter((l) => l['level'] === 'ERROR').map((l) => String(l['message']));
    assert.ok(errors.some((m) => /job-take answer skipped: .*id/.test(m)), 'missing id');
    assert.ok(errors.some((m) => /not JSON/.test(m)), 'not JSON');
    assert.ok(errors.some((m) => /text\/plain/.test(m)), 'wrong content type');
    assert.ok(errors.some((m) => /got 0 bytes/.test(m)), 'empty body');
    assert.equal(await Promise.race([w.exited.then(() => 'exited'), Promise.resolve('running')]), 'running');
  } finally {
    await w.stop();
  }
});

test('a batch answer with one bad item runs the good ones and logs the bad one', async () => {
  server.cannedAnswer('take-batch', {
    status: 200,
    body: JSON.stringify([{ id: 'g1', input: 1 }, { nope: true }, { id: 'g2', input: 2 }]),
    contentType: 'application/json',
  });
  const w = startWorkerInProcess(defineWorker({ concurrency: 3, handler: (job) => job.input }), server);
  try {
    assert.deepEqual((await server.waitForResult('g1')).body, { output: 1 });
    assert.deepEqual((await server.waitForResult('g2')).body, { output: 2 });
    assert.ok(w.logs.some((l) => /item 1 skipped/.test(String(l['message']))));
  } finally {
    await w.stop();
  }
});

test('429 on job-take makes the worker wait 5 s before the next take', async () => {
  const clock = new ManualClock();
  server.cannedAnswer('take', { status: 429 });
  const w = startWorkerInProcess(echo, server, { clock });
  try {
    await clock.waitForSleep(LOOP_TIMINGS.rateLimitWaitMs);
    assert.equal(server.on('take').length, 1, 'no take while waiting');
    await clock.advance(LOOP_TIMINGS.rateLimitWaitMs - 1);
    assert.equal(server.on('take').length, 1, 'still waiting just before 5 s');
    await clock.advance(1);
    await server.waitFor(() => server.on('take').length === 2);
  } finally {
    void clock.advance(600_000);
    await w.stop();
  }
});

test('5xx answers to job-take back off (doubling) instead of hot-looping', async () => {
  const clock = new ManualClock();
  server.cannedAnswer('take', { status: 500 }, { status: 502 }, { status: 503 });
  const w = startWorkerInProcess(echo, server, { clock });
  try {
    const [first] = LOOP_TIMINGS.takeErrorBackoffMs;
    for (const [i, wait] of [first, first * 2, first * 4].entries()) {
      await clock.waitForSleep(wait);
      assert.equal(server.on('take').length, i + 1, `take ${i + 1} then a ${wait} ms wait`);
      await clock.advance(wait);
    }
    await server.waitFor(() => server.on('take').length === 4);
    server.enqueue({ id: 'after-errors', input: 1 });
    await server.waitForResult('after-errors');
  } finally {
    void clock.advance(600_000);
    await w.stop();
  }
});

test('an empty take answered at once (a server that does not long-poll) is followed by a wait', async () => {
  const clock = new ManualClock();
  server.cannedAnswer('take', { status: 204 }, { status: 400 });
  const w = startWorkerInProcess(echo, server, { clock });
  try {
    await server.waitFor(() => server.on('take').length === 1);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.on('take').length, 1, 'no immediate second take');
    assert.ok(clock.pending().some((ms) => ms > 0 && ms <= LOOP_TIMINGS.minEmptyTakeMs));
    await clock.advance(LOOP_TIMINGS.minEmptyTakeMs);
    await server.waitFor(() => server.on('take').length === 2);
  } finally {
    void clock.advance(600_000);
    await w.stop();
  }
});

test('job-done answered 4xx is not retried; the failure is logged with the status', async () => {
  server.cannedAnswer('done', { status: 400, body: '{"error":"too big"}', contentType: 'application/json' });
  server.enqueue({ id: 'rejected', input: 1 });
  const w = startWorkerInProcess(echo, server);
  try {
    await server.waitFor(() => w.logs.some((l) => /Failed to return job result \| 400/.test(String(l['message']))));
    assert.equal(server.on('done').length, 1);
  } finally {
    await w.stop();
  }
});

test('concurrency 8 asks for batches of 8 and runs them at once', async () => {
  let running = 0;
  let peak = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  const worker = defineWorker({
    concurrency: 8,
    async handler() {
      running++;
      peak = Math.max(peak, running);
      if (running === 8) release();
      await gate;
      running--;
      return 'ok';
    },
  });
  server.enqueue(...Array.from({ length: 8 }, (_, i) => ({ id: `c${i}`, input: i })));
  const w = startWorkerInProcess(worker, server);
  try {
    await server.waitFor(() => server.resultCount === 8);
    assert.equal(peak, 8);
    assert.equal(server.on('take-batch')[0]!.query['batch_size'], '8');
  } finally {
    await w.stop();
  }
});

test('a worker whose key keeps being refused (401) exits with code 1 instead of living on as an orphan', async () => {
  const clock = new ManualClock();
  const refusals = Array.from({ length: LOOP_TIMINGS.maxAuthFailures }, () => ({ status: 401 }));
  server.cannedAnswer('take', ...refusals);
  const w = startWorkerInProcess(echo, server, { clock });
  let backoff: number = LOOP_TIMINGS.takeErrorBackoffMs[0];
  for (let i = 1; i < LOOP_TIMINGS.maxAuthFailures; i++) {
    await clock.waitForSleep(backoff);
    await clock.advance(backoff);
    backoff *= 2;
  }
  assert.equal(await w.exited, 1);
  assert.equal(server.on('take').length, LOOP_TIMINGS.maxAuthFailures);
  assert.ok(w.logs.some((l) => /refused this worker's key 5 times in a row \(401\): exiting/.test(String(l['message']))));
});

test('a refused key followed by a good answer resets the count', async () => {
  server.cannedAnswer('take', { status: 401 }, { status: 401 }, { status: 204 }, { status: 401 }, { status: 401 }, { status: 401 });
  const w = startWorkerInProcess(echo, server);
  try {
    await server.waitFor(() => server.on('take').length >= 7, 10_000, 'seven takes');
    server.enqueue({ id: 'still-alive', input: 1 });
    await server.waitForResult('still-alive');
  } finally {
    await w.stop();
  }
});
