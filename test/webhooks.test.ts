// Webhooks end to end: a real gateway on a SQLite file and a socket, a real worker process (a
// minimal RunPod worker written below), a loopback receiver, and the gateway on a manual clock so
// that retry delays pass when the test says so. The outbox survives a gateway restart, and a job
// that ended while no gateway sent its webhook (a crash right after the transition) still gets it.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { Gateway, openSqliteStore, parseConfig, type GatewayConfig } from '@kiln/gateway';
import { ManualClock, WebhookVerificationError, verifyWebhook } from '@kiln/protocol';

const SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;

// Takes one job at a time and answers `{ echo: input }`: what the gateway's worker API expects of
// any RunPod worker. With `input.report`, it first posts a progress update and a stream chunk.
const WORKER = `
const auth = process.env.RUNPOD_AI_API_KEY;
const take = process.env.RUNPOD_WEBHOOK_GET_JOB;
const done = process.env.RUNPOD_WEBHOOK_POST_OUTPUT;
for (;;) {
  const res = await fetch(take + '&job_in_progress=0', { headers: { authorization: auth } });
  if (res.status !== 200) { await res.arrayBuffer(); continue; }
  const job = await res.json();
  if (job.input && job.input.report) {
    await fetch(done.replace('$ID', job.id) + '&isStream=false', { method: 'POST', headers: { authorization: auth }, body: JSON.stringify({ status: 'IN_PROGRESS', output: 'half way' }) });
    await fetch(process.env.RUNPOD_WEBHOOK_POST_STREAM.replace('$ID', job.id) + '&isStream=true', { method: 'POST', headers: { authorization: auth }, body: JSON.stringify({ output: 'chunk 1' }) });
  }
  await fetch(done.replace('$ID', job.id) + '&isStream=false', { method: 'POST', headers: { authorization: auth }, body: JSON.stringify({ output: { echo: job.input } }) });
}
`;

interface Call {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/** A loopback webhook receiver that refuses calls (503) until told to accept them. */
class Receiver {
  readonly calls: Call[] = [];
  accepting = false;
  url = '';
  readonly #server: Server;
  #waiters: (() => void)[] = [];

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = this.accepting ? 200 : 503;
        this.calls.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
        res.writeHead(status).end();
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/kiln-hook`;
  }

  /** Resolves once `n` calls have arrived. */
  async waitForCalls(n: number): Promise<void> {
    while (this.calls.length < n) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

let dir: string;
let config: GatewayConfig;
let receiver: Receiver;
const clock = new ManualClock(Date.now());
const logs: { level: string; message: string; fields?: object }[] = [];
let running: Gateway | undefined;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-webhooks-'));
  await writeFile(path.join(dir, 'worker.mjs'), WORKER);
  config = parseConfig(
    {
      endpoints: { echo: { worker: { command: `${process.execPath} worker.mjs` }, workersMin: 1, workersMax: 1 } },
      gateway: { port: 0, databaseUrl: 'jobs.db', stopGraceMs: 2000, webhooks: { secret: SECRET, maxAttempts: 5, timeoutMs: 5000, initialDelayMs: 5000, backoffFactor: 2 } },
    },
    { baseDir: dir, env: {} },
  );
  receiver = new Receiver();
  await receiver.listen();
});

after(async () => {
  await receiver.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await running?.stop();
  running = undefined;
});

async function startGateway(): Promise<Gateway> {
  const capture = (level: string) => (message: string, fields?: object) => void logs.push({ level, message, ...(fields ? { fields } : {}) });
  running = new Gateway(config, { clock, log: { info: capture('info'), warn: capture('warn'), error: capture('error') } });
  await running.start();
  return running;
}

async function call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Polls /status (real time, a safety net only) until the job is COMPLETED. */
async function completed(gateway: Gateway, id: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { json } = await call('GET', `${gateway.url}/v2/echo/status/${id}`);
    if (json['status'] === 'COMPLETED') return json;
    if (Date.now() > deadline) throw new Error(`job ${id} is ${String(json['status'])}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a restart with deliveries pending delivers them all, each exactly once accepted, signed, with its webhook-id kept', async () => {
  const first = await startGateway();
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const { status, json } = await call('POST', `${first.url}/v2/echo/run`, { input: { n: i }, webhook: receiver.url });
    assert.equal(status, 200);
    ids.push(String(json['id']));
  }
  const statuses = await Promise.all(ids.map((id) => completed(first, id)));

  await first.webhooks.tick();
  await receiver.waitForCalls(3);
  assert.deepEqual(receiver.calls.map((c) => c.status), [503, 503, 503]);
  const pending = await first.store.listWebhookDeliveries({ endpoint: 'echo', state: 'pending', limit: 10 });
  assert.equal(pending.length, 3);
  assert.ok(pending.every((d) => d.attempts === 1 && d.lastStatus === 503));
  for (const id of ids) assert.ok(logs.some((l) => l.level === 'warn' && l.message.includes(`job ${id} failed (attempt 1 of 5): HTTP 503`)), `failure of ${id} logged`);
  await first.stop();
  running = undefined;

  receiver.accepting = true;
  const second = await startGateway();
  await second.webhooks.tick();
  assert.equal(receiver.calls.length, 3, 'not due before its backoff delay, restart or not');
  await clock.advance(5000);
  await second.webhooks.tick();
  await receiver.waitForCalls(6);
  assert.equal(receiver.calls.length, 6, 'each pending delivery sent once more');

  const accepted = receiver.calls.filter((c) => c.status === 200);
  assert.equal(accepted.length, 3);
  assert.deepEqual(new Set(accepted.map((c) => c.headers['webhook-id'])), new Set(receiver.calls.slice(0, 3).map((c) => c.headers['webhook-id'])));
  for (const c of accepted) await verifyWebhook(SECRET, c.headers, c.body, { now: clock.now() });
  await assert.rejects(
    verifyWebhook(SECRET, accepted[0]!.headers, accepted[0]!.body.replace('"n":', '"m":'), { now: clock.now() }),
    (err: unknown) => err instanceof WebhookVerificationError && err.reason === 'bad-signature',
  );
  const bodies = accepted.map((c) => JSON.parse(c.body) as Record<string, unknown>).sort((a, b) => ids.indexOf(String(a['id'])) - ids.indexOf(String(b['id'])));
  bodies.forEach((body, i) => assert.deepEqual(body, { ...statuses[i], input: { n: i }, webhook: receiver.url }, 'the status object plus input and webhook'));

  const delivered = await second.store.listWebhookDeliveries({ endpoint: 'echo', state: 'delivered', limit: 10 });
  assert.deepEqual(delivered.map((d) => d.attempts), [2, 2, 2]);
  await clock.advance(3_600_000);
  await second.webhooks.tick();
  assert.equal(receiver.calls.length, 6, 'nothing sent twice');
  await second.tick();
  assert.equal(await second.store.get('echo', ids[0]!), undefined, 'the jobs are gone after their retention');
  assert.equal((await second.store.listWebhookDeliveries({ endpoint: 'echo', limit: 10 })).length, 3, 'their deliveries are not');
});

test('a job that ended while no gateway sent webhooks (a crash right after the transition) gets its call, even past its retention', async () => {
  // The state a gateway killed right after `finish` leaves: a COMPLETED job, nothing in the outbox.
  const store = await openSqliteStore({ path: config.gateway.sqlitePath });
  const now = clock.now();
  await store.enqueue({ id: 'crashed-1', endpoint: 'echo', input: 'x', webhook: receiver.url, createdAt: now, expiresAt: now + 60_000, executionTimeoutMs: 60_000 });
  await store.claim('echo', 'gone-worker', 1, now);
  await store.finish('crashed-1', 'gone-worker', { output: 'y' }, now + 10, now - 1);
  await store.close();
  const before = receiver.calls.length;

  const gateway = await startGateway();
  await gateway.webhooks.tick();
  await receiver.waitForCalls(before + 1);
  const last = receiver.calls.at(-1)!;
  assert.equal(last.status, 200);
  assert.deepEqual(JSON.parse(last.body), {
    id: 'crashed-1',
    status: 'COMPLETED',
    delayTime: 0,
    executionTime: 10,
    output: 'y',
    workerId: 'gone-worker',
    input: 'x',
    webhook: receiver.url,
  });
  await verifyWebhook(SECRET, last.headers, last.body, { now: clock.now() });
  await gateway.tick();
  assert.equal(await gateway.store.get('echo', 'crashed-1'), undefined, 'deleted once its delivery is in the outbox, not before');
  assert.equal(receiver.calls.length, before + 1);
});

test('webhookEvents start, progress and output queue one call each as the worker reports, and completed follows the end', async () => {
  receiver.accepting = true;
  const gateway = await startGateway();
  // Start, progress and output calls may go out while the job runs (a queued event wakes the dispatcher).
  const before = receiver.calls.length;
  const { json } = await call('POST', `${gateway.url}/v2/echo/run`, {
    input: { report: true },
    webhook: receiver.url,
    webhookEvents: ['start', 'progress', 'output', 'completed'],
  });
  const id = String(json['id']);
  await completed(gateway, id);
  await gateway.webhooks.tick();
  await receiver.waitForCalls(before + 4);
  await gateway.webhooks.tick();
  assert.equal(receiver.calls.length, before + 4, 'one call per event');
  const bodies = receiver.calls.slice(before).map((c) => JSON.parse(c.body) as Record<string, unknown>);
  for (const c of receiver.calls.slice(before)) await verifyWebhook(SECRET, c.headers, c.body, { now: clock.now() });
  const byEvent = new Map(bodies.map((b) => [b['event'] ?? 'completed', b]));
  assert.deepEqual([...byEvent.keys()].sort(), ['completed', 'output', 'progress', 'start']);
  assert.ok(bodies.every((b) => b['id'] === id && b['webhook'] === receiver.url));
  assert.equal(byEvent.get('start')?.['status'], 'IN_PROGRESS');
  assert.equal(byEvent.get('progress')?.['output'], 'half way', 'the progress event carries the progress value');
  assert.deepEqual(byEvent.get('output')?.['stream'], [{ output: 'chunk 1' }], 'the output event carries the chunk it announces');
  assert.equal(byEvent.get('completed')?.['status'], 'COMPLETED');

  // The default is RunPod's: the terminal call only.
  const count = receiver.calls.length;
  const plain = await call('POST', `${gateway.url}/v2/echo/run`, { input: { report: true }, webhook: receiver.url });
  await completed(gateway, String(plain.json['id']));
  await gateway.webhooks.tick();
  await receiver.waitForCalls(count + 1);
  await gateway.webhooks.tick();
  const forPlain = receiver.calls.slice(count).map((c) => JSON.parse(c.body) as Record<string, unknown>);
  assert.deepEqual(forPlain.map((b) => [b['id'], b['status'], b['event']]), [[plain.json['id'], 'COMPLETED', undefined]]);
});

test('a webhook URL that is not http(s) is refused at /run with 400 and no job is stored', async () => {
  const gateway = await startGateway();
  const before = await gateway.store.counts('echo');
  const { status, json } = await call('POST', `${gateway.url}/v2/echo/run`, { input: 1, webhook: 'file:///etc/passwd' });
  assert.equal(status, 400);
  assert.equal(json['field'], 'webhook');
  assert.deepEqual(await gateway.store.counts('echo'), before);
});
