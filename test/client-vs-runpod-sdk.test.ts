// RunPod's own JS client (`runpod-sdk`, unmodified) and @kiln/client against the same gateway and
// the same jobs: what one reports, the other reports too (the SDK only adds its started/completed/
// succeeded flags). Real sockets, real echo worker processes.
import assert from 'node:assert/strict';
import dc from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import runpodSdk from 'runpod-sdk';
import { JobFailedError, NotFoundError, UnauthorizedError, kiln, outputOf } from '@kiln/client';
import type { KilnEndpoint } from '@kiln/client';
import { Gateway, parseConfig } from '@kiln/gateway';
import { ECHO_DIR, ECHO_SOURCE_COMMAND } from './support/echo-worker.ts';

const API_KEY = 'same-key';
const SDK_FLAGS = ['started', 'completed', 'succeeded'];

type SdkEndpoint = NonNullable<ReturnType<ReturnType<typeof runpodSdk>['endpoint']>>;

let gateway: Gateway;
let dir: string;
let sdk: SdkEndpoint;
let client: KilnEndpoint<{ message: string; sleepMs?: number; stream?: boolean; fail?: string }, { message: string }, { word: string }>;

/** The SDK's answer without the flags it computes client-side. */
function withoutSdkFlags(value: unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([key]) => !SDK_FLAGS.includes(key)));
}

/** `METHOD /path?query` of every fetch either client makes (both are fetch-based; undici publishes each request). */
const requests: string[] = [];
const onRequest = (message: unknown) => {
  const { request } = message as { request: { method: string; path: string } };
  requests.push(`${request.method} ${request.path}`);
};

/** The SDK's status answer; its declared type leaves out the flags and `error`. */
async function sdkStatus(id: string): Promise<Record<string, unknown>> {
  return (await sdk.status(id)) as unknown as Record<string, unknown>;
}

function httpStatusOf(error: unknown): number | undefined {
  return (error as { response?: { status?: number } }).response?.status;
}

before(async () => {
  dc.subscribe('undici:request:create', onRequest);
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-client-vs-sdk-'));
  const config = parseConfig(
    {
      endpoints: { echo: { worker: { command: ECHO_SOURCE_COMMAND, cwd: ECHO_DIR }, workersMin: 1, workersMax: 1, idleTimeout: 60 } },
      gateway: { port: 0, apiKeys: [API_KEY], pingIntervalMs: 1000, pingTimeoutMs: 5000, stopGraceMs: 2000 },
    },
    { baseDir: dir, env: {} },
  );
  gateway = new Gateway(config, { tickMs: 100, log: { info() {}, warn() {}, error() {} } });
  await gateway.start();
  const baseUrl = `${gateway.url}/v2`;
  const endpoint = runpodSdk(API_KEY, { baseUrl }).endpoint('echo');
  assert.ok(endpoint);
  sdk = endpoint;
  client = kiln({ baseUrl, apiKey: API_KEY }).endpoint('echo');
  const deadline = Date.now() + 30_000;
  while ((await client.health()).workers.idle < 1) {
    if (Date.now() > deadline) assert.fail('the echo worker did not become ready');
    await delay(50);
  }
});

after(async () => {
  dc.unsubscribe('undici:request:create', onRequest);
  await gateway?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('the same finished job: identical status objects, whichever client submitted it', async () => {
  const bySdk = await sdk.run({ input: { message: 'submitted by the sdk' } });
  const byClient = await client.run({ message: 'submitted by kiln' });
  assert.deepEqual(Object.keys(bySdk).sort(), Object.keys(byClient).sort());
  assert.equal(bySdk.status, byClient.status);
  for (const id of [bySdk.id, byClient.id]) {
    const waited = await client.waitFor(id);
    assert.equal(waited.status, 'COMPLETED');
    const fromSdk = await sdkStatus(id);
    assert.equal(fromSdk['succeeded'], true);
    assert.deepEqual(withoutSdkFlags(fromSdk), await client.status(id));
    assert.deepEqual(withoutSdkFlags(fromSdk), waited);
  }
});

test('runSync past its wait: both follow status-sync to the same COMPLETED shape and output', async () => {
  const input = { message: 'slow and synchronous', sleepMs: 1300 };
  // One after the other: the endpoint has one worker, and the SDK's timeout also bounds its whole wait.
  let from = requests.length;
  const fromSdk = await sdk.runSync({ input }, 1000);
  const sdkRequests = requests.slice(from);
  from = requests.length;
  const fromClient = await client.runSync(input, { waitMs: 1000 });
  const clientRequests = requests.slice(from);
  assert.equal(fromSdk.status, 'COMPLETED');
  assert.equal(fromClient.status, 'COMPLETED');
  for (const [sent, id] of [
    [sdkRequests, fromSdk.id],
    [clientRequests, fromClient.id],
  ] as const) {
    assert.equal(sent[0], 'POST /v2/echo/runsync?wait=1000');
    assert.ok(sent.length >= 2 && sent.slice(1).every((r) => r.startsWith(`GET /v2/echo/status-sync/${id}?wait=`)), sent.join(', '));
  }
  assert.deepEqual(Object.keys(withoutSdkFlags(fromSdk)).sort(), Object.keys(fromClient).sort());
  assert.equal((fromSdk.output as { message: string }).message, outputOf(fromClient).message);
  // Two different jobs, both finished: each client reads the other's the same way.
  assert.deepEqual(withoutSdkFlags(await sdk.status(fromClient.id)), await client.status(fromClient.id));
  assert.deepEqual(withoutSdkFlags(await sdk.status(fromSdk.id)), await client.status(fromSdk.id));
});

test('stream: the SDK polling /stream and the client on SSE, reading the same job at once, get the same chunks', async () => {
  const { id } = await client.run({ message: 'one stream two readers', stream: true, sleepMs: 1200 });
  const viaSdk = (async () => {
    const chunks: unknown[] = [];
    for await (const item of sdk.stream(id)) chunks.push((item as { output: unknown }).output);
    return chunks;
  })();
  const viaClient = (async () => {
    const chunks: unknown[] = [];
    for await (const chunk of client.stream(id)) chunks.push(chunk);
    return chunks;
  })();
  const [sdkChunks, clientChunks] = await Promise.all([viaSdk, viaClient]);
  assert.deepEqual(clientChunks, ['one', 'stream', 'two', 'readers'].map((word) => ({ word })));
  assert.deepEqual(sdkChunks, clientChunks);
});

test('a failed job: the same status object; the SDK says succeeded=false, the client throws JobFailedError on its output', async () => {
  const failed = await client.runSync({ message: 'x', fail: 'same failure' });
  const fromSdk = await sdkStatus(failed.id);
  assert.equal(fromSdk['succeeded'], false);
  assert.deepEqual(withoutSdkFlags(fromSdk), failed);
  assert.throws(() => outputOf(failed), (err: unknown) => err instanceof JobFailedError && err.error === fromSdk['error']);
});

test('cancel, health and purgeQueue answer the two clients alike', async () => {
  const [a, b] = [await client.run({ message: 'a', sleepMs: 60_000 }), await client.run({ message: 'b', sleepMs: 60_000 })];
  assert.deepEqual(await sdk.cancel(a.id), await client.cancel(b.id).then((r) => ({ ...r, id: a.id })));
  assert.deepEqual(withoutSdkFlags(await sdk.status(b.id)), await client.status(b.id));
  assert.deepEqual(await sdk.purgeQueue(), await client.purgeQueue());
  const [fromSdk, fromClient] = [await sdk.health(), await client.health()];
  assert.deepEqual(fromSdk.jobs, fromClient.jobs);
  assert.deepEqual(Object.keys(fromSdk.workers).sort(), Object.keys(fromClient.workers).sort());
});

test('refusals carry the same HTTP status: 401 for a wrong key, 404 for an unknown job', async () => {
  const baseUrl = `${gateway.url}/v2`;
  const sdkIntruder = runpodSdk('wrong', { baseUrl }).endpoint('echo')!;
  const clientIntruder = kiln({ baseUrl, apiKey: 'wrong' }).endpoint('echo');
  const sdkStatus = await sdkIntruder.health().then(() => undefined, httpStatusOf);
  await assert.rejects(clientIntruder.health(), (err: unknown) => err instanceof UnauthorizedError && err.status === sdkStatus);
  assert.equal(sdkStatus, 401);
  const missing = await sdk.status('no-such-job').then(() => undefined, httpStatusOf);
  assert.equal(missing, 404);
  await assert.rejects(client.status('no-such-job'), (err: unknown) => err instanceof NotFoundError && err.status === missing);
});
