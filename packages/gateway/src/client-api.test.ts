import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CLIENT_LIMITS } from '@kiln/protocol';
import { TEST_API_KEY, createTestGateway } from './test-gateway.ts';
import type { TestGateway } from './test-gateway.ts';

type Json = Record<string, unknown>;

async function json(res: Response | Promise<Response>): Promise<{ status: number; body: Json; type: string | null }> {
  const r = await res;
  return { status: r.status, body: (await r.json()) as Json, type: r.headers.get('content-type') };
}

let gw: TestGateway;
beforeEach(async () => {
  gw = await createTestGateway();
});
afterEach(async () => {
  await gw.close();
});

/** Has a worker take the next job and returns it. */
async function takeOne(worker: ReturnType<TestGateway['addWorker']>): Promise<Json> {
  const res = await worker.take();
  assert.equal(res.status, 200);
  return (await res.json()) as Json;
}

describe('POST /run', () => {
  it('queues a job with a RunPod-style id and answers 200 JSON', async () => {
    const res = await json(gw.client('run', { json: { input: { prompt: 'hi' } } }));
    assert.equal(res.status, 200);
    assert.match(res.type ?? '', /^application\/json/);
    assert.equal(res.body.status, 'IN_QUEUE');
    assert.match(String(res.body.id), /^[0-9a-f-]{36}-u1$/);
    const status = await json(gw.client(`status/${String(res.body.id)}`));
    assert.deepEqual(status.body, { id: res.body.id, status: 'IN_QUEUE' });
  });

  it('stores policy, webhook and s3Config; ttl sets expiresAt and executionTimeout the execution limit', async () => {
    const now = gw.clock.now();
    const s3Config = { accessId: 'a', accessSecret: 's', bucketName: 'b', endpointUrl: 'https://s3.example' };
    const id = await gw.run({ a: 1 }, { webhook: 'https://hook.example/x', policy: { ttl: 60_000, executionTimeout: 5000, lowPriority: true }, s3Config });
    const job = await gw.store.get('echo', id);
    assert.ok(job);
    assert.equal(job.expiresAt, now + 60_000);
    assert.equal(job.executionTimeoutMs, 5000);
    assert.equal(job.lowPriority, true);
    assert.equal(job.webhook, 'https://hook.example/x');
    assert.deepEqual(job.s3Config, s3Config);
  });

  it('uses the endpoint defaults without a policy', async () => {
    const id = await gw.run(null);
    const job = await gw.store.get('echo', id);
    assert.equal(job?.executionTimeoutMs, 600_000);
    assert.equal(job?.expiresAt, gw.clock.now() + 86_400_000);
    assert.equal(job?.input, null);
  });

  it('answers 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{}, 'input'],
      [{ input: 1, webhook: 'ftp://x' }, 'webhook'],
      [{ input: 1, webhook: 'not a url' }, 'webhook'],
      [{ input: 1, policy: { ttl: 5 } }, 'policy.ttl'],
      [{ input: 1, policy: { executionTimeout: 'x' } }, 'policy.executionTimeout'],
      [[1], 'body'],
    ];
    for (const [body, field] of cases) {
      const res = await json(gw.client('run', { json: body }));
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.field, field);
      assert.equal(res.body.code, 'invalid_request');
      assert.match(String(res.body.error), new RegExp(`^${field.replace('.', '\\.')}: `));
    }
    const notJson = await json(gw.client('run', { body: '{nope', headers: { 'content-type': 'application/json' } }));
    assert.deepEqual(notJson.body, { error: 'body: must be JSON', code: 'invalid_request', field: 'body' });
    const empty = await json(gw.client('run', { method: 'POST' }));
    assert.equal(empty.status, 400);
    assert.equal(empty.body.field, 'body');
    assert.equal((await gw.store.counts('echo')).inQueue, 0, 'a refused request stores no job');
  });

  it('answers 413 naming the limit, from Content-Length and from counting', async () => {
    const declared = await json(gw.client('run', { body: '{}', headers: { 'content-length': String(CLIENT_LIMITS.runBodyBytes + 1) } }));
    assert.equal(declared.status, 413);
    assert.equal(declared.body.code, 'payload_too_large');
    assert.match(String(declared.body.error), /limit is 10485760 bytes \(10 MB\), got 10485761 bytes/);

    const big = JSON.stringify({ input: 'x'.repeat(CLIENT_LIMITS.runBodyBytes) });
    const counted = await json(gw.client('run', { body: big }));
    assert.equal(counted.status, 413);
    assert.match(String(counted.body.error), /limit is 10485760 bytes/);
    assert.equal((await gw.ctx.store.counts('echo')).inQueue, 0);

    // The same body is fine for /runsync (20 MB), which has its own limit.
    const tooBigForSync = await json(gw.client('runsync', { body: '{}', headers: { 'content-length': String(CLIENT_LIMITS.runsyncBodyBytes + 1) } }));
    assert.equal(tooBigForSync.status, 413);
    assert.match(String(tooBigForSync.body.error), /limit is 20971520 bytes \(20 MB\)/);
  });

  it('accepts a 10–20 MB body on /runsync only', async () => {
    const body = JSON.stringify({ input: 'x'.repeat(CLIENT_LIMITS.runBodyBytes) });
    const sync = gw.client('runsync?wait=1000', { body });
    await gw.clock.waitForSleep(1000);
    await gw.clock.advance(1000);
    const res = await json(sync);
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'IN_QUEUE');
  });

  it('replays an Idempotency-Key with the same body and refuses a different one with 409', async () => {
    const headers = { 'idempotency-key': 'order-42' };
    const first = await json(gw.client('run', { json: { input: { a: 1, b: 2 }, policy: { ttl: 60_000 } }, headers }));
    // Same request, keys in another order.
    const again = await json(gw.client('run', { json: { policy: { ttl: 60_000 }, input: { b: 2, a: 1 } }, headers }));
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.body.id);
    assert.equal((await gw.store.counts('echo')).inQueue, 1);

    const conflict = await json(gw.client('run', { json: { input: { a: 2 } }, headers }));
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.code, 'idempotency_conflict');
    assert.equal(conflict.body.field, 'Idempotency-Key');
    assert.match(String(conflict.body.error), new RegExp(`"order-42" was already used for job ${String(first.body.id)}`));
    assert.equal((await gw.store.counts('echo')).inQueue, 1, 'the conflicting request stored nothing');

    const tooLong = await json(gw.client('run', { json: { input: 1 }, headers: { 'idempotency-key': 'k'.repeat(256) } }));
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.body.field, 'Idempotency-Key');
  });
});

describe('auth and unknown resources', () => {
  it('answers 401 JSON without a valid key, and accepts Bearer and raw keys', async () => {
    const refused: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { authorization: 'wrong' }, { authorization: 'Bearer ' }];
    for (const headers of refused) {
      const res = await json(gw.request('/v2/echo/health', { headers }));
      assert.equal(res.status, 401);
      assert.match(res.type ?? '', /^application\/json/);
      assert.equal(res.body.code, 'unauthorized');
      assert.match(String(res.body.error), /API key/);
    }
    assert.equal((await gw.request('/v2/echo/health', { headers: { authorization: `Bearer ${TEST_API_KEY}` } })).status, 200);
    assert.equal((await gw.request('/v2/echo/health', { headers: { authorization: TEST_API_KEY } })).status, 200);
    assert.equal((await gw.request('/v2/echo/health', { headers: { authorization: `bearer ${TEST_API_KEY}` } })).status, 200);
  });

  it('checks the key before the endpoint, so endpoint names do not leak', async () => {
    assert.equal((await gw.request('/v2/nope/health')).status, 401);
  });

  it('answers 404 for an unknown endpoint and an unknown job', async () => {
    const endpoint = await json(gw.client('run', { json: { input: 1 } }, 'nope'));
    assert.deepEqual(endpoint, { status: 404, type: 'application/json', body: { error: 'endpoint nope not found', code: 'endpoint_not_found' } });
    for (const path of ['status/x-u1', 'status-sync/x-u1', 'stream/x-u1', 'cancel/x-u1', 'retry/x-u1']) {
      const method = path.startsWith('cancel') || path.startsWith('retry') ? 'POST' : 'GET';
      const res = await json(gw.client(path, { method }));
      assert.equal(res.status, 404, path);
      assert.deepEqual(res.body, { error: 'job x-u1 not found on endpoint echo', code: 'job_not_found' });
    }
  });

  it('answers unknown routes with JSON 404', async () => {
    const res = await json(gw.request('/v3/anything'));
    assert.equal(res.status, 404);
    assert.equal(res.body.code, 'not_found');
  });

  it('does not need keys when none are configured', async () => {
    const open = await createTestGateway({ config: { endpoints: { echo: { worker: { command: 'x' } } } } });
    try {
      assert.equal((await open.request('/v2/echo/health')).status, 200);
    } finally {
      await open.close();
    }
  });
});

describe('POST /runsync and GET /status-sync', () => {
  it('returns the COMPLETED status object once a worker finishes the job', async () => {
    const worker = gw.addWorker();
    const sync = json(gw.client('runsync', { json: { input: { n: 1 } } }));
    const job = await takeOne(worker);
    assert.match(String(job.id), /^sync-[0-9a-f-]{36}-e1$/);
    await gw.clock.advance(250);
    assert.equal((await worker.done(String(job.id), { output: { n: 2 } })).status, 200);
    const res = await sync;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { id: job.id, status: 'COMPLETED', delayTime: 0, executionTime: 250, output: { n: 2 }, workerId: worker.workerId });
  });

  it('returns {id, status} when the wait runs out', async () => {
    const worker = gw.addWorker();
    const sync = json(gw.client('runsync?wait=1000', { json: { input: 1 } }));
    const job = await takeOne(worker);
    await gw.clock.waitForSleep(1000);
    await gw.clock.advance(1000);
    const res = await sync;
    assert.deepEqual(res.body, { id: job.id, status: 'IN_PROGRESS' });
  });

  it('clamps wait and names a bad one', async () => {
    const sync = gw.client('runsync?wait=5', { json: { input: 1 } });
    await gw.clock.waitForSleep(1000);
    await gw.clock.advance(1000);
    assert.equal(((await (await sync).json()) as Json).status, 'IN_QUEUE');
    const bad = await json(gw.client('runsync?wait=soon', { json: { input: 1 } }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.field, 'wait');
    // A refused wait creates no job.
    assert.equal((await gw.store.counts('echo')).inQueue, 1);
  });

  it('status-sync holds until the job is terminal, then returns the status object', async () => {
    const worker = gw.addWorker();
    const id = await gw.run('x');
    await takeOne(worker);
    const waiting = json(gw.client(`status-sync/${id}?wait=60000`));
    await gw.clock.waitForSleep(1000);
    await worker.done(id, { error: 'bad input' });
    const res = await waiting;
    assert.equal(res.body.status, 'FAILED');
    assert.equal(res.body.error, 'bad input');
  });

  it('status-sync returns the current status object when the wait runs out', async () => {
    const id = await gw.run('x');
    const waiting = json(gw.client(`status-sync/${id}?wait=1000`));
    await gw.clock.waitForSleep(1000);
    await gw.clock.advance(1000);
    assert.deepEqual((await waiting).body, { id, status: 'IN_QUEUE' });
  });

  it('re-checks the store at least every second (changes made by other gateways)', async () => {
    const worker = gw.addWorker();
    const id = await gw.run('x');
    await takeOne(worker);
    const waiting = json(gw.client(`status-sync/${id}?wait=60000`));
    await gw.clock.waitForSleep(1000);
    // Finish through the store directly: no notification, as if another gateway did it.
    await gw.store.finish(id, worker.workerId, { output: 1 }, gw.clock.now(), gw.clock.now() + 60_000);
    await gw.clock.advance(1000);
    assert.equal((await waiting).body.status, 'COMPLETED');
  });
});

describe('GET|POST /status', () => {
  it('shows progress as output while IN_PROGRESS, timings, and works with POST', async () => {
    const worker = gw.addWorker();
    const id = await gw.run('x');
    await gw.clock.advance(3000);
    await takeOne(worker);
    await gw.clock.advance(500);
    await worker.done(id, { status: 'IN_PROGRESS', output: { pct: 50 } });
    const res = await json(gw.client(`status/${id}?ttl=5000`, { method: 'POST' }));
    assert.deepEqual(res.body, { id, status: 'IN_PROGRESS', delayTime: 3000, executionTime: 500, output: { pct: 50 }, workerId: worker.workerId });
  });
});

describe('/stream', () => {
  it('delivers each chunk once, holds without news, and ends with the terminal status', async () => {
    const worker = gw.addWorker();
    const id = await gw.run('x');
    await takeOne(worker);
    await worker.stream(id, { tok: 0 });
    await worker.stream(id, { tok: 1 });
    const first = await json(gw.client(`stream/${id}`));
    assert.deepEqual(first.body, { status: 'IN_PROGRESS', stream: [{ output: { tok: 0 } }, { output: { tok: 1 } }], id });

    // Nothing new: held, then woken by the next chunk.
    const second = json(gw.client(`stream/${id}`, { method: 'POST' }));
    await gw.clock.waitForSleep(1000);
    await worker.stream(id, { tok: 2 });
    assert.deepEqual((await second).body, { status: 'IN_PROGRESS', stream: [{ output: { tok: 2 } }], id });

    // Nothing new for ~5 s: an empty answer.
    const idle = json(gw.client(`stream/${id}`));
    for (let i = 0; i < 5; i++) {
      await gw.clock.waitForSleep(1000);
      await gw.clock.advance(1000);
    }
    assert.deepEqual((await idle).body, { status: 'IN_PROGRESS', stream: [], id });

    await worker.stream(id, { tok: 3 });
    await worker.done(id, { output: [] });
    assert.deepEqual((await json(gw.client(`stream/${id}`))).body, { status: 'COMPLETED', stream: [{ output: { tok: 3 } }], id });
    assert.deepEqual((await json(gw.client(`stream/${id}`))).body, { status: 'COMPLETED', stream: [], id });
  });

  it('hands nothing to a poll whose client hung up: a chunk that lands then goes to the next poll', async () => {
    const worker = gw.addWorker();
    const id = await gw.run('x');
    await takeOne(worker);
    const gone = new AbortController();
    const held = gw.client(`stream/${id}`, { signal: gone.signal }).catch(() => undefined);
    await gw.clock.waitForSleep(1000);
    gone.abort();
    // In the store before the held request looks again (SQLite writes synchronously on the call).
    void gw.store.appendStream(id, worker.workerId, [{ tok: 'late' }]);
    await held;
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual((await json(gw.client(`stream/${id}`))).body, { status: 'IN_PROGRESS', stream: [{ output: { tok: 'late' } }], id });
  });
});

describe('POST /cancel, /retry, /purge-queue, GET /health', () => {
  it('cancels a queued job with or without a body', async () => {
    const a = await gw.run(1);
    const b = await gw.run(2);
    assert.deepEqual((await json(gw.client(`cancel/${a}`, { json: {} }))).body, { id: a, status: 'CANCELLED' });
    assert.deepEqual((await json(gw.client(`cancel/${b}`, { method: 'POST' }))).body, { id: b, status: 'CANCELLED' });
    // Cancelling again changes nothing and still answers 200.
    assert.deepEqual((await json(gw.client(`cancel/${a}`, { method: 'POST' }))).body, { id: a, status: 'CANCELLED' });
  });

  it('cancels a running job and asks its worker to stop it', async () => {
    const worker = gw.addWorker();
    const id = await gw.run(1);
    await takeOne(worker);
    assert.deepEqual((await json(gw.client(`cancel/${id}`, { json: {} }))).body, { id, status: 'CANCELLED' });
    assert.deepEqual(gw.registry.takeStops(worker.workerId), [id]);
  });

  it('retries only FAILED and TIMED_OUT jobs, keeping the id', async () => {
    const worker = gw.addWorker();
    const ok = await gw.run('ok');
    await takeOne(worker);
    await worker.done(ok, { output: 1 });
    const refused = await json(gw.client(`retry/${ok}`, { method: 'POST' }));
    assert.equal(refused.status, 400);
    assert.equal(refused.body.code, 'invalid_transition');
    assert.equal(refused.body.error, `cannot retry job ${ok}: it is COMPLETED; only FAILED or TIMED_OUT jobs can be retried`);

    const bad = await gw.run('bad');
    await takeOne(worker);
    await worker.done(bad, { error: 'boom' });
    assert.deepEqual((await json(gw.client(`retry/${bad}`, { method: 'POST' }))).body, { id: bad, status: 'IN_QUEUE' });
    assert.deepEqual((await json(gw.client(`status/${bad}`))).body, { id: bad, status: 'IN_QUEUE', retries: 1 });
    assert.equal((await takeOne(worker)).id, bad);
  });

  it('purges queued jobs only', async () => {
    const worker = gw.addWorker();
    await gw.run(1);
    await takeOne(worker);
    await gw.run(2);
    await gw.run(3);
    assert.deepEqual((await json(gw.client('purge-queue', { json: {} }))).body, { removed: 2, status: 'completed' });
    assert.deepEqual((await json(gw.client('purge-queue', { method: 'POST' }))).body, { removed: 0, status: 'completed' });
  });

  it('reports job and worker counts', async () => {
    const worker = gw.addWorker();
    const done = await gw.run(1);
    await takeOne(worker);
    await worker.done(done, { output: 1 });
    await gw.run(2);
    await takeOne(worker);
    await gw.run(3);
    const res = await json(gw.client('health'));
    assert.deepEqual(res.body, {
      jobs: { completed: 1, failed: 0, inProgress: 1, inQueue: 1, retried: 0 },
      workers: { idle: 1, running: 0, initializing: 0, ready: 1, throttled: 0, unhealthy: 0 },
    });
  });
});

describe('error mapping', () => {
  it('answers unexpected failures with a generic 500 and logs the details', async () => {
    await gw.store.close();
    const res = await json(gw.client('run', { json: { input: 1 } }));
    assert.equal(res.status, 500);
    assert.deepEqual(res.body, { error: 'internal error', code: 'internal_error' });
    assert.ok(gw.logs.some((l) => l.level === 'error' && l.message === 'unexpected error while handling a request'));
  });
});
