import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import type { MetricsResponse, MetricsSample } from '@kiln/protocol';
import { METRICS_INTERVAL_MS, METRICS_WINDOW_MS } from './metrics-sampler.ts';
import { createTestGateway, TEST_API_KEY, type TestGateway } from './test-gateway.ts';

let gw: TestGateway;
beforeEach(async () => {
  gw = await createTestGateway();
});
afterEach(() => gw.close());

async function metrics(endpoint = 'echo'): Promise<{ status: number; body: MetricsResponse }> {
  const res = await gw.request(`/kiln/v1/endpoints/${endpoint}/metrics`, { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
  return { status: res.status, body: (await res.json()) as MetricsResponse };
}

/** Lets the sampling loop take its sample and go back to sleep. */
async function nextSample(): Promise<void> {
  await gw.clock.advance(METRICS_INTERVAL_MS);
  await gw.clock.waitForSleep(METRICS_INTERVAL_MS);
}

test('samples every endpoint at start and then every 5 s on the clock: queue, in progress, live and running workers', async () => {
  const t0 = gw.clock.now();
  const worker = gw.addWorker({ workerId: 'w1' });
  gw.addWorker({ workerId: 'w2' });
  await gw.run({ a: 1 });
  await gw.run({ a: 2 });
  gw.metrics.start();
  await gw.clock.waitForSleep(METRICS_INTERVAL_MS);
  assert.deepEqual((await metrics()).body, { intervalMs: METRICS_INTERVAL_MS, samples: [{ t: t0, inQueue: 2, inProgress: 0, workers: 2, running: 0 }] });

  await worker.take();
  gw.registry.setHeldCount('w1', 1);
  await nextSample();
  assert.deepEqual((await metrics()).body.samples, [
    { t: t0, inQueue: 2, inProgress: 0, workers: 2, running: 0 },
    { t: t0 + METRICS_INTERVAL_MS, inQueue: 1, inProgress: 1, workers: 2, running: 1 },
  ]);
  await gw.metrics.stop();
  assert.deepEqual(gw.clock.pending(), [], 'stop() leaves no sleep behind');
});

test('keeps only the last hour, oldest first', async () => {
  gw.metrics.start();
  await gw.clock.waitForSleep(METRICS_INTERVAL_MS);
  const perHour = METRICS_WINDOW_MS / METRICS_INTERVAL_MS;
  for (let i = 0; i < perHour + 10; i++) await nextSample();
  const { samples } = (await metrics()).body;
  const now = gw.clock.now();
  assert.equal(samples.length, perHour + 1, 'an hour of samples, both ends included');
  assert.equal(samples[0]!.t, now - METRICS_WINDOW_MS);
  assert.equal(samples.at(-1)!.t, now);
  assert.ok(samples.every((s, i) => i === 0 || s.t === samples[i - 1]!.t + METRICS_INTERVAL_MS));
});

test('subscribers hear each new sample with its endpoint until they unsubscribe', async () => {
  const heard: [string, MetricsSample][] = [];
  const unsubscribe = gw.metrics.subscribe((endpoint, sample) => heard.push([endpoint, sample]));
  await gw.metrics.sample();
  assert.deepEqual(heard, [['echo', { t: gw.clock.now(), inQueue: 0, inProgress: 0, workers: 0, running: 0 }]]);
  unsubscribe();
  await gw.metrics.sample();
  assert.equal(heard.length, 1);
  assert.equal(gw.metrics.subscribers, 0);
});

test('GET metrics of an unknown endpoint is a JSON 404', async () => {
  const { status, body } = await metrics('nope');
  assert.equal(status, 404);
  assert.deepEqual(body, { error: 'endpoint nope not found', code: 'endpoint_not_found' });
});
