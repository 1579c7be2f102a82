import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import type { EndpointOverview } from '@kiln/protocol';
import { LAST_HOUR_MS, percentiles } from './admin-views.ts';
import { createTestGateway, TEST_API_KEY, type TestGateway } from './test-gateway.ts';

let gw: TestGateway;
beforeEach(async () => {
  gw = await createTestGateway({
    config: {
      endpoints: {
        echo: { worker: { command: 'node worker.js' }, workersMin: 1, workersMax: 3, idleTimeout: 7, gpu: { types: ['NVIDIA RTX 4090'], count: 2 } },
        quiet: { worker: { command: 'node worker.js' } },
      },
      gateway: { apiKeys: [TEST_API_KEY] },
    },
  });
});
afterEach(() => gw.close());

async function overview(): Promise<EndpointOverview[]> {
  const res = await gw.request('/kiln/v1/endpoints', { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { endpoints: EndpointOverview[] }).endpoints;
}

test('percentiles are nearest-rank p50/p95, null without values', () => {
  assert.equal(percentiles([]), null);
  assert.deepEqual(percentiles([7]), { p50: 7, p95: 7 });
  assert.deepEqual(percentiles([40, 10, 30, 20]), { p50: 20, p95: 40 });
  assert.deepEqual(percentiles(Array.from({ length: 100 }, (_, i) => i + 1)), { p50: 50, p95: 95 });
});

test('GET /kiln/v1/endpoints: every configured endpoint with its settings, job counts and workers by state', async () => {
  const worker = gw.addWorker({ workerId: 'w1' });
  gw.addWorker({ workerId: 'w2' });
  const first = await gw.run({ n: 1 });
  await gw.run({ n: 2 });
  await worker.take();
  await worker.done(first, { output: 'ok' });
  await gw.run({ n: 3 }, {}, 'quiet');

  const [echo, quiet] = await overview();
  assert.deepEqual(
    { ...echo!, lastHour: undefined },
    {
      name: 'echo',
      workersMin: 1,
      workersMax: 3,
      idleTimeout: 7,
      executionTimeoutMs: echo!.executionTimeoutMs,
      gpu: { types: ['NVIDIA RTX 4090'], count: 2 },
      models: [],
      jobs: { inQueue: 1, inProgress: 0, completed: 1, failed: 0, cancelled: 0, timedOut: 0 },
      workers: { initializing: 1, idle: 1, running: 0, draining: 0, unhealthy: 0, stopped: 0 },
      lastHour: undefined,
    },
  );
  assert.equal(typeof echo!.executionTimeoutMs, 'number');
  assert.equal(quiet!.name, 'quiet');
  assert.equal(quiet!.gpu, null);
  assert.equal(quiet!.jobs.inQueue, 1);
  assert.deepEqual(quiet!.lastHour, { finished: 0, failed: 0, delayTime: null, executionTime: null });
});

test('lastHour counts jobs that ended in the last hour, failures among them, and p50/p95 of their delay and execution times', async () => {
  const worker = gw.addWorker();
  // One job that ends more than an hour before the overview: not counted.
  const old = await gw.run({ old: true });
  await worker.take();
  await worker.done(old, { output: 1 });
  await gw.clock.advance(LAST_HOUR_MS + 1);

  // Jobs i = 1..4: queued for 100·i ms, running for 1000·i ms; the 4th fails.
  for (let i = 1; i <= 4; i++) {
    const id = await gw.run({ i });
    await gw.clock.advance(100 * i);
    await worker.take();
    await gw.clock.advance(1000 * i);
    await worker.done(id, i === 4 ? { error: 'boom' } : { output: i });
  }
  // Cancelled before it started: ended, but has no times.
  const cancelled = await gw.run({ never: true });
  await gw.client(`cancel/${cancelled}`, { method: 'POST' });
  // Still running: not ended.
  await gw.run({ running: true });
  await worker.take();

  const [echo] = await overview();
  assert.deepEqual(echo!.lastHour, {
    finished: 5,
    failed: 1,
    delayTime: { p50: 200, p95: 400 },
    executionTime: { p50: 2000, p95: 4000 },
  });
  assert.equal(echo!.jobs.inProgress, 1);
});
