// RunPod's official JS client (`runpod-sdk` 1.1.2, unmodified) against a real gateway running the
// real echo worker: only its `baseUrl` points at kiln. What a user's existing RunPod client code sees.
import assert from 'node:assert/strict';
import dc from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import runpodSdk from 'runpod-sdk';
import { Gateway, parseConfig } from '@kiln/gateway';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ECHO = path.join(ROOT, 'examples/echo');
const API_KEY = 'test-key';
const TERMINAL = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'];

type SdkEndpoint = NonNullable<ReturnType<ReturnType<typeof runpodSdk>['endpoint']>>;

let gateway: Gateway | undefined;
let dir: string | undefined;
let echo: SdkEndpoint;

/** `METHOD /path?query` of every fetch the SDK makes (xior is fetch-based; undici publishes each request). */
const requests: string[] = [];
const onRequest = (message: unknown) => {
  const { request } = message as { request: { method: string; path: string } };
  requests.push(`${request.method} ${request.path}`);
};

function endpointFor(apiKey: string): SdkEndpoint {
  const endpoint = runpodSdk(apiKey, { baseUrl: `${gateway!.url}/v2` }).endpoint('echo');
  assert.ok(endpoint, 'runpodSdk(...).endpoint() returned null');
  return endpoint;
}

/** Polls `endpoint.status` (as SDK users do) until the job is in one of `wanted`; the deadline is only a safety net. */
async function waitForStatus(id: string, wanted: string[], timeoutMs = 15_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = (await echo.status(id)) as unknown as Record<string, unknown>;
    if (wanted.includes(String(status['status']))) return status;
    if (TERMINAL.includes(String(status['status']))) assert.fail(`job ${id} ended ${JSON.stringify(status)}, wanted ${wanted.join('|')}`);
    if (Date.now() > deadline) assert.fail(`job ${id} is still ${String(status['status'])}, wanted ${wanted.join('|')}`);
    await delay(25);
  }
}

/** The SDK's error for a non-2xx answer (xior's XiorError) carries the HTTP status in `response.status`. */
function httpStatusOf(error: unknown): number | undefined {
  return (error as { response?: { status?: number } }).response?.status;
}

before(async () => {
  dc.subscribe('undici:request:create', onRequest);
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-runpod-sdk-'));
  const config = parseConfig(
    {
      endpoints: {
        // One worker, always up: cancel and purge-queue tests depend on it being the only one.
        echo: { worker: { command: `${process.execPath} dist/worker.js`, cwd: ECHO }, workersMin: 1, workersMax: 1, idleTimeout: 60 },
      },
      gateway: { port: 0, apiKeys: [API_KEY], pingIntervalMs: 1000, pingTimeoutMs: 5000, stopGraceMs: 2000 },
    },
    { baseDir: dir, env: {} },
  );
  gateway = new Gateway(config, { tickMs: 100, log: { info() {}, warn() {}, error() {} } });
  await gateway.start();
  echo = endpointFor(API_KEY);
  // Wait for the worker's cold start, through the SDK's own health call.
  const deadline = Date.now() + 15_000;
  while ((await echo.health()).workers.idle < 1) {
    if (Date.now() > deadline) assert.fail('the echo worker did not become ready');
    await delay(50);
  }
});

after(async () => {
  dc.unsubscribe('undici:request:create', onRequest);
  await gateway?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('run then status: IN_QUEUE at once, then COMPLETED with the echo output', async () => {
  const submitted = await echo.run({ input: { message: 'hello from runpod-sdk' } });
  assert.equal(submitted.status, 'IN_QUEUE');
  assert.equal(typeof submitted.id, 'string');
  const done = await waitForStatus(submitted.id, ['COMPLETED']);
  assert.equal(done['id'], submitted.id);
  assert.equal((done['output'] as { message: string }).message, 'hello from runpod-sdk');
  assert.equal(typeof done['delayTime'], 'number');
  assert.equal(typeof done['executionTime'], 'number');
  // The SDK's own flags, computed from a 200 answer.
  assert.equal(done['started'], true);
  assert.equal(done['completed'], true);
  assert.equal(done['succeeded'], true);
});

test('runSync: /runsync?wait= answers IN_PROGRESS, the SDK long-polls /status-sync until COMPLETED', async () => {
  const from = requests.length;
  // wait=2000 while the job takes 2.5 s: the runsync answer is not final, so the SDK must poll status-sync.
  const result = (await echo.runSync({ input: { message: 'sync via sdk', sleepMs: 2500 } }, 2000)) as unknown as Record<string, unknown>;
  assert.equal(result['status'], 'COMPLETED', JSON.stringify(result));
  assert.equal((result['output'] as { message: string }).message, 'sync via sdk');
  assert.equal(result['completed'], true);
  assert.equal(result['succeeded'], true);
  const id = String(result['id']);
  assert.match(id, /^sync-/);
  const sent = requests.slice(from);
  assert.equal(sent[0], 'POST /v2/echo/runsync?wait=2000');
  const polls = sent.filter((r) => r.startsWith(`GET /v2/echo/status-sync/${id}?wait=`)).length;
  // The SDK re-polls with no delay: /status-sync must hold the request, or it spins.
  assert.ok(polls >= 1 && polls <= 5, `${polls} /status-sync polls: ${sent.join(', ')}`);
});

test('stream: the async iterable yields the words in order, from a long-polling /stream', async () => {
  const { id } = await echo.run({ input: { message: 'alpha beta gamma delta', stream: true, sleepMs: 800 } });
  const from = requests.length;
  const items: unknown[] = [];
  for await (const item of echo.stream(id)) items.push(item);
  assert.deepEqual(items, ['alpha', 'beta', 'gamma', 'delta'].map((word) => ({ output: { word } })));
  // The SDK re-requests /stream with no delay: without long-polling it would spin hundreds of times.
  const polls = requests.slice(from).filter((r) => r.startsWith(`GET /v2/echo/stream/${id}`)).length;
  assert.ok(polls >= 1 && polls <= 12, `${polls} /stream requests for 4 chunks`);
  assert.equal((await waitForStatus(id, ['COMPLETED']))['status'], 'COMPLETED');
});

test('cancel of a running job: CANCELLED, and the only worker is free again long before the job would end', async () => {
  const { id } = await echo.run({ input: { message: 'long', sleepMs: 60_000 } });
  await waitForStatus(id, ['IN_PROGRESS']);
  const cancelled = await echo.cancel(id);
  assert.deepEqual(cancelled, { id, status: 'CANCELLED' });
  assert.equal((await echo.status(id)).status, 'CANCELLED');
  const started = Date.now();
  const next = await echo.runSync({ input: { message: 'after cancel' } }, 15_000);
  assert.equal(next.status, 'COMPLETED');
  assert.ok(Date.now() - started < 10_000, 'the worker stopped the cancelled job (job-stop)');
  assert.equal((await echo.status(id)).status, 'CANCELLED');
});

test('purgeQueue: removes the queued jobs only; they end CANCELLED and never run', async () => {
  const busy = await echo.run({ input: { message: 'busy', sleepMs: 60_000 } });
  await waitForStatus(busy.id, ['IN_PROGRESS']);
  const queued = [await echo.run({ input: { message: 'q1' } }), await echo.run({ input: { message: 'q2' } })];
  assert.deepEqual(await echo.purgeQueue(), { removed: 2, status: 'completed' });
  for (const { id } of queued) assert.equal((await echo.status(id)).status, 'CANCELLED');
  assert.equal((await echo.status(busy.id)).status, 'IN_PROGRESS', 'the running job is not purged');
  assert.equal((await echo.cancel(busy.id)).status, 'CANCELLED');
  for (const { id } of queued) assert.ok(!Object.hasOwn(await echo.status(id), 'output'), 'a purged job never ran');
});

test('health: job counters and the worker states the SDK types declare', async () => {
  const health = await echo.health();
  for (const key of ['completed', 'failed', 'inProgress', 'inQueue', 'retried'] as const) {
    assert.equal(typeof health.jobs[key], 'number', `jobs.${key}`);
  }
  for (const key of ['idle', 'initializing', 'ready', 'running', 'throttled'] as const) {
    assert.equal(typeof health.workers[key], 'number', `workers.${key}`);
  }
  assert.ok(health.jobs.completed >= 4, JSON.stringify(health));
  assert.equal(health.jobs.inQueue, 0);
  assert.equal(health.workers.idle + health.workers.running, 1, JSON.stringify(health));
});

test('a wrong API key: every SDK call throws with HTTP 401', async () => {
  const intruder = endpointFor('wrong-key');
  const before = (await echo.health()).jobs;
  for (const call of [
    () => intruder.run({ input: { message: 'x' } }),
    () => intruder.runSync({ input: { message: 'x' } }, 2000),
    () => intruder.health(),
    () => intruder.purgeQueue(),
  ]) {
    await assert.rejects(call(), (error: unknown) => {
      assert.equal(httpStatusOf(error), 401, String(error));
      return true;
    });
  }
  assert.deepEqual((await echo.health()).jobs, before, 'nothing was submitted');
});
