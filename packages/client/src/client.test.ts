// The requests each method sends and how answers (and failures) come back, against a loopback server.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ManualClock } from '@kiln/protocol';
import { kiln } from './client.ts';
import {
  ConflictError,
  JobFailedError,
  KilnHttpError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  UnauthorizedError,
  UnexpectedResponseError,
  httpErrorFrom,
  parseRetryAfter,
} from './errors.ts';
import { fakeEndpoints, sendJson, startFakeEndpoint } from './fake-endpoint.ts';
import { outputOf } from './job-status.ts';

// Every fake endpoint started here is closed after the file's tests.
const fake = fakeEndpoints(after);

test('run: POST {baseUrl}/{endpoint}/run with the body RunPod expects, the key as Bearer and Idempotency-Key', async () => {
  const f = await fake((_req, res) => sendJson(res, 200, { id: 'abc-u1', status: 'IN_QUEUE' }));
  // A trailing slash on baseUrl is tolerated; the endpoint id is a path segment.
  const endpoint = kiln({ baseUrl: `${f.baseUrl}/`, apiKey: 'secret' }).endpoint<{ prompt: string }>('tts');
  const submitted = await endpoint.run(
    { prompt: 'hi' },
    {
      webhook: 'https://example.com/hook',
      webhookEvents: ['completed', 'progress'],
      policy: { executionTimeout: 5000, ttl: 60_000, lowPriority: true },
      s3Config: { accessId: 'a', accessSecret: 's', bucketName: 'b', endpointUrl: 'https://s3.example.com' },
      idempotencyKey: 'order-42',
    },
  );
  assert.deepEqual(submitted, { id: 'abc-u1', status: 'IN_QUEUE' });
  const [req] = f.requests;
  assert.equal(`${req!.method} ${req!.url}`, 'POST /v2/tts/run');
  assert.equal(req!.headers['authorization'], 'Bearer secret');
  assert.equal(req!.headers['content-type'], 'application/json');
  assert.equal(req!.headers['idempotency-key'], 'order-42');
  assert.deepEqual(JSON.parse(req!.body), {
    input: { prompt: 'hi' },
    webhook: 'https://example.com/hook',
    webhookEvents: ['completed', 'progress'],
    policy: { executionTimeout: 5000, ttl: 60_000, lowPriority: true },
    s3Config: { accessId: 'a', accessSecret: 's', bucketName: 'b', endpointUrl: 'https://s3.example.com' },
  });
});

test('run without options sends only the input and no Authorization when there is no key', async () => {
  const f = await fake((_req, res) => sendJson(res, 200, { id: 'j', status: 'IN_QUEUE' }));
  await kiln({ baseUrl: f.baseUrl }).endpoint('ep').run(null);
  assert.equal(f.requests[0]!.body, '{"input":null}');
  assert.equal(f.requests[0]!.headers['authorization'], undefined);
  assert.equal(f.requests[0]!.headers['idempotency-key'], undefined);
});

test('runSync: /runsync?wait= first, then status-sync until the job is final', async () => {
  const f = await fake((req, res) => {
    if (req.url.startsWith('/v2/ep/runsync')) return sendJson(res, 200, { id: 'sync-1-e1', status: 'IN_PROGRESS' });
    sendJson(res, 200, { id: 'sync-1-e1', status: 'COMPLETED', output: { n: 1 }, delayTime: 3, executionTime: 2500, workerId: 'w1' });
  });
  const job = await kiln({ baseUrl: f.baseUrl }).endpoint<{ a: number }, { n: number }>('ep').runSync({ a: 1 }, { waitMs: 2000 });
  assert.equal(job.status, 'COMPLETED');
  assert.deepEqual(outputOf(job), { n: 1 });
  assert.equal(job.workerId, 'w1');
  assert.deepEqual(
    f.requests.map((r) => `${r.method} ${r.url}`),
    ['POST /v2/ep/runsync?wait=2000', 'GET /v2/ep/status-sync/sync-1-e1?wait=90000'],
  );
  assert.equal(f.requests[0]!.body, '{"input":{"a":1}}');
});

test('runSync: a final first answer is returned as is (extra keys kept); wait is clamped to 1000–300000', async () => {
  const f = await fake((_req, res) => sendJson(res, 200, { id: 'j', status: 'FAILED', error: 'x', metrics: { gpu: 1 } }));
  const endpoint = kiln({ baseUrl: f.baseUrl }).endpoint('ep');
  const job = await endpoint.runSync({}, { waitMs: 10 });
  assert.deepEqual(job, { id: 'j', status: 'FAILED', error: 'x', metrics: { gpu: 1 } });
  await endpoint.runSync({}, { waitMs: 10_000_000 });
  await endpoint.runSync({});
  assert.deepEqual(f.requests.map((r) => r.url), ['/v2/ep/runsync?wait=1000', '/v2/ep/runsync?wait=300000', '/v2/ep/runsync?wait=90000']);
  assert.throws(() => outputOf(job), (err: unknown) => err instanceof JobFailedError && err.error === 'x');
});

test('status, cancel, retry, purgeQueue, health: RunPod’s paths and answers', async () => {
  const f = await fake((req, res) => {
    const answers: Record<string, unknown> = {
      'GET /v2/ep/status/a%2Fb': { id: 'a/b', status: 'IN_PROGRESS', output: { step: 1 } },
      'POST /v2/ep/cancel/j1': { id: 'j1', status: 'CANCELLED' },
      'POST /v2/ep/retry/j1': { id: 'j1', status: 'IN_QUEUE' },
      'POST /v2/ep/purge-queue': { removed: 2, status: 'completed' },
      'GET /v2/ep/health': { jobs: { completed: 1, failed: 0, inProgress: 0, inQueue: 0, retried: 0 }, workers: { idle: 1, running: 0 } },
    };
    sendJson(res, 200, answers[`${req.method} ${req.url}`] ?? { unexpected: `${req.method} ${req.url}` });
  });
  const endpoint = kiln({ baseUrl: f.baseUrl }).endpoint('ep');
  assert.deepEqual(await endpoint.status('a/b'), { id: 'a/b', status: 'IN_PROGRESS', output: { step: 1 } });
  assert.deepEqual(await endpoint.cancel('j1'), { id: 'j1', status: 'CANCELLED' });
  assert.deepEqual(await endpoint.retry('j1'), { id: 'j1', status: 'IN_QUEUE' });
  assert.deepEqual(await endpoint.purgeQueue(), { removed: 2, status: 'completed' });
  const health = await endpoint.health();
  assert.equal(health.jobs.completed, 1);
  assert.equal(health.workers.idle, 1);
  assert.equal(health.workers.throttled, 0, 'counters only the SDK types name read as 0 when absent');
});

test('non-2xx answers become the typed error for their status, carrying status, body and code', async () => {
  const cases: [number, new (...args: never[]) => KilnHttpError][] = [
    [401, UnauthorizedError],
    [404, NotFoundError],
    [409, ConflictError],
    [413, PayloadTooLargeError],
    [429, RateLimitedError],
    [400, KilnHttpError],
    [500, KilnHttpError],
  ];
  for (const [status, type] of cases) {
    const body = { error: `refused with ${status}`, code: `code_${status}` };
    const f = await fake((_req, res) => sendJson(res, status, body, status === 429 ? { 'retry-after': '7' } : {}));
    await assert.rejects(kiln({ baseUrl: f.baseUrl }).endpoint('ep').run({}), (err: unknown) => {
      assert.ok(err instanceof type, `${status} → ${type.name}, got ${String(err)}`);
      assert.ok(err instanceof KilnHttpError);
      assert.equal(err.constructor, type, `${status} is exactly ${type.name}`);
      assert.equal(err.status, status);
      assert.deepEqual(err.body, body);
      assert.equal(err.code, `code_${status}`);
      assert.equal(err.method, 'POST');
      assert.equal(err.message, `POST /v2/ep/run: HTTP ${status} refused with ${status}`);
      if (err instanceof RateLimitedError) assert.equal(err.retryAfterMs, 7000);
      return true;
    });
  }
});

test('an error body that is not JSON is kept as text', async () => {
  const f = await fake((_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' });
    res.end('<h1>Bad Gateway</h1>');
  });
  await assert.rejects(kiln({ baseUrl: f.baseUrl }).endpoint('ep').health(), (err: unknown) => {
    assert.ok(err instanceof KilnHttpError);
    assert.equal(err.status, 502);
    assert.equal(err.body, '<h1>Bad Gateway</h1>');
    return true;
  });
});

test('a 2xx answer that is not JSON, or not the shape of the operation, is UnexpectedResponseError', async () => {
  const f = await fake((req, res) => {
    if (req.url.includes('status')) return sendJson(res, 200, { id: 'j', status: 'RUNNING' });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  const endpoint = kiln({ baseUrl: f.baseUrl }).endpoint('ep');
  await assert.rejects(endpoint.run({}), (err: unknown) => err instanceof UnexpectedResponseError && err.body === 'ok' && err.status === 200);
  await assert.rejects(endpoint.status('j'), (err: unknown) => err instanceof UnexpectedResponseError && /status: must be one of/.test(err.message));
});

test('timeoutMs runs on the injected clock; the timeout, aborts and network errors pass through as they are', async () => {
  const clock = new ManualClock();
  const f = await fake(() => {
    // never answers
  });
  const endpoint = kiln({ baseUrl: f.baseUrl, clock, timeoutMs: 5000 }).endpoint('ep');
  const timedOut = assert.rejects(endpoint.status('j'), (err: unknown) => err instanceof DOMException && err.name === 'TimeoutError');
  await clock.waitForSleep(5000);
  await clock.advance(5000);
  await timedOut;

  const controller = new AbortController();
  const aborted = endpoint.status('j', { signal: controller.signal });
  controller.abort();
  await assert.rejects(aborted, (err: unknown) => err instanceof DOMException && err.name === 'AbortError');

  // Long-polls get their hold on top of the timeout.
  const held = assert.rejects(endpoint.waitFor('j'), (err: unknown) => err instanceof DOMException && err.name === 'TimeoutError');
  await clock.waitForSleep(95_000);
  await clock.advance(95_000);
  await held;

  const closed = await startFakeEndpoint(() => undefined);
  await closed.close();
  await assert.rejects(kiln({ baseUrl: closed.baseUrl }).endpoint('ep').health(), TypeError);
});

test('an injected fetch is used for every request', async () => {
  const seen: string[] = [];
  const fetch = async (url: string, init: RequestInit) => {
    seen.push(`${init.method} ${url}`);
    return new Response(JSON.stringify({ id: 'j', status: 'COMPLETED', output: 1 }), { headers: { 'content-type': 'application/json' } });
  };
  const endpoint = kiln({ baseUrl: 'https://api.runpod.ai/v2', apiKey: 'rp', fetch }).endpoint('abc123');
  assert.equal((await endpoint.status('j')).status, 'COMPLETED');
  assert.deepEqual(seen, ['GET https://api.runpod.ai/v2/abc123/status/j']);
});

test('options are checked when the client is made', () => {
  assert.throws(() => kiln({ baseUrl: 'api.runpod.ai/v2' }), /baseUrl must be an absolute http\(s\) URL/);
  assert.throws(() => kiln({ baseUrl: 'ftp://x/v2' }), /baseUrl must be an absolute http\(s\) URL/);
  assert.throws(() => kiln({ baseUrl: 'http://x/v2', timeoutMs: -1 }), /timeoutMs/);
  assert.throws(() => kiln({ baseUrl: 'http://x/v2' }).endpoint(''), /endpoint id/);
});

test('httpErrorFrom reads any Response; Retry-After takes seconds or an HTTP date', async () => {
  const err = await httpErrorFrom(new Response('{"error":"slow down"}', { status: 429, headers: { 'retry-after': '2' } }), 'GET', 'http://gw/kiln/v1/x');
  assert.ok(err instanceof RateLimitedError);
  assert.equal(err.retryAfterMs, 2000);
  assert.equal(err.message, 'GET /kiln/v1/x: HTTP 429 slow down');
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

test('JobFailedError reads the error object workers send as a string, and plain strings as they are', () => {
  const structured = new JobFailedError({
    id: 'j',
    status: 'FAILED',
    error: JSON.stringify({ error_type: 'InputValidationError', error_message: 'text: required' }),
  });
  assert.equal(structured.errorMessage, 'InputValidationError: text: required');
  assert.equal(structured.message, 'job j ended FAILED: InputValidationError: text: required');
  const plain = new JobFailedError({ id: 'j', status: 'FAILED', error: 'handler: boom \ntraceback: …' });
  assert.equal(plain.errorMessage, 'handler: boom \ntraceback: …');
  assert.equal(new JobFailedError({ id: 'j', status: 'TIMED_OUT' }).message, 'job j ended TIMED_OUT');
});
