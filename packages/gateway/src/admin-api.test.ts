import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { createTestGateway, TEST_API_KEY, type TestGateway } from './test-gateway.ts';

let gw: TestGateway;
beforeEach(async () => {
  gw = await createTestGateway();
});
afterEach(() => gw.close());

const admin = (path: string, key: string | null = TEST_API_KEY) =>
  gw.request(`/kiln/v1/${path}`, key === null ? {} : { headers: { authorization: `Bearer ${key}` } });

test('workers: state, cold start (spawn → first take) and reported jobs', async () => {
  const worker = gw.addWorker({ workerId: 'echo-w1' });
  await gw.clock.advance(1234);
  const jobId = await gw.run({ n: 1 });
  assert.equal(((await (await worker.take()).json()) as { id: string }).id, jobId);
  await worker.done(jobId, { output: 1 });
  const body = (await (await admin('endpoints/echo/workers')).json()) as { workers: Record<string, unknown>[] };
  assert.equal(body.workers.length, 1);
  assert.equal(body.workers[0]!['workerId'], 'echo-w1');
  assert.equal(body.workers[0]!['state'], 'idle');
  assert.equal(body.workers[0]!['coldStartMs'], 1234);
});

test("logs: a job's lines, a worker's lines, paging with after", async () => {
  const base = { endpoint: 'echo', stream: 'stdout' as const, time: gw.clock.now() };
  await gw.store.appendLogs([
    { ...base, workerId: 'w1', jobId: null, line: 'setup done' },
    { ...base, workerId: 'w1', jobId: 'job-a', line: 'a: step 1' },
    { ...base, workerId: 'w2', jobId: 'job-b', line: 'b: step 1' },
    { ...base, workerId: 'w1', jobId: 'job-a', line: 'a: step 2' },
  ]);
  const read = async (query: string) => (await (await admin(`endpoints/echo/logs?${query}`)).json()) as { lines: { line: string; seq: number }[]; next: number };
  assert.deepEqual((await read('jobId=job-a')).lines.map((l) => l.line), ['a: step 1', 'a: step 2']);
  assert.deepEqual((await read('workerId=w1')).lines.map((l) => l.line), ['setup done', 'a: step 1', 'a: step 2']);
  const first = await read('limit=2');
  assert.deepEqual(first.lines.map((l) => l.line), ['setup done', 'a: step 1']);
  const rest = await read(`after=${first.next}`);
  assert.deepEqual(rest.lines.map((l) => l.line), ['b: step 1', 'a: step 2']);
});

test('the admin API uses the client keys, knows only configured endpoints and checks its parameters', async () => {
  assert.equal((await admin('endpoints/echo/workers', null)).status, 401);
  assert.equal((await admin('endpoints/echo/workers', 'wrong')).status, 401);
  const missing = await admin('endpoints/nope/logs');
  assert.equal(missing.status, 404);
  const bad = await admin('endpoints/echo/logs?after=-3');
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /after: must be a non-negative integer/);
  const none = await admin('endpoints/echo/logs?limit=0');
  assert.equal(none.status, 400, 'a page of no lines is refused, as the other listings refuse it');
  assert.match(((await none.json()) as { error: string }).error, /limit: must be from 1 to 1000, got 0/);
  const many = await admin('endpoints/echo/logs?limit=1001');
  assert.equal(many.status, 400, 'a limit over the most is refused, not cut down without a word');
  assert.match(((await many.json()) as { error: string }).error, /limit: must be from 1 to 1000, got 1001/);
  for (const after of ['0x10', '1e3', '%205', '99999999999999999999']) {
    const res = await admin(`endpoints/echo/logs?after=${after}`);
    assert.equal(res.status, 400, `after=${after}`);
    assert.deepEqual(await res.json(), { error: `after: must be a non-negative integer, got '${decodeURIComponent(after)}'`, code: 'invalid_request', field: 'after' });
  }
});
