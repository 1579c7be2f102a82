import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import type { JobDetail, JobStreamResponse, WebhookDeliveryView } from '@kiln/protocol';
import { createTestGateway, TEST_API_KEY, type TestGateway } from './test-gateway.ts';

let gw: TestGateway;
beforeEach(async () => {
  gw = await createTestGateway({
    config: { endpoints: { echo: { worker: { command: 'node worker.js' } }, other: { worker: { command: 'node worker.js' } } }, gateway: { apiKeys: [TEST_API_KEY] } },
  });
});
afterEach(() => gw.close());

const admin = (path: string) => gw.request(`/kiln/v1/${path}`, { headers: { authorization: `Bearer ${TEST_API_KEY}` } });

test('GET jobs/:id/stream returns the chunks after `after` without consuming them, and where to go on', async () => {
  const worker = gw.addWorker();
  const id = await gw.run({ text: 'hi' });
  await worker.take();
  for (const output of ['a', 'b', 'c']) await worker.stream(id, output);
  const read = async (query: string) => {
    const res = await admin(`endpoints/echo/jobs/${id}/stream${query}`);
    assert.equal(res.status, 200);
    return (await res.json()) as JobStreamResponse;
  };
  const all: JobStreamResponse = { chunks: [{ seq: 1, output: 'a' }, { seq: 2, output: 'b' }, { seq: 3, output: 'c' }], next: 3 };
  assert.deepEqual(await read(''), all);
  assert.deepEqual(await read(''), all, 'reading again gives the same chunks');
  assert.deepEqual(await read('?after=1'), { chunks: [{ seq: 2, output: 'b' }, { seq: 3, output: 'c' }], next: 3 });
  assert.deepEqual(await read('?after=3'), { chunks: [], next: 3 });
  // RunPod's /stream still gets every chunk: the admin read consumed nothing.
  const stream = (await (await gw.client(`stream/${id}`)).json()) as { stream: unknown[] };
  assert.equal(stream.stream.length, 3);

  assert.equal((await admin(`endpoints/echo/jobs/${id}/stream?after=x`)).status, 400);
  assert.equal((await admin(`endpoints/echo/jobs/nope/stream`)).status, 404);
});

test('GET /kiln/v1/jobs/:id finds a job on any endpoint, as the endpoint route shows it (with endpoint); unknown → 404 JSON', async () => {
  const id = await gw.run({ where: 'other' }, {}, 'other');
  const res = await admin(`jobs/${id}`);
  assert.equal(res.status, 200);
  const detail = (await res.json()) as JobDetail;
  assert.equal(detail.id, id);
  assert.equal(detail.endpoint, 'other');
  assert.deepEqual(detail.input, { where: 'other' });
  assert.equal(detail.status, 'IN_QUEUE');
  assert.equal(detail.streamChunks, 0);
  assert.equal(detail.progressUpdates, 0);
  assert.deepEqual(detail, await (await admin(`endpoints/other/jobs/${id}`)).json());
  assert.equal((await admin(`endpoints/echo/jobs/${id}`)).status, 404, 'the endpoint route stays per endpoint');

  const missing = await admin('jobs/no-such-job');
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: 'job no-such-job not found on any endpoint', code: 'job_not_found' });
});

test('GET webhooks?jobId= lists only that job\'s deliveries', async () => {
  const t = gw.clock.now();
  const add = (id: string, jobId: string, at: number) =>
    gw.store.addWebhookDelivery({ id, jobId, jobRun: 0, endpoint: 'echo', event: 'progress', url: 'https://hooks.test/h', payload: '{}', createdAt: at });
  await add('d1', 'job-a', t);
  await add('d2', 'job-b', t + 1);
  await add('d3', 'job-a', t + 2);
  const list = async (query: string) => ((await (await admin(`endpoints/echo/webhooks${query}`)).json()) as { deliveries: WebhookDeliveryView[] }).deliveries.map((d) => d.id);
  assert.deepEqual(await list('?jobId=job-a'), ['d3', 'd1']);
  assert.deepEqual(await list('?jobId=job-a&state=delivered'), []);
  assert.deepEqual(await list('?jobId=job-a&state=pending'), ['d3', 'd1'], 'both filters at once');
  assert.deepEqual(await list(''), ['d3', 'd2', 'd1']);
});
