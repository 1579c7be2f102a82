import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ManualClock, WebhookVerificationError, verifyWebhook, type WebhookEvent } from '@kiln/protocol';
import type { WebhookSettings } from './config.ts';
import type { JobRecord, JobStore } from './job-store.ts';
import { openSqliteStore } from './sqlite-store.ts';
import { tempSqlitePath, type TempSqlitePath } from './test-databases.ts';
import { WebhookDispatcher } from './webhook-dispatcher.ts';

const SECRET = `whsec_${Buffer.alloc(32, 42).toString('base64')}`;
const SETTINGS: WebhookSettings = { secret: SECRET, maxAttempts: 8, timeoutMs: 2000, initialDelayMs: 5000, backoffFactor: 2 };

/** What the receiver does with the n-th call (from 1): answer with a status, or never answer. */
type Reply = number | 'hang';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  /** Resolves when the caller closed the connection without waiting for an answer. */
  cutOff: Promise<void>;
}

/** A loopback webhook receiver on a real socket. */
class Receiver {
  readonly calls: Received[] = [];
  readonly #server: Server;
  readonly #hanging: ServerResponse[] = [];
  #waiters: (() => void)[] = [];
  url = '';

  constructor(reply: (n: number) => Reply) {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const cutOff = new Promise<void>((resolve) => res.once('close', () => !res.writableFinished && resolve()));
        this.calls.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), cutOff });
        const answer = reply(this.calls.length);
        if (answer === 'hang') this.#hanging.push(res);
        else res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer >= 300 ? `receiver says no (${answer})` : 'ok');
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
    return this;
  }

  /** Resolves once `n` calls have arrived (event-driven, no polling). */
  async waitForCalls(n: number): Promise<void> {
    while (this.calls.length < n) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

interface Logged {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown> | undefined;
}

describe('WebhookDispatcher', () => {
  let database: TempSqlitePath;
  let store: JobStore;
  let clock: ManualClock;
  let logs: Logged[];
  let receivers: Receiver[];
  let jobs = 0;

  const log = {
    info: (message: string, fields?: object) => void logs.push({ level: 'info', message, fields: fields as Record<string, unknown> }),
    warn: (message: string, fields?: object) => void logs.push({ level: 'warn', message, fields: fields as Record<string, unknown> }),
    error: (message: string, fields?: object) => void logs.push({ level: 'error', message, fields: fields as Record<string, unknown> }),
  };

  function dispatcher(settings: Partial<WebhookSettings> = {}): WebhookDispatcher {
    return new WebhookDispatcher({ store, clock, log, settings: { ...SETTINGS, ...settings } });
  }

  async function receiver(reply: (n: number) => Reply): Promise<Receiver> {
    const r = await new Receiver(reply).listen();
    receivers.push(r);
    return r;
  }

  /** A job claimed by worker `w1`, with a webhook to `url`. */
  async function runningJob(url: string, webhookEvents?: WebhookEvent[]): Promise<JobRecord> {
    const now = clock.now();
    const { job } = await store.enqueue({
      id: `job-${++jobs}`,
      endpoint: 'tts',
      input: { text: 'hello' },
      webhook: url,
      ...(webhookEvents ? { webhookEvents } : {}),
      createdAt: now - 1500,
      expiresAt: now + 3_600_000,
      executionTimeoutMs: 60_000,
    });
    const [taken] = await store.claim('tts', 'w1', 1, now - 1000);
    assert.equal(taken?.id, job.id);
    return taken;
  }

  /** A job that ended COMPLETED with `output`, with a webhook to `url`. */
  async function completedJob(url: string, output: unknown = { text: 'done ✓' }, webhookEvents?: WebhookEvent[]): Promise<JobRecord> {
    const job = await runningJob(url, webhookEvents);
    const finished = await store.finish(job.id, 'w1', { output }, clock.now(), clock.now() + 1_800_000);
    assert.ok(finished);
    return finished;
  }

  async function deliveries(state?: 'pending' | 'delivered' | 'failed') {
    return store.listWebhookDeliveries({ endpoint: 'tts', limit: 100, ...(state ? { state } : {}) });
  }

  beforeEach(async () => {
    database = await tempSqlitePath();
    store = await openSqliteStore({ path: database.path });
    clock = new ManualClock();
    logs = [];
    receivers = [];
  });

  afterEach(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await store.close();
    await database.remove();
  });

  test('a receiver failing the first 3 calls gets the job exactly once more, accepted, on the backoff schedule; the signature verifies and a tampered body does not', async () => {
    const hook = await receiver((n) => (n <= 3 ? 500 : 200));
    const job = await completedJob(hook.url);
    const webhooks = dispatcher();

    await webhooks.tick();
    assert.equal(hook.calls.length, 1);
    const [first] = await deliveries('pending');
    assert.equal(first?.attempts, 1);
    assert.equal(first?.nextAttemptAt, clock.now() + 5000);
    assert.equal(first?.lastStatus, 500);
    assert.equal(first?.lastError, 'HTTP 500: receiver says no (500)');

    // 5 s, then 10 s, then 20 s between tries: nothing is sent a millisecond early.
    for (const delay of [5000, 10_000, 20_000]) {
      await clock.advance(delay - 1);
      await webhooks.tick();
      const before: number = hook.calls.length;
      await clock.advance(1);
      await webhooks.tick();
      assert.equal(hook.calls.length, before + 1, `a call ${delay} ms after the previous one`);
    }
    await clock.advance(3_600_000);
    await webhooks.tick();
    assert.equal(hook.calls.length, 4, 'delivered: never sent again');

    const [done] = await deliveries('delivered');
    assert.equal(done?.attempts, 4);
    assert.equal(done?.lastStatus, 200);
    assert.equal(done?.lastError, null);
    assert.equal(done?.deliveredAt, clock.now() - 3_600_000);

    const ids = new Set(hook.calls.map((c) => c.headers['webhook-id']));
    assert.equal(ids.size, 1, 'the same webhook-id on every try');
    assert.match(String([...ids][0]), /^msg_[0-9a-f]{32}$/);
    assert.equal(new Set(hook.calls.map((c) => c.body)).size, 1, 'the same body on every try');

    const accepted = hook.calls[3]!;
    assert.equal(accepted.headers['content-type'], 'application/json');
    assert.equal(accepted.headers['webhook-timestamp'], String(Math.floor((clock.now() - 3_600_000) / 1000)), 'stamped when sent');
    await verifyWebhook(SECRET, accepted.headers, accepted.body, { now: clock.now() - 3_600_000 });
    await assert.rejects(
      verifyWebhook(SECRET, accepted.headers, accepted.body.replace('done', 'DONE'), { now: clock.now() - 3_600_000 }),
      (err: unknown) => err instanceof WebhookVerificationError && err.reason === 'bad-signature',
    );

    // RunPod's envelope: the status object, plus input and webhook.
    assert.deepEqual(JSON.parse(accepted.body), {
      id: job.id,
      status: 'COMPLETED',
      delayTime: 500,
      executionTime: 1000,
      output: { text: 'done ✓' },
      workerId: 'w1',
      input: { text: 'hello' },
      webhook: hook.url,
    });

    const failures = logs.filter((l) => l.level === 'warn' && /failed \(attempt/.test(l.message));
    assert.equal(failures.length, 3);
    assert.ok(failures.every((l) => l.fields?.['jobId'] === job.id && l.fields?.['error'] === 'HTTP 500: receiver says no (500)'));
    assert.match(failures[0]!.message, new RegExp(`job ${job.id} failed \\(attempt 1 of 8\\): HTTP 500.*next try in 5000 ms`));
  });

  test('a receiver that hangs is cut off after timeoutMs and the call retried', async () => {
    const hook = await receiver((n) => (n === 1 ? 'hang' : 204));
    await completedJob(hook.url);
    const webhooks = dispatcher();

    const round = webhooks.tick();
    await hook.waitForCalls(1);
    await clock.advance(1999);
    assert.equal((await deliveries('pending'))[0]?.lastError, null, 'still waiting for the answer');
    await clock.advance(1);
    await round;
    await hook.calls[0]!.cutOff;
    const [pending] = await deliveries('pending');
    assert.equal(pending?.lastError, 'no answer within 2000 ms');
    assert.equal(pending?.lastStatus, null);
    assert.ok(logs.some((l) => l.level === 'warn' && l.message.includes('no answer within 2000 ms') && l.fields?.['jobId'] === pending?.jobId));

    await clock.advance(5000);
    await webhooks.tick();
    assert.equal(hook.calls.length, 2);
    assert.equal((await deliveries('delivered'))[0]?.lastStatus, 204);
  });

  test('after maxAttempts failures the delivery is failed, kept and no longer tried; a refused connection names its cause', async () => {
    const hook = await receiver(() => 503);
    const job = await completedJob(hook.url);
    await hook.close();
    receivers = [];
    const webhooks = dispatcher({ maxAttempts: 3, initialDelayMs: 100, backoffFactor: 1 });
    for (let i = 0; i < 3; i++) {
      await webhooks.tick();
      await clock.advance(100);
    }
    const [failed] = await deliveries('failed');
    assert.equal(failed?.attempts, 3);
    assert.match(failed?.lastError ?? '', /ECONNREFUSED/);
    const last = logs.find((l) => l.level === 'error');
    assert.match(last?.message ?? '', new RegExp(`job ${job.id} failed for good after 3 attempt\\(s\\): .*ECONNREFUSED`));
    await clock.advance(3_600_000);
    await webhooks.tick();
    assert.equal((await deliveries('failed')).length, 1);
    assert.deepEqual(await deliveries('pending'), []);
  });

  test('a non-2xx answer is a failure, redirects included', async () => {
    const hook = await receiver((n) => [302, 404, 200][n - 1] ?? 200);
    await completedJob(hook.url);
    const webhooks = dispatcher({ initialDelayMs: 100, backoffFactor: 1 });
    await webhooks.tick();
    await clock.advance(100);
    await webhooks.tick();
    assert.deepEqual((await deliveries('pending')).map((d) => [d.attempts, d.lastStatus]), [[2, 404]]);
    await clock.advance(100);
    await webhooks.tick();
    assert.equal((await deliveries('delivered')).length, 1);
  });

  test('every finished state owes one completed call, once, even with two gateways catching up; a job that did not ask for it owes none', async () => {
    const hook = await receiver(() => 200);
    await completedJob(hook.url);
    const failedJob = await runningJob(hook.url);
    await store.finish(failedJob.id, 'w1', { error: 'boom' }, clock.now(), clock.now() + 60_000);
    const { job: cancelled } = await store.enqueue({ id: 'queued', endpoint: 'tts', input: 1, webhook: hook.url, createdAt: clock.now(), expiresAt: clock.now() + 60_000, executionTimeoutMs: 5000 });
    await store.cancel('tts', cancelled.id, clock.now(), clock.now() + 60_000);
    await completedJob(hook.url, 'quiet', ['start']);

    await Promise.all([dispatcher().tick(), dispatcher().tick()]);
    await dispatcher().tick();
    const bodies = hook.calls.map((c) => JSON.parse(c.body) as { id: string; status: string; error?: string });
    assert.deepEqual(bodies.map((b) => b.status).sort(), ['CANCELLED', 'COMPLETED', 'FAILED']);
    assert.equal(bodies.find((b) => b.status === 'FAILED')?.error, 'boom');
    assert.equal((await deliveries('delivered')).length, 3);
  });

  test('rounds look at recently finished jobs; one stamped long ago (a gateway with a slow clock) is found by the full look within 5 minutes', async () => {
    const hook = await receiver(() => 200);
    const webhooks = dispatcher();
    await webhooks.tick();
    const job = await runningJob(hook.url);
    await store.finish(job.id, 'w1', { output: 'late' }, clock.now() - 120_000, clock.now() + 60_000);
    const recent = await completedJob(hook.url, 'recent');
    await webhooks.tick();
    assert.deepEqual(hook.calls.map((c) => JSON.parse(c.body).id), [recent.id]);
    await clock.advance(5 * 60_000 - 1);
    await webhooks.tick();
    assert.equal(hook.calls.length, 1);
    await clock.advance(1);
    await webhooks.tick();
    assert.deepEqual(hook.calls.map((c) => JSON.parse(c.body).id), [recent.id, job.id]);
  });

  test('a backlog larger than one read is caught up in one round', async () => {
    const hook = await receiver(() => 200);
    for (let i = 0; i < 130; i++) await completedJob(hook.url, i);
    await dispatcher().tick();
    assert.equal((await store.listWebhookDeliveries({ endpoint: 'tts', limit: 1000 })).length, 130);
  });

  test('jobEvent queues start/progress/output calls only for the events the request asked for', async () => {
    const hook = await receiver(() => 200);
    const job = await runningJob(hook.url, ['start', 'progress', 'completed']);
    const webhooks = dispatcher();

    assert.equal(await webhooks.jobEvent(job, 'start'), true);
    assert.equal(await webhooks.jobEvent(job, 'output'), false, 'not asked for');
    assert.equal(await store.progress(job.id, 'w1', { pct: 50 }), true);
    const progressed = (await store.get('tts', job.id))!;
    assert.equal(await webhooks.jobEvent(progressed, 'progress'), true);
    const plain = await runningJob(hook.url);
    assert.equal(await webhooks.jobEvent(plain, 'start'), false, 'RunPod default: completed only');
    const { job: silent } = await store.enqueue({ id: 'silent', endpoint: 'tts', input: 1, webhookEvents: ['start'], createdAt: clock.now(), expiresAt: clock.now() + 60_000, executionTimeoutMs: 5000 });
    assert.equal(await webhooks.jobEvent(silent, 'start'), false, 'no webhook URL');

    await webhooks.tick();
    const bodies = hook.calls.map((c) => JSON.parse(c.body) as Record<string, unknown>);
    assert.deepEqual(
      bodies.map((b) => [b['event'], b['status'], b['output']]).sort(),
      [
        ['progress', 'IN_PROGRESS', { pct: 50 }],
        ['start', 'IN_PROGRESS', undefined],
      ],
    );
    assert.ok(bodies.every((b) => b['id'] === job.id && b['webhook'] === hook.url && (b['input'] as { text: string }).text === 'hello'));
    for (const call of hook.calls) await verifyWebhook(SECRET, call.headers, call.body, { now: clock.now() });
    assert.equal(new Set(hook.calls.map((c) => c.headers['webhook-id'])).size, 2, 'each event is its own delivery');

    await store.finish(job.id, 'w1', { output: 'end' }, clock.now(), clock.now() + 60_000);
    await webhooks.tick();
    const last = JSON.parse(hook.calls.at(-1)!.body) as Record<string, unknown>;
    assert.equal(last['status'], 'COMPLETED');
    assert.equal('event' in last, false, 'the completed call is RunPod’s envelope as is');
  });

  test('without a secret, calls carry webhook-id and webhook-timestamp but no signature, and the first call warns once how to set one', async () => {
    const hook = await receiver(() => 200);
    await completedJob(hook.url);
    const { secret: _omitted, ...unsigned } = SETTINGS;
    const webhooks = new WebhookDispatcher({ store, clock, log, settings: unsigned });
    webhooks.start();
    await hook.waitForCalls(1);
    await completedJob(hook.url);
    await webhooks.tick();
    await hook.waitForCalls(2);
    await webhooks.stop();
    const [call] = hook.calls;
    assert.match(String(call?.headers['webhook-id']), /^msg_/);
    assert.equal(call?.headers['webhook-timestamp'], String(Math.floor(clock.now() / 1000)));
    assert.equal(call?.headers['webhook-signature'], undefined);
    const warnings = logs.filter((l) => l.level === 'warn' && /unsigned/.test(l.message));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /gateway\.webhooks\.secret .*KILN_WEBHOOK_SECRET.*whsec_/);

    const signed = dispatcher();
    signed.start();
    await signed.stop();
    assert.equal(logs.filter((l) => /unsigned/.test(l.message)).length, 1, 'no warning with a secret');
  });

  test('stop cuts off a call in flight and gives its attempt back; the next gateway delivers it', async () => {
    const hook = await receiver((n) => (n === 1 ? 'hang' : 200));
    await completedJob(hook.url);
    const first = dispatcher();
    first.start();
    await hook.waitForCalls(1);
    await first.stop();
    await hook.calls[0]!.cutOff;
    const [pending] = await deliveries('pending');
    assert.deepEqual([pending?.attempts, pending?.nextAttemptAt, pending?.lastError], [0, clock.now(), null]);

    await dispatcher().tick();
    assert.equal(hook.calls.length, 2);
    assert.equal((await deliveries('delivered'))[0]?.attempts, 1);
  });

  test('the loop sends a queued event without waiting for the next poll', async () => {
    const hook = await receiver(() => 200);
    const job = await runningJob(hook.url, ['start']);
    const webhooks = dispatcher();
    webhooks.start();
    try {
      await clock.waitForSleep(1000);
      await webhooks.jobEvent(job, 'start');
      await hook.waitForCalls(1);
      assert.equal(JSON.parse(hook.calls[0]!.body).event, 'start');
    } finally {
      await webhooks.stop();
    }
  });
});
