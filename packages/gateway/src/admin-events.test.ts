import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import type { ListedJob, MetricsSample, ModelView, WorkerView } from '@kiln/protocol';
import { WORKERS_CHECK_MS } from './admin-events.ts';
import { SSE_PING_MS } from './sse-stream.ts';
import { createTestGateway, fakeModels, TEST_API_KEY, type TestGateway, type TestGatewayOptions } from './test-gateway.ts';

interface FeedItem {
  event: string;
  data: unknown;
}

/** Reads a text/event-stream response one event (or comment, as event `:`) at a time. */
class FeedReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffer = '';

  constructor(res: Response) {
    this.#reader = res.body!.getReader();
  }

  async next(): Promise<FeedItem> {
    for (;;) {
      const end = this.#buffer.indexOf('\n\n');
      if (end !== -1) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        if (block.startsWith(':')) return { event: ':', data: block.slice(1).trim() };
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1] ?? 'null';
        return { event, data: JSON.parse(data) };
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error('the feed ended');
      this.#buffer += this.#decoder.decode(value, { stream: true });
    }
  }

  /** The next event named `event`, skipping others. */
  async nextOf(event: string): Promise<FeedItem> {
    for (;;) {
      const item = await this.next();
      if (item.event === event) return item;
    }
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

const TWO_ENDPOINTS = {
  endpoints: { echo: { worker: { command: 'node worker.js' } }, other: { worker: { command: 'node worker.js' } } },
  gateway: { apiKeys: [TEST_API_KEY] },
};

let gw: TestGateway;
afterEach(() => gw.close());

async function open(options: TestGatewayOptions = {}): Promise<TestGateway> {
  gw = await createTestGateway({ config: TWO_ENDPOINTS, ...options });
  return gw;
}

async function connect(query = '', signal?: AbortSignal): Promise<FeedReader> {
  const res = await gw.request(`/kiln/v1/events${query}`, { headers: { authorization: `Bearer ${TEST_API_KEY}` }, ...(signal ? { signal } : {}) });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-accel-buffering'), 'no', 'a buffering proxy (nginx) passes events on at once');
  const feed = new FeedReader(res);
  assert.equal((await feed.next()).event, ':', 'a first comment opens the stream');
  return feed;
}

test('jobs: each change is sent as its listing row with the endpoint, as it is created, taken and completed', async () => {
  await open();
  const feed = await connect();
  const worker = gw.addWorker();
  const id = await gw.run({ n: 1 });
  const created = (await feed.nextOf('jobs')).data as { endpoint: string; jobs: ListedJob[] };
  assert.equal(created.endpoint, 'echo');
  assert.deepEqual(created.jobs.map((j) => [j.id, j.endpoint, j.status]), [[id, 'echo', 'IN_QUEUE']]);
  await worker.take();
  const taken = (await feed.nextOf('jobs')).data as { jobs: ListedJob[] };
  assert.deepEqual(taken.jobs.map((j) => [j.id, j.status, j.workerId]), [[id, 'IN_PROGRESS', worker.workerId]]);
  await gw.clock.advance(40);
  await worker.done(id, { output: 'ok' });
  const done = (await feed.nextOf('jobs')).data as { jobs: ListedJob[] };
  assert.equal(done.jobs[0]!.status, 'COMPLETED');
  assert.equal(done.jobs[0]!.executionTime, 40);
  await feed.cancel();
});

test('jobs: changes notified together are coalesced into one event per endpoint; deleted jobs are left out', async () => {
  await open();
  const feed = await connect();
  const a = await gw.run({ a: 1 });
  const b = await gw.run({ b: 1 });
  const c = await gw.run({ c: 1 }, {}, 'other');
  // Let the creations go out (however they were grouped), then notify several at once, as the supervisor does.
  const seen = new Set<string>();
  while (seen.size < 3) for (const job of ((await feed.nextOf('jobs')).data as { jobs: ListedJob[] }).jobs) seen.add(job.id);
  gw.events.notify(a, 'echo');
  gw.events.notify(b, 'echo');
  gw.events.notify(a, 'echo');
  gw.events.notify('gone-job', 'echo');
  gw.events.notify(c, 'other');
  const first = (await feed.nextOf('jobs')).data as { endpoint: string; jobs: ListedJob[] };
  const second = (await feed.nextOf('jobs')).data as { endpoint: string; jobs: ListedJob[] };
  assert.deepEqual([first.endpoint, first.jobs.map((j) => j.id)], ['echo', [a, b]]);
  assert.deepEqual([second.endpoint, second.jobs.map((j) => j.id)], ['other', [c]]);
  await feed.cancel();
});

test('jobs: /purge-queue sends the purged jobs, now CANCELLED', async () => {
  await open();
  const feed = await connect();
  const a = await gw.run({ a: 1 });
  const b = await gw.run({ b: 1 });
  const seen = new Set<string>();
  while (seen.size < 2) for (const job of ((await feed.nextOf('jobs')).data as { jobs: ListedJob[] }).jobs) seen.add(job.id);
  const res = await gw.request('/v2/echo/purge-queue', { method: 'POST', headers: { authorization: `Bearer ${TEST_API_KEY}` } });
  assert.deepEqual(await res.json(), { removed: 2, status: 'completed' });
  const purged = (await feed.nextOf('jobs')).data as { endpoint: string; jobs: ListedJob[] };
  assert.deepEqual([purged.endpoint, purged.jobs.map((j) => [j.id, j.status]).sort()], ['echo', [[a, 'CANCELLED'], [b, 'CANCELLED']].sort()]);
  await feed.cancel();
});

test('?endpoint= gets only that endpoint\'s events; an unknown endpoint is a 404, no key a 401', async () => {
  await open();
  const feed = await connect('?endpoint=other');
  await gw.run({ n: 1 }, {}, 'echo');
  const id = await gw.run({ n: 2 }, {}, 'other');
  const event = (await feed.nextOf('jobs')).data as { endpoint: string; jobs: ListedJob[] };
  assert.deepEqual([event.endpoint, event.jobs.map((j) => j.id)], ['other', [id]]);
  await feed.cancel();
  assert.equal((await gw.request('/kiln/v1/events?endpoint=nope', { headers: { authorization: `Bearer ${TEST_API_KEY}` } })).status, 404);
  assert.equal((await gw.request('/kiln/v1/events')).status, 401);
});

test('workers: the current workers of each endpoint at once, then whenever they change (checked on the clock)', async () => {
  await open();
  gw.addWorker({ workerId: 'w1' });
  const feed = await connect('?endpoint=echo');
  const initial = (await feed.nextOf('workers')).data as { endpoint: string; workers: WorkerView[] };
  assert.deepEqual([initial.endpoint, initial.workers.map((w) => [w.workerId, w.state])], ['echo', [['w1', 'initializing']]]);
  const w2 = gw.addWorker({ workerId: 'w2' });
  gw.registry.recordTake(w2.workerId);
  await gw.clock.waitForSleep(WORKERS_CHECK_MS);
  await gw.clock.advance(WORKERS_CHECK_MS);
  const changed = (await feed.nextOf('workers')).data as { endpoint: string; workers: WorkerView[] };
  assert.deepEqual(changed.workers.map((w) => [w.workerId, w.state]), [['w1', 'initializing'], ['w2', 'idle']]);
  await feed.cancel();
});

test('metrics: every new sample of the endpoint; model: every model update', async () => {
  const models = fakeModels();
  await open({ models });
  const feed = await connect();
  await gw.metrics.sample();
  const metrics = [(await feed.nextOf('metrics')).data, (await feed.nextOf('metrics')).data] as { endpoint: string; sample: MetricsSample }[];
  assert.deepEqual(metrics.map((m) => m.endpoint), ['echo', 'other']);
  assert.deepEqual(metrics[0]!.sample, { t: gw.clock.now(), inQueue: 0, inProgress: 0, workers: 0, running: 0 });
  const model: ModelView = { name: 'tiny', source: 'hf:x/tiny', status: 'partial', files: 1, bytes: 10, totalBytes: 100, pull: { doneBytes: 10, totalBytes: 100 }, error: null };
  models.emit(model);
  assert.deepEqual((await feed.nextOf('model')).data, { model });
  await feed.cancel();
});

test('a `: ping` comment every 15 s on the clock', async () => {
  await open();
  const feed = await connect();
  await gw.clock.waitForSleep(SSE_PING_MS);
  await gw.clock.advance(SSE_PING_MS);
  assert.deepEqual(await feed.nextOf(':'), { event: ':', data: 'ping' });
  await feed.cancel();
});

test('disconnecting releases every subscription: job events, metrics, models, clock sleeps', async () => {
  const models = fakeModels();
  await open({ models });
  const one = await connect();
  const two = await connect('?endpoint=echo');
  assert.equal(gw.events.subscribers, 1, 'one subscription shared by every client');
  assert.equal(gw.metrics.subscribers, 1);
  assert.equal(models.listeners, 1);
  await one.cancel();
  assert.equal(gw.events.subscribers, 1, 'still one client');
  await two.cancel();
  assert.equal(gw.events.subscribers, 0);
  assert.equal(gw.metrics.subscribers, 0);
  assert.equal(models.listeners, 0);
  // The sleeps end on the abort; give their promise callbacks a turn.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(gw.clock.pending(), []);
});

test('over a real socket, a client that hangs up releases its subscriptions', async () => {
  const models = fakeModels();
  await open({ models, transport: 'socket' });
  const hangUp = new AbortController();
  const feed = await connect('', hangUp.signal);
  const id = await gw.run({ n: 1 });
  assert.deepEqual(((await feed.nextOf('jobs')).data as { jobs: ListedJob[] }).jobs.map((j) => j.id), [id]);
  assert.equal(gw.events.subscribers, 1);
  hangUp.abort();
  // The server hears the close asynchronously: wait for it, bounded.
  for (let i = 0; i < 200 && gw.events.subscribers > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(gw.events.subscribers, 0);
  assert.equal(gw.metrics.subscribers, 0);
  assert.equal(models.listeners, 0);
});
