// @kiln/client against a real gateway over real sockets, with real echo worker processes: every
// method, SSE streaming with a forced disconnect, the long-poll fallback, typed errors, signed webhooks.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ConflictError,
  JobFailedError,
  NotFoundError,
  PayloadTooLargeError,
  UnauthorizedError,
  WebhookVerificationError,
  kiln,
  outputOf,
  verifyWebhook,
} from '@kiln/client';
import type { FetchFunction, KilnEndpoint, KilnOptions } from '@kiln/client';
import { Gateway, parseConfig } from '@kiln/gateway';
import { ECHO_DIR, ECHO_SOURCE_COMMAND, type EchoInput, type EchoOutput, type EchoChunk } from './support/echo-worker.ts';

const API_KEY = 'client-key';
const WEBHOOK_SECRET = `whsec_${Buffer.from('kiln client test secret, 32 bytes').toString('base64')}`;

let gateway: Gateway;
let dir: string;

/** `METHOD path` and headers of every request made through {@link recordingFetch}. */
interface SentRequest {
  line: string;
  headers: Headers;
  contentType: string | null;
}

function recordingFetch(sent: SentRequest[], rewrite?: (init: RequestInit) => RequestInit, onResponse?: (res: Response) => Response): FetchFunction {
  return async (url, init) => {
    const final = rewrite ? rewrite(init) : init;
    const res = await fetch(url, final);
    const { pathname, search } = new URL(url);
    sent.push({ line: `${final.method} ${pathname}${search}`, headers: new Headers(final.headers), contentType: res.headers.get('content-type') });
    return onResponse ? onResponse(res) : res;
  };
}

function endpoint(name = 'echo', options: Partial<KilnOptions> = {}): KilnEndpoint<EchoInput, EchoOutput, EchoChunk> {
  return kiln({ baseUrl: `${gateway.url}/v2`, apiKey: API_KEY, ...options }).endpoint<EchoInput, EchoOutput, EchoChunk>(name);
}

/** Polls `status` until the job is `wanted` (for IN_PROGRESS, which has no long-poll); the deadline is a safety net. */
async function waitUntil(ep: KilnEndpoint<EchoInput, EchoOutput, EchoChunk>, id: string, wanted: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while ((await ep.status(id)).status !== wanted) {
    if (Date.now() > deadline) assert.fail(`job ${id} never became ${wanted}`);
    await delay(25);
  }
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-client-'));
  const config = parseConfig(
    {
      endpoints: {
        echo: { worker: { command: ECHO_SOURCE_COMMAND, cwd: ECHO_DIR }, workersMin: 1, workersMax: 2, idleTimeout: 60, scaler: { type: 'QUEUE_DELAY', value: 1 } },
        // One worker only: purge-queue needs jobs that stay queued behind a busy one.
        solo: { worker: { command: ECHO_SOURCE_COMMAND, cwd: ECHO_DIR }, workersMin: 1, workersMax: 1, idleTimeout: 60 },
      },
      gateway: {
        port: 0,
        apiKeys: [API_KEY],
        pingIntervalMs: 1000,
        pingTimeoutMs: 5000,
        stopGraceMs: 2000,
        webhooks: { secret: WEBHOOK_SECRET, initialDelayMs: 100 },
      },
    },
    { baseDir: dir, env: {} },
  );
  gateway = new Gateway(config, { tickMs: 100, log: { info() {}, warn() {}, error() {} } });
  await gateway.start();
  for (const name of ['echo', 'solo']) {
    const deadline = Date.now() + 30_000;
    while ((await endpoint(name).health()).workers.idle < 1) {
      if (Date.now() > deadline) assert.fail(`the ${name} worker did not become ready`);
      await delay(50);
    }
  }
});

after(async () => {
  await gateway?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('run then waitFor: IN_QUEUE at once, then the typed output of the COMPLETED job', async () => {
  const echo = endpoint();
  const submitted = await echo.run({ message: 'hello client' });
  assert.equal(submitted.status, 'IN_QUEUE');
  const job = await echo.waitFor(submitted.id);
  assert.equal(job.status, 'COMPLETED');
  assert.equal(job.id, submitted.id);
  assert.equal(outputOf(job).message, 'hello client');
  assert.equal(typeof job.delayTime, 'number');
  assert.equal(typeof job.executionTime, 'number');
  assert.match(String(job.workerId), /^echo-/);
});

test('runSync: answered by /runsync when quick; followed through status-sync when the wait runs out', async () => {
  const sent: SentRequest[] = [];
  const echo = endpoint('echo', { fetch: recordingFetch(sent) });
  const quick = await echo.runSync({ message: 'quick' });
  assert.equal(outputOf(quick).message, 'quick');
  assert.deepEqual(sent.map((s) => s.line), ['POST /v2/echo/runsync?wait=90000']);

  sent.length = 0;
  const slow = await echo.runSync({ message: 'slow', sleepMs: 2500 }, { waitMs: 1000 });
  assert.equal(slow.status, 'COMPLETED');
  assert.equal(outputOf(slow).message, 'slow');
  assert.equal(sent[0]!.line, 'POST /v2/echo/runsync?wait=1000');
  assert.ok(sent.length >= 2 && sent.slice(1).every((s) => s.line === `GET /v2/echo/status-sync/${slow.id}?wait=90000`), sent.map((s) => s.line).join(', '));
});

test('status shows progress while running; waitFor reports each progress update through onProgress', async () => {
  const echo = endpoint();
  const { id } = await echo.run({ message: 'progress', sleepMs: 1500, progressSteps: 3 });
  const progress: unknown[] = [];
  const job = await echo.waitFor(id, { onProgress: (p) => progress.push(p) });
  assert.equal(job.status, 'COMPLETED');
  assert.ok(progress.length >= 1, 'at least one progress update was seen');
  const steps = progress.map((p) => (p as { step: number; of: number }).step);
  assert.deepEqual(steps, [...steps].sort((a, b) => a - b), 'in order');
  assert.equal(new Set(steps).size, steps.length, 'each once');
  assert.ok(progress.every((p) => (p as { of: number }).of === 3));
});

test('a failed job: runSync resolves FAILED, outputOf throws JobFailedError with the worker’s message', async () => {
  const job = await endpoint().runSync({ message: 'x', fail: 'boom on purpose' });
  assert.equal(job.status, 'FAILED');
  assert.throws(
    () => outputOf(job),
    (err: unknown) => err instanceof JobFailedError && err.status === 'FAILED' && /boom on purpose/.test(err.errorMessage ?? ''),
  );
});

test('stream over SSE: the words in order, each once, from a text/event-stream answer', async () => {
  const sent: SentRequest[] = [];
  const echo = endpoint('echo', { fetch: recordingFetch(sent) });
  const { id } = await echo.run({ message: 'alpha beta gamma delta', stream: true, sleepMs: 800 });
  const words: string[] = [];
  for await (const chunk of echo.stream(id)) words.push(chunk.word);
  assert.deepEqual(words, ['alpha', 'beta', 'gamma', 'delta']);
  const streams = sent.filter((s) => s.line === `GET /v2/echo/stream/${id}`);
  assert.equal(streams.length, 1, sent.map((s) => s.line).join(', '));
  assert.equal(streams[0]!.headers.get('accept'), 'text/event-stream');
  assert.match(String(streams[0]!.contentType), /^text\/event-stream/, 'the gateway answered with SSE');
});

test('stream over SSE: a connection cut after the first chunk is resumed with Last-Event-ID; nothing lost, nothing twice', async () => {
  const sent: SentRequest[] = [];
  let firstChunkId: string | undefined;
  // The first SSE answer is cut right after its first chunk event, as a dropped connection would be.
  let cut = false;
  const cutFirst = (res: Response): Response => {
    if (cut || !res.body || !res.headers.get('content-type')?.startsWith('text/event-stream')) return res;
    cut = true;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        controller.enqueue(value);
        seen += decoder.decode(value, { stream: true });
        const chunk = /id: (\S+)\nevent: chunk\n/.exec(seen);
        if (chunk && seen.indexOf('\n\n', chunk.index) !== -1) {
          firstChunkId = chunk[1];
          await reader.cancel();
          controller.error(new TypeError('terminated: connection reset'));
        }
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  const echo = endpoint('echo', { fetch: recordingFetch(sent, undefined, cutFirst) });
  const { id } = await echo.run({ message: 'one two three four five', stream: true, sleepMs: 1500 });
  const words: string[] = [];
  for await (const chunk of echo.stream(id)) words.push(chunk.word);
  assert.deepEqual(words, ['one', 'two', 'three', 'four', 'five']);
  assert.ok(firstChunkId, 'the first connection was cut after a chunk');
  const streams = sent.filter((s) => s.line === `GET /v2/echo/stream/${id}`);
  assert.equal(streams.length, 2, 'one resume');
  assert.equal(streams[0]!.headers.get('last-event-id'), null);
  assert.equal(streams[1]!.headers.get('last-event-id'), firstChunkId);
});

test('stream: a server that answers /stream with JSON (RunPod, older gateways) is long-polled instead', async () => {
  const sent: SentRequest[] = [];
  const asJson = (init: RequestInit): RequestInit => ({ ...init, headers: { ...(init.headers as Record<string, string>), accept: 'application/json' } });
  const echo = endpoint('echo', { fetch: recordingFetch(sent, asJson) });
  const { id } = await echo.run({ message: 'red green blue', stream: true, sleepMs: 600 });
  const words: string[] = [];
  for await (const chunk of echo.stream(id)) words.push(chunk.word);
  assert.deepEqual(words, ['red', 'green', 'blue']);
  const streams = sent.filter((s) => s.line === `GET /v2/echo/stream/${id}`);
  assert.ok(streams.length >= 2 && streams.length <= 10, `${streams.length} long-polls`);
  assert.ok(streams.every((s) => s.contentType?.startsWith('application/json')));
});

test('stream: progress events of a non-streaming job reach onProgress, and the stream ends when it completes', async () => {
  const echo = endpoint();
  const { id } = await echo.run({ message: 'steps', sleepMs: 1200, progressSteps: 3 });
  const progress: unknown[] = [];
  const chunks: unknown[] = [];
  for await (const chunk of echo.stream(id, { onProgress: (p) => progress.push(p) })) chunks.push(chunk);
  assert.deepEqual(chunks, []);
  assert.ok(progress.length >= 1, 'progress arrived as events');
  assert.equal((await echo.status(id)).status, 'COMPLETED');
});

test('cancel a running job: CANCELLED; waitFor resolves CANCELLED; stream throws JobFailedError', async () => {
  const echo = endpoint();
  const { id } = await echo.run({ message: 'long', sleepMs: 60_000 });
  await waitUntil(echo, id, 'IN_PROGRESS');
  assert.deepEqual(await echo.cancel(id), { id, status: 'CANCELLED' });
  assert.equal((await echo.waitFor(id)).status, 'CANCELLED');
  await assert.rejects(
    (async () => {
      for await (const _ of echo.stream(id)) assert.fail('a cancelled job has no chunks');
    })(),
    (err: unknown) => err instanceof JobFailedError && err.status === 'CANCELLED',
  );
});

test('retry a FAILED job: same id back IN_QUEUE, and it fails again with retries 1', async () => {
  const echo = endpoint();
  const failed = await echo.runSync({ message: 'x', fail: 'again' });
  assert.equal(failed.status, 'FAILED');
  assert.deepEqual(await echo.retry(failed.id), { id: failed.id, status: 'IN_QUEUE' });
  const again = await echo.waitFor(failed.id);
  assert.equal(again.status, 'FAILED');
  assert.equal(again.retries, 1);
});

test('purgeQueue removes the queued jobs only; health counts jobs and workers', async () => {
  const solo = endpoint('solo');
  const busy = await solo.run({ message: 'busy', sleepMs: 60_000 });
  await waitUntil(solo, busy.id, 'IN_PROGRESS');
  const queued = [await solo.run({ message: 'q1' }), await solo.run({ message: 'q2' })];
  const health = await solo.health();
  assert.equal(health.jobs.inQueue, 2);
  assert.equal(health.jobs.inProgress, 1);
  assert.equal(health.workers.idle + health.workers.running, 1);
  assert.deepEqual(await solo.purgeQueue(), { removed: 2, status: 'completed' });
  for (const { id } of queued) assert.equal((await solo.status(id)).status, 'CANCELLED');
  assert.equal((await solo.status(busy.id)).status, 'IN_PROGRESS');
  await solo.cancel(busy.id);
  assert.equal((await solo.health()).jobs.inQueue, 0);
});

test('errors are typed: 401 wrong key, 404 unknown job and endpoint, 409 reused Idempotency-Key, 413 body too large', async () => {
  await assert.rejects(endpoint('echo', { apiKey: 'wrong' }).health(), (err: unknown) => err instanceof UnauthorizedError && err.status === 401);
  await assert.rejects(endpoint().status('no-such-job'), (err: unknown) => err instanceof NotFoundError && err.code === 'job_not_found');
  await assert.rejects(endpoint('nope').health(), (err: unknown) => err instanceof NotFoundError && err.code === 'endpoint_not_found');

  const echo = endpoint();
  const key = `order-${Date.now()}`;
  const first = await echo.run({ message: 'once' }, { idempotencyKey: key });
  const second = await echo.run({ message: 'once' }, { idempotencyKey: key });
  assert.equal(second.id, first.id, 'same key and body: the same job');
  await assert.rejects(echo.run({ message: 'other' }, { idempotencyKey: key }), (err: unknown) => {
    assert.ok(err instanceof ConflictError);
    assert.equal(err.status, 409);
    assert.equal(err.code, 'idempotency_conflict');
    assert.match(err.message, new RegExp(first.id));
    return true;
  });
  await assert.rejects(echo.run({ message: 'x'.repeat(10 * 1024 * 1024) }), (err: unknown) => err instanceof PayloadTooLargeError && err.status === 413);
});

test('a webhook from the gateway verifies with verifyWebhook; a tampered body does not', async () => {
  const deliveries: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  let delivered!: () => void;
  const arrived = new Promise<void>((resolve) => (delivered = resolve));
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body });
      res.end('ok');
      delivered();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = receiver.address() as AddressInfo;
    const echo = endpoint();
    const { id } = await echo.run({ message: 'hooked' }, { webhook: `http://127.0.0.1:${port}/hook` });
    await echo.waitFor(id);
    await arrived;
    const [delivery] = deliveries;
    await verifyWebhook(WEBHOOK_SECRET, delivery!.headers, delivery!.body);
    const payload = JSON.parse(delivery!.body) as Record<string, unknown>;
    assert.equal(payload['id'], id);
    assert.equal(payload['status'], 'COMPLETED');
    await assert.rejects(verifyWebhook(WEBHOOK_SECRET, delivery!.headers, delivery!.body.replace('hooked', 'hacked')), WebhookVerificationError);
  } finally {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  }
});
