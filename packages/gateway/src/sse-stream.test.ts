import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { formatEventId, parseLastEventId, acceptsEventStream, SSE_PING_MS } from './sse-stream.ts';
import { createTestGateway } from './test-gateway.ts';
import type { TestGateway, TestWorker } from './test-gateway.ts';

/** One parsed SSE block: an event (id, event, data as JSON) or a comment. */
interface SseEvent {
  id?: string;
  event?: string;
  data?: unknown;
  comment?: string;
}

/** Reads SSE blocks one by one from a response body. */
class SseReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffer = '';

  constructor(res: Response) {
    assert.ok(res.body, 'a body');
    this.#reader = res.body.getReader();
  }

  /** The next block; undefined once the server ended the response. */
  async next(): Promise<SseEvent | undefined> {
    for (;;) {
      const end = this.#buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        return parseBlock(block);
      }
      const { done, value } = await this.#reader.read();
      if (done) return undefined;
      this.#buffer += this.#decoder.decode(value, { stream: true });
    }
  }

  /** The next `n` blocks. */
  async take(n: number): Promise<SseEvent[]> {
    const out: SseEvent[] = [];
    for (let i = 0; i < n; i++) {
      const event = await this.next();
      assert.ok(event, `event ${i + 1} of ${n}: the stream ended`);
      out.push(event);
    }
    return out;
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

function parseBlock(block: string): SseEvent {
  const event: SseEvent = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) event.comment = line.slice(1).trim();
    else if (line.startsWith('id: ')) event.id = line.slice(4);
    else if (line.startsWith('event: ')) event.event = line.slice(7);
    else if (line.startsWith('data: ')) event.data = JSON.parse(line.slice(6));
    else assert.fail(`unexpected SSE line ${JSON.stringify(line)}`);
  }
  return event;
}

let gw: TestGateway;
let worker: TestWorker;
beforeEach(async () => {
  gw = await createTestGateway();
  worker = gw.addWorker();
});
afterEach(async () => {
  await gw.close();
});

function sse(id: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return gw.client(`stream/${id}`, { headers: { accept: 'text/event-stream', ...headers }, ...(signal ? { signal } : {}) });
}

async function openEvents(id: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<SseReader> {
  const res = await sse(id, headers, signal);
  assert.equal(res.status, 200);
  return new SseReader(res);
}

async function startJob(input: unknown = 'x'): Promise<string> {
  const id = await gw.run(input);
  const res = await worker.take();
  assert.equal(((await res.json()) as { id: string }).id, id);
  return id;
}

const progress = (id: string, output: unknown) => worker.done(id, { status: 'IN_PROGRESS', output });

/** Lets every woken wait run to its end (promise callbacks, then one macrotask turn). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('event ids and headers', () => {
  it('round-trip positions and refuse anything else', () => {
    const position = { retries: 2, chunkSeq: 40, progressSeq: 7, ended: false };
    assert.equal(formatEventId(position), '2.40.7');
    assert.deepEqual(parseLastEventId('2.40.7'), position);
    assert.deepEqual(parseLastEventId('2.40.7.end'), { ...position, ended: true });
    assert.equal(parseLastEventId(undefined), undefined);
    assert.equal(parseLastEventId(''), undefined, 'EventSource sends an empty id for "none yet"');
    for (const bad of ['1.2', '1.2.3.4', 'a.b.c', '-1.0.0', '1.2.3.done', '9999999999999999.0.0']) {
      assert.throws(() => parseLastEventId(bad), /^InvalidRequestError: Last-Event-ID: must be an event id/, bad);
    }
  });

  it('SSE only for an Accept that names text/event-stream', () => {
    assert.equal(acceptsEventStream('text/event-stream'), true);
    assert.equal(acceptsEventStream('application/json, Text/Event-Stream; q=0.9'), true);
    assert.equal(acceptsEventStream('application/json, text/plain, */*'), false);
    assert.equal(acceptsEventStream('text/*'), false);
    assert.equal(acceptsEventStream(undefined), false);
  });
});

// A broken stream tends to hang rather than throw: the timeout turns that into a failure.
describe('GET /stream with Accept: text/event-stream', { timeout: 20_000 }, () => {
  it('sends progress, chunks and the final status in order, each with its id, then ends', async () => {
    const id = await gw.run('x');
    const res = await sse(id);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.equal(res.headers.get('x-accel-buffering'), 'no');
    const events = new SseReader(res);

    const first = events.next();
    assert.equal((await worker.take()).status, 200);
    await progress(id, { pct: 10 });
    assert.deepEqual(await first, { id: '0.0.1', event: 'progress', data: { progress: { pct: 10 } } });
    await worker.stream(id, 'a');
    assert.deepEqual(await events.next(), { id: '0.1.1', event: 'chunk', data: { output: 'a' } });
    await worker.stream(id, { b: [1, 2] });
    assert.deepEqual(await events.next(), { id: '0.2.1', event: 'chunk', data: { output: { b: [1, 2] } } });
    // Several changes between two reads: the latest progress, then the chunks in order.
    await worker.stream(id, 'c');
    await progress(id, { pct: 50 });
    await worker.stream(id, 'd');
    assert.deepEqual(await events.take(3), [
      { id: '0.2.2', event: 'progress', data: { progress: { pct: 50 } } },
      { id: '0.3.2', event: 'chunk', data: { output: 'c' } },
      { id: '0.4.2', event: 'chunk', data: { output: 'd' } },
    ]);
    await gw.clock.advance(700);
    await worker.done(id, { output: { text: 'abcd' } });
    const status = await (await gw.client(`status/${id}`)).json();
    assert.deepEqual(await events.next(), { id: '0.4.2.end', event: 'status', data: status });
    assert.equal((status as { status: string }).status, 'COMPLETED');
    assert.equal(await events.next(), undefined, 'the response ends after the status');
    assert.equal(gw.events.waiting, 0);
    assert.deepEqual(gw.clock.pending(), []);
  });

  it('resumes after a disconnect from Last-Event-ID: no chunk lost or twice, only the newest progress', async () => {
    const id = await startJob();
    await worker.stream(id, 'a');
    await progress(id, 'p1');
    const stop = new AbortController();
    const before = await openEvents(id, {}, stop.signal);
    const seen = await before.take(2);
    assert.deepEqual(seen, [
      { id: '0.0.1', event: 'progress', data: { progress: 'p1' } },
      { id: '0.1.1', event: 'chunk', data: { output: 'a' } },
    ]);
    stop.abort();
    assert.equal(await before.next(), undefined);

    // While away: chunks, and two progress updates of which the store keeps the last.
    await worker.stream(id, 'b');
    await progress(id, 'p2');
    await progress(id, 'p3');
    await worker.stream(id, 'c');

    const after = await openEvents(id, { 'last-event-id': seen.at(-1)!.id! });
    assert.deepEqual(await after.take(3), [
      { id: '0.1.3', event: 'progress', data: { progress: 'p3' } },
      { id: '0.2.3', event: 'chunk', data: { output: 'b' } },
      { id: '0.3.3', event: 'chunk', data: { output: 'c' } },
    ]);
    const next = after.next();
    await worker.stream(id, 'd');
    assert.deepEqual(await next, { id: '0.4.3', event: 'chunk', data: { output: 'd' } });
    await worker.done(id, { output: 'abcd' });
    const end = await after.next();
    assert.equal(end?.id, '0.4.3.end');
    assert.equal(await after.next(), undefined);

    // From an older id once the job is over: the missing chunks and the status, no progress (the output is the result now).
    const late = await openEvents(id, { 'last-event-id': '0.2.3' });
    assert.deepEqual(await late.take(3), [
      { id: '0.3.3', event: 'chunk', data: { output: 'c' } },
      { id: '0.4.3', event: 'chunk', data: { output: 'd' } },
      { id: '0.4.3.end', event: 'status', data: end?.data },
    ]);
    assert.equal(await late.next(), undefined);

    // From the final status's id: 204, which makes EventSource stop reconnecting.
    const done = await sse(id, { 'last-event-id': '0.4.3.end' });
    assert.equal(done.status, 204);
    assert.equal(await done.text(), '');
  });

  it('a finished job streams everything at once; without Last-Event-ID every client starts from the beginning', async () => {
    const id = await startJob();
    await worker.stream(id, 1);
    await worker.stream(id, 2);
    await worker.done(id, { error: 'boom' });
    for (let client = 0; client < 2; client++) {
      const events = await openEvents(id);
      const all = await events.take(3);
      assert.deepEqual(all.map((e) => e.id), ['0.1.0', '0.2.0', '0.2.0.end']);
      assert.deepEqual(all[2]!.data, { ...(all[2]!.data as object), id, status: 'FAILED', error: 'boom' });
      assert.equal(await events.next(), undefined);
    }
  });

  it('an id of a run before /retry starts the new run from its beginning', async () => {
    const id = await startJob();
    await worker.stream(id, 'old');
    await worker.done(id, { error: 'boom' });
    const first = await openEvents(id);
    const old = await first.take(2);
    assert.deepEqual(old.map((e) => e.id), ['0.1.0', '0.1.0.end']);
    assert.equal((await gw.client(`retry/${id}`, { method: 'POST' })).status, 200);

    const events = await openEvents(id, { 'last-event-id': old[1]!.id! });
    const next = events.next();
    await worker.take();
    await worker.stream(id, 'new');
    assert.deepEqual(await next, { id: '1.1.0', event: 'chunk', data: { output: 'new' } });
    await worker.done(id, { output: 'ok' });
    const end = await events.next();
    assert.equal(end?.id, '1.1.0.end');
    assert.deepEqual(end?.data, { ...(end?.data as object), status: 'COMPLETED', retries: 1 });
  });

  it('sends `: ping` after 15 s without events, and nothing before', async () => {
    const id = await startJob();
    const events = await openEvents(id);
    let got: unknown;
    const next = events.next().then((e) => (got = e));
    for (let waited = 0; waited < SSE_PING_MS; waited += 1000) {
      await gw.clock.waitForSleep(1000);
      assert.equal(got, undefined, `nothing after ${waited} ms`);
      await gw.clock.advance(1000);
    }
    await settle();
    assert.deepEqual(got, { comment: 'ping' });
    await next;
    // An event restarts the quiet period.
    const chunk = events.next();
    await worker.stream(id, 'a');
    assert.equal((await chunk)?.event, 'chunk');
    const ping = events.next().then((e) => (got = e));
    got = undefined;
    await gw.clock.waitForSleep(1000);
    await gw.clock.advance(SSE_PING_MS - 1000);
    await gw.clock.waitForSleep(1000);
    assert.equal(got, undefined);
    await gw.clock.advance(1000);
    await settle();
    assert.deepEqual(got, { comment: 'ping' });
    await ping;
  });

  it('ends when the job is deleted', async () => {
    const id = await gw.run('x', { policy: { ttl: 10_000 } });
    const events = await openEvents(id);
    const next = events.next();
    await gw.clock.waitForSleep(1000);
    assert.equal(await gw.store.deleteExpired(gw.clock.now() + 10_001), 1);
    // No notification: the once-a-second re-read finds it gone (a deletion by another gateway looks the same).
    await gw.clock.advance(1000);
    assert.equal(await next, undefined);
    assert.equal(gw.events.waiting, 0);
  });

  it('a client that disconnects costs nothing afterwards: no watch, no timer', async () => {
    const id = await gw.run('x');
    const stop = new AbortController();
    const events = await openEvents(id, {}, stop.signal);
    const next = events.next();
    await gw.clock.waitForSleep(1000);
    assert.equal(gw.events.waiting, 1);
    assert.deepEqual(gw.clock.pending(), [1000]);
    stop.abort();
    await settle();
    assert.equal(gw.events.waiting, 0);
    assert.deepEqual(gw.clock.pending(), []);
    assert.equal(await next, undefined, 'the stream ends');

    // The same when the client cancels the body instead.
    const other = await openEvents(id);
    const pending = other.next();
    await gw.clock.waitForSleep(1000);
    assert.equal(gw.events.waiting, 1);
    await other.cancel();
    await settle();
    assert.equal(gw.events.waiting, 0);
    assert.deepEqual(gw.clock.pending(), []);
    await pending;

    // And nothing is left to wake: changes to the job reach nobody.
    await worker.take();
    await worker.stream(id, 'a');
    assert.equal(gw.events.waiting, 0);
  });

  it('refuses a malformed or foreign Last-Event-ID (400 naming the header), an unknown job (404), a missing key (401)', async () => {
    const id = await startJob();
    await worker.stream(id, 'a');
    for (const [lastEventId, pattern] of [
      ['garbage', /^Last-Event-ID: must be an event id this stream sent/],
      ['0.2.0', /^Last-Event-ID: 0\.2\.0 is not a position in the events of job /],
      ['0.1.5', /^Last-Event-ID: 0\.1\.5 is not a position/],
      ['0.1.0.end', /^Last-Event-ID: 0\.1\.0\.end is not a position/],
    ] as const) {
      const res = await sse(id, { 'last-event-id': lastEventId });
      assert.equal(res.status, 400, lastEventId);
      const body = (await res.json()) as { error: string; field: string; code: string };
      assert.equal(body.field, 'Last-Event-ID');
      assert.equal(body.code, 'invalid_request');
      assert.match(body.error, pattern);
    }
    const missing = await sse('no-such-job');
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, 'job_not_found');
    const anonymous = await gw.request(`/v2/echo/stream/${id}`, { headers: { accept: 'text/event-stream' } });
    assert.equal(anonymous.status, 401);
    assert.equal(gw.events.waiting, 0);
  });
});

describe('GET /stream without Accept: text/event-stream', { timeout: 20_000 }, () => {
  it("keeps RunPod's long-poll, whose delivered-once marks SSE clients neither use nor move", async () => {
    const id = await startJob();
    await worker.stream(id, 'a');
    await worker.stream(id, 'b');
    const events = await openEvents(id);
    assert.deepEqual((await events.take(2)).map((e) => e.id), ['0.1.0', '0.2.0']);

    const sdkHeaders = { accept: 'application/json, text/plain, */*' };
    const first = await gw.client(`stream/${id}`, { headers: sdkHeaders });
    assert.match(first.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await first.json(), { status: 'IN_PROGRESS', stream: [{ output: 'a' }, { output: 'b' }], id });
    await worker.stream(id, 'c');
    assert.deepEqual(await (await gw.client(`stream/${id}`)).json(), { status: 'IN_PROGRESS', stream: [{ output: 'c' }], id });
    assert.deepEqual(await events.next(), { id: '0.3.0', event: 'chunk', data: { output: 'c' } }, 'the long-poll took nothing from SSE');
    await worker.done(id, { output: 'abc' });
    assert.deepEqual(await (await gw.client(`stream/${id}`, { method: 'POST' })).json(), { status: 'COMPLETED', stream: [], id });
    assert.equal((await events.next())?.event, 'status');
  });
});
