// stream(): server-sent events with resume, and the long-poll fallback, against a loopback node:http server.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ManualClock } from '@kiln/protocol';
import { kiln } from './client.ts';
import { JobFailedError, NotFoundError } from './errors.ts';
import { fakeEndpoints, sendJson, sseEvent, startEventStream } from './fake-endpoint.ts';
import { SSE_IDLE_TIMEOUT_MS, SSE_MAX_RECONNECTS, STREAM_POLL_MS } from './job-stream.ts';

// Every fake endpoint started here is closed after the file's tests.
const fake = fakeEndpoints(after);

/** Resolves when `resolve()` is called: lets a server handler wait for the test. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

test('SSE: chunks in order, progress to onProgress, and the final status ends the stream', async () => {
  const f = await fake((req, res) => {
    assert.equal(req.headers['accept'], 'text/event-stream');
    startEventStream(res);
    res.write(': ping\n\n');
    res.write(sseEvent('e1', 'progress', { progress: { step: 1 } }));
    res.write(sseEvent('e2', 'chunk', { output: { word: 'alpha' } }));
    res.write(sseEvent('e3', 'chunk', { output: { word: 'beta' } }));
    res.write(sseEvent('e4', 'status', { id: 'j1', status: 'COMPLETED', output: [], delayTime: 1, executionTime: 2 }));
    res.end();
  });
  const progress: unknown[] = [];
  const chunks: unknown[] = [];
  const endpoint = kiln({ baseUrl: f.baseUrl, apiKey: 'k' }).endpoint<unknown, unknown, { word: string }>('ep');
  for await (const chunk of endpoint.stream('j1', { onProgress: (p) => progress.push(p) })) chunks.push(chunk);
  assert.deepEqual(chunks, [{ word: 'alpha' }, { word: 'beta' }]);
  assert.deepEqual(progress, [{ step: 1 }]);
  assert.equal(f.requests.length, 1);
  assert.equal(f.requests[0]!.url, '/v2/ep/stream/j1');
  assert.equal(f.requests[0]!.headers['authorization'], 'Bearer k');
});

test('SSE: a dropped connection is resumed with Last-Event-ID; nothing is lost and nothing comes twice', async () => {
  const drop = gate();
  const f = await fake(async (req, res, n) => {
    startEventStream(res);
    if (n === 1) {
      assert.equal(req.headers['last-event-id'], undefined);
      res.write(sseEvent('0.1.0', 'chunk', { output: 'a' }));
      res.write(sseEvent('0.2.0', 'chunk', { output: 'b' }));
      await drop.promise;
      // Half an event, then the connection dies: the client must ask for it again.
      res.write('id: 0.3.0\nevent: chunk\ndata: {"output":"c"}\n');
      res.socket!.destroy();
      return;
    }
    assert.equal(req.headers['last-event-id'], '0.2.0');
    res.write(sseEvent('0.3.0', 'chunk', { output: 'c' }));
    res.write(sseEvent('0.4.0', 'chunk', { output: 'd' }));
    res.write(sseEvent('0.4.0.end', 'status', { id: 'j1', status: 'COMPLETED' }));
    res.end();
  });
  const chunks: unknown[] = [];
  for await (const chunk of kiln({ baseUrl: f.baseUrl }).endpoint('ep').stream('j1')) {
    chunks.push(chunk);
    if (chunk === 'b') drop.open();
  }
  assert.deepEqual(chunks, ['a', 'b', 'c', 'd']);
  assert.equal(f.requests.length, 2);
});

test('SSE: a connection silent for the idle timeout (no ping either) is dropped and resumed', async () => {
  const clock = new ManualClock();
  const f = await fake((req, res, n) => {
    startEventStream(res);
    if (n === 1) {
      res.write(sseEvent('1', 'chunk', { output: 1 }));
      return; // then silence, connection left open
    }
    assert.equal(req.headers['last-event-id'], '1');
    res.write(sseEvent('2', 'chunk', { output: 2 }));
    res.end(sseEvent('3', 'status', { id: 'j1', status: 'COMPLETED' }));
  });
  const iterator = kiln({ baseUrl: f.baseUrl, clock }).endpoint('ep').stream('j1');
  assert.deepEqual(await iterator.next(), { value: 1, done: false });
  const second = iterator.next();
  await clock.waitForSleep(SSE_IDLE_TIMEOUT_MS);
  assert.equal(f.requests.length, 1, 'no reconnect before the idle timeout');
  await clock.advance(SSE_IDLE_TIMEOUT_MS);
  assert.deepEqual(await second, { value: 2, done: false });
  assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  assert.equal(f.requests.length, 2);
});

test('SSE: a job that ends FAILED yields its chunks, then throws JobFailedError with the worker’s error', async () => {
  const error = JSON.stringify({ error_type: 'ValueError', error_message: 'bad prompt', error_traceback: '…' });
  const f = await fake((_req, res) => {
    startEventStream(res);
    res.write(sseEvent('1', 'chunk', { output: 'partial' }));
    res.end(sseEvent('2', 'status', { id: 'j1', status: 'FAILED', error }));
  });
  const chunks: unknown[] = [];
  await assert.rejects(
    (async () => {
      for await (const chunk of kiln({ baseUrl: f.baseUrl }).endpoint('ep').stream('j1')) chunks.push(chunk);
    })(),
    (err: unknown) => {
      assert.ok(err instanceof JobFailedError);
      assert.equal(err.status, 'FAILED');
      assert.equal(err.jobId, 'j1');
      assert.equal(err.error, error);
      assert.equal(err.errorMessage, 'ValueError: bad prompt');
      return true;
    },
  );
  assert.deepEqual(chunks, ['partial']);
});

test('SSE: a server that keeps closing without a byte is given up on after the reconnect limit, with backoff', async () => {
  const clock = new ManualClock();
  const f = await fake((_req, res) => {
    startEventStream(res);
    res.end();
  });
  // timeoutMs 0: the only sleeps are the idle watchdog and the reconnect pauses.
  const iterator = kiln({ baseUrl: f.baseUrl, clock, timeoutMs: 0 }).endpoint('ep').stream('j1');
  const outcome = iterator.next().then(
    () => assert.fail('the stream should have failed'),
    (err: unknown) => err,
  );
  const pauses: number[] = [];
  for (let i = 0; i < SSE_MAX_RECONNECTS; i++) {
    await waitForPendingSleepOtherThan(clock, SSE_IDLE_TIMEOUT_MS);
    const pause = clock.pending().find((ms) => ms !== SSE_IDLE_TIMEOUT_MS)!;
    pauses.push(pause);
    await clock.advance(pause);
  }
  const err = await outcome;
  assert.ok(err instanceof Error);
  assert.match(err.message, /ended 9 times in a row without a final status/);
  assert.equal(f.requests.length, SSE_MAX_RECONNECTS + 1);
  assert.deepEqual(pauses, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
});

async function waitForPendingSleepOtherThan(clock: ManualClock, ignored: number): Promise<void> {
  for (let turn = 0; !clock.pending().some((ms) => ms !== ignored); turn++) {
    if (turn > 100_000) assert.fail(`no sleep other than ${ignored} ms was started; pending: ${clock.pending().join(', ')}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('SSE: a connection that carried only keep-alives is resumed after a short pause, without counting toward the limit', async () => {
  const clock = new ManualClock();
  const f = await fake((_req, res, n) => {
    startEventStream(res);
    if (n <= SSE_MAX_RECONNECTS + 2) return void res.end(': ping\n\n');
    res.end(sseEvent('1', 'status', { id: 'j1', status: 'COMPLETED' }));
  });
  const iterator = kiln({ baseUrl: f.baseUrl, clock, timeoutMs: 0 }).endpoint('ep').stream('j1');
  const outcome = iterator.next();
  for (let i = 0; i < SSE_MAX_RECONNECTS + 2; i++) {
    await waitForPendingSleepOtherThan(clock, SSE_IDLE_TIMEOUT_MS);
    assert.deepEqual(clock.pending().filter((ms) => ms !== SSE_IDLE_TIMEOUT_MS), [250], 'the base pause, not a growing one');
    await clock.advance(250);
  }
  assert.deepEqual(await outcome, { value: undefined, done: true });
  assert.equal(f.requests.length, SSE_MAX_RECONNECTS + 3);
});

test('SSE: a 404 on the first request is thrown as NotFoundError, not retried', async () => {
  const f = await fake((_req, res) => sendJson(res, 404, { error: 'job j1 not found on endpoint ep', code: 'job_not_found' }));
  const iterator = kiln({ baseUrl: f.baseUrl }).endpoint('ep').stream('j1');
  await assert.rejects(iterator.next(), (err: unknown) => err instanceof NotFoundError && err.status === 404 && err.code === 'job_not_found');
  assert.equal(f.requests.length, 1);
});

test('long-poll fallback: a JSON answer switches to polling /stream until the status is final', async () => {
  const f = await fake((_req, res, n) => {
    const pages = [
      { status: 'IN_PROGRESS', stream: [{ output: 1 }, { output: 2 }], id: 'j1' },
      { status: 'IN_PROGRESS', stream: [{ output: 3 }], id: 'j1' },
      { status: 'COMPLETED', stream: [{ output: 4 }], id: 'j1' },
    ];
    sendJson(res, 200, pages[n - 1]);
  });
  const chunks: unknown[] = [];
  for await (const chunk of kiln({ baseUrl: f.baseUrl }).endpoint('ep').stream('j1')) chunks.push(chunk);
  assert.deepEqual(chunks, [1, 2, 3, 4]);
  assert.deepEqual(
    f.requests.map((r) => `${r.method} ${r.url}`),
    ['GET /v2/ep/stream/j1', 'GET /v2/ep/stream/j1', 'GET /v2/ep/stream/j1'],
  );
});

test('long-poll fallback: a server that refuses text/event-stream with 406 is asked again for JSON', async () => {
  const f = await fake((req, res) => {
    if (req.headers['accept'] === 'text/event-stream') return sendJson(res, 406, { error: 'not acceptable' });
    sendJson(res, 200, { status: 'COMPLETED', stream: [{ output: 'only' }] });
  });
  const chunks: unknown[] = [];
  for await (const chunk of kiln({ baseUrl: f.baseUrl }).endpoint('ep').stream('j1')) chunks.push(chunk);
  assert.deepEqual(chunks, ['only']);
  assert.deepEqual(f.requests.map((r) => r.headers['accept']), ['text/event-stream', 'application/json']);
});

test('long-poll fallback: empty answers that come back at once are spaced out with a doubling pause', async () => {
  const clock = new ManualClock();
  const f = await fake((_req, res, n) => {
    if (n < 4) sendJson(res, 200, { status: 'IN_QUEUE', stream: [] });
    else sendJson(res, 200, { status: 'COMPLETED', stream: [{ output: 'done' }] });
  });
  const iterator = kiln({ baseUrl: f.baseUrl, clock }).endpoint('ep').stream('j1');
  const first = iterator.next();
  for (const pause of [STREAM_POLL_MS, STREAM_POLL_MS * 2, STREAM_POLL_MS * 4]) {
    await clock.waitForSleep(pause);
    await clock.advance(pause);
  }
  assert.deepEqual(await first, { value: 'done', done: false });
  assert.equal((await iterator.next()).done, true);
  assert.equal(f.requests.length, 4);
});

test('long-poll fallback: a CANCELLED job throws JobFailedError carrying the status from /status', async () => {
  const f = await fake((req, res) => {
    if (req.url.startsWith('/v2/ep/stream/')) sendJson(res, 200, { status: 'CANCELLED', stream: [{ output: 'x' }] });
    else sendJson(res, 200, { id: 'j1', status: 'CANCELLED', delayTime: 5 });
  });
  const chunks: unknown[] = [];
  await assert.rejects(
    (async () => {
      for await (const chunk of kiln({ baseUrl: f.baseUrl }).endpoint('ep').stream('j1')) chunks.push(chunk);
    })(),
    (err: unknown) => err instanceof JobFailedError && err.status === 'CANCELLED' && err.job.delayTime === 5,
  );
  assert.deepEqual(chunks, ['x']);
  assert.deepEqual(f.requests.map((r) => r.url), ['/v2/ep/stream/j1', '/v2/ep/status/j1']);
});

test('long-poll fallback: with onProgress, /status is read between polls and each new progress reported once', async () => {
  const statuses = [
    { id: 'j1', status: 'IN_PROGRESS', output: { step: 1 } },
    { id: 'j1', status: 'IN_PROGRESS', output: { step: 1 } },
    { id: 'j1', status: 'IN_PROGRESS', output: { step: 2 } },
  ];
  let polls = 0;
  const f = await fake((req, res) => {
    if (req.url.startsWith('/v2/ep/status/')) return sendJson(res, 200, statuses.shift());
    polls++;
    sendJson(res, 200, polls < 4 ? { status: 'IN_PROGRESS', stream: [{ output: polls }] } : { status: 'COMPLETED', stream: [] });
  });
  const progress: unknown[] = [];
  const chunks: unknown[] = [];
  for await (const chunk of kiln({ baseUrl: f.baseUrl }).endpoint('ep').stream('j1', { onProgress: (p) => progress.push(p) })) chunks.push(chunk);
  assert.deepEqual(chunks, [1, 2, 3]);
  assert.deepEqual(progress, [{ step: 1 }, { step: 2 }]);
});

test('abort: the caller’s signal ends an open SSE stream with its reason', async () => {
  const f = await fake((_req, res) => {
    startEventStream(res);
    res.write(sseEvent('1', 'chunk', { output: 1 }));
  });
  const controller = new AbortController();
  const reason = new Error('user left');
  const iterator = kiln({ baseUrl: f.baseUrl }).endpoint('ep').stream('j1', { signal: controller.signal });
  assert.deepEqual(await iterator.next(), { value: 1, done: false });
  const next = iterator.next();
  controller.abort(reason);
  await assert.rejects(next, (err: unknown) => err === reason);
  assert.equal(f.requests.length, 1, 'an abort is not a dropped connection: no reconnect');
});
