import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MAX_JOB_PAGE } from './admin-api.ts';
import { createTestGateway, TEST_API_KEY, type TestGateway, type TestWorker } from './test-gateway.ts';

type Json = Record<string, unknown>;
interface Page {
  jobs: Json[];
  next: string | null;
}

let gw: TestGateway;
let worker: TestWorker;
beforeEach(async () => {
  gw = await createTestGateway();
  worker = gw.addWorker();
});
afterEach(() => gw.close());

const admin = (path: string, key: string | null = TEST_API_KEY) =>
  gw.request(`/kiln/v1/endpoints/${path}`, key === null ? {} : { headers: { authorization: `Bearer ${key}` } });

async function page(query: string): Promise<Page> {
  const res = await admin(`echo/jobs${query}`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Page;
}

/** Submits `n` jobs one clock millisecond apart; returns their ids, oldest first. */
async function submit(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(await gw.run({ n: i }));
    await gw.clock.advance(1);
  }
  return ids;
}

async function takeNext(): Promise<string> {
  return ((await (await worker.take()).json()) as { id: string }).id;
}

describe('GET /kiln/v1/endpoints/:endpoint/jobs', () => {
  it('lists jobs newest first with their timings, and filters by status', async () => {
    const t0 = gw.clock.now();
    const [a, b, c] = await submit(3);
    await gw.clock.advance(1000);
    assert.equal(await takeNext(), a);
    await gw.clock.advance(250);
    await worker.done(a!, { error: 'boom' });
    assert.equal(await takeNext(), b);
    await gw.clock.advance(70);

    const all = await page('');
    assert.equal(all.next, null);
    assert.deepEqual(all.jobs.map((j) => j['id']), [c, b, a]);
    assert.deepEqual(all.jobs[2], {
      id: a,
      status: 'FAILED',
      createdAt: t0,
      queuedAt: t0,
      takenAt: t0 + 1003,
      finishedAt: t0 + 1253,
      workerId: worker.workerId,
      attempts: 1,
      retries: 0,
      delayTime: 1003,
      executionTime: 250,
      error: 'boom',
    });
    assert.deepEqual(all.jobs[0], {
      id: c,
      status: 'IN_QUEUE',
      createdAt: t0 + 2,
      queuedAt: t0 + 2,
      takenAt: null,
      finishedAt: null,
      workerId: null,
      attempts: 0,
      retries: 0,
      delayTime: null,
      executionTime: null,
      error: null,
    });
    assert.equal(all.jobs[1]!['executionTime'], 70, 'a running job counts until now');

    assert.deepEqual((await page('?status=IN_QUEUE')).jobs.map((j) => j['id']), [c]);
    assert.deepEqual((await page('?status=FAILED,IN_QUEUE')).jobs.map((j) => j['id']), [c, a]);
    assert.deepEqual((await page('?status=COMPLETED')).jobs, []);
  });

  it('pages with limit and the opaque next cursor until next is null: every job once', async () => {
    const ids = await submit(12);
    await gw.run('same millisecond 1');
    await gw.run('same millisecond 2');
    const expected = [...(await gw.store.listJobs({ endpoint: 'echo', limit: 100 })).map((j) => j.id)];
    assert.equal(expected.length, 14);
    assert.deepEqual(expected.slice(2), ids.toReversed());

    const seen: unknown[] = [];
    const sizes: number[] = [];
    let query = '?limit=5';
    for (;;) {
      const { jobs, next } = await page(query);
      seen.push(...jobs.map((j) => j['id']));
      sizes.push(jobs.length);
      if (next === null) break;
      assert.match(next, /^[A-Za-z0-9_-]+$/, 'URL-safe');
      query = `?limit=5&cursor=${next}`;
    }
    assert.deepEqual(seen, expected);
    assert.deepEqual(sizes, [5, 5, 4]);
    // A page that ends exactly at the last job says so.
    const exact = await page('?limit=14');
    assert.equal(exact.jobs.length, 14);
    assert.equal(exact.next, null);
    // The cursor works with a filter, and the default page is 50.
    await takeNext();
    const queued = await page(`?status=IN_QUEUE&limit=3`);
    assert.deepEqual(queued.jobs.map((j) => j['id']), expected.slice(0, 3));
    assert.deepEqual((await page(`?status=IN_QUEUE&cursor=${queued.next}`)).jobs.map((j) => j['id']), expected.slice(3, 13));
  });

  it('refuses a bad status, limit or cursor with 400 naming the parameter', async () => {
    await submit(2);
    const goodCursor = (await page('?limit=1')).next!;
    const cases: [string, string, RegExp][] = [
      ['?status=RUNNING', 'status', /^status: must be a comma-separated list of IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED, TIMED_OUT; got 'RUNNING'$/],
      ['?status=IN_QUEUE,,COMPLETED', 'status', /got ''/],
      ['?status=in_queue', 'status', /got 'in_queue'/],
      ['?limit=0', 'limit', /^limit: must be from 1 to 500, got 0$/],
      [`?limit=${MAX_JOB_PAGE + 1}`, 'limit', /must be from 1 to 500/],
      ['?limit=ten', 'limit', /^limit: must be a non-negative integer/],
      ['?limit=2.5', 'limit', /^limit: must be a non-negative integer/],
      ['?cursor=not-a-cursor', 'cursor', /^cursor: is not a cursor from this listing/],
      [`?cursor=${goodCursor}!!`, 'cursor', /^cursor: is not a cursor/],
      [`?cursor=${Buffer.from('[1,2]').toString('base64url')}`, 'cursor', /^cursor: is not a cursor/],
      [`?cursor=${Buffer.from('{"createdAt":1}').toString('base64url')}`, 'cursor', /^cursor: is not a cursor/],
    ];
    for (const [query, field, message] of cases) {
      const res = await admin(`echo/jobs${query}`);
      assert.equal(res.status, 400, query);
      const body = (await res.json()) as { error: string; field: string; code: string };
      assert.equal(body.field, field, query);
      assert.equal(body.code, 'invalid_request');
      assert.match(body.error, message, query);
    }
    assert.equal((await admin('echo/jobs?limit=500')).status, 200);
    assert.equal((await admin('nope/jobs')).status, 404);
    assert.equal((await admin('echo/jobs', null)).status, 401);
  });
});

describe('GET /kiln/v1/endpoints/:endpoint/jobs/:id', () => {
  it('shows the whole record: input, output, error, stream chunk count, progress count, timestamps; no S3 secret', async () => {
    const t0 = gw.clock.now();
    const s3Config = { accessId: 'AK', accessSecret: 'very-secret', bucketName: 'b', endpointUrl: 'https://s3.example' };
    const id = await gw.run({ prompt: 'hi' }, { s3Config, policy: { executionTimeout: 9000 } });
    await gw.clock.advance(40);
    await takeNext();
    await worker.done(id, { status: 'IN_PROGRESS', output: { pct: 50 } });
    await worker.stream(id, 'a');
    await worker.stream(id, 'b');
    await gw.clock.advance(60);
    await worker.done(id, { output: { text: 'ab' } });

    const res = await admin(`echo/jobs/${id}`);
    assert.equal(res.status, 200);
    const job = (await res.json()) as Json;
    assert.equal(JSON.stringify(job).includes('very-secret'), false);
    assert.deepEqual(job['s3Config'], { ...s3Config, accessSecret: '[redacted]' });
    const expected: Json = {
      id,
      endpoint: 'echo',
      status: 'COMPLETED',
      input: { prompt: 'hi' },
      output: { text: 'ab' },
      error: null,
      webhook: null,
      policy: { executionTimeout: 9000 },
      workerId: worker.workerId,
      attempts: 1,
      retries: 0,
      lowPriority: false,
      createdAt: t0,
      queuedAt: t0,
      takenAt: t0 + 40,
      finishedAt: t0 + 100,
      expiresAt: t0 + 86_400_000,
      executionDeadline: t0 + 40 + 9000,
      executionTimeoutMs: 9000,
      idempotencyKey: null,
      delayTime: 40,
      executionTime: 60,
      streamChunks: 2,
      progressUpdates: 1,
    };
    for (const [key, value] of Object.entries(expected)) assert.deepEqual(job[key], value, key);
    assert.equal(typeof job['retainUntil'], 'number');

    const missing = await admin('echo/jobs/no-such-job');
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as Json)['code'], 'job_not_found');
    assert.equal((await admin(`echo/jobs/${id}`, null)).status, 401);
  });
});
