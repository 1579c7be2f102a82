// waitFor(): long-polls status-sync, reports progress, backs off on a manual clock when the server does not hold.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ManualClock } from '@kiln/protocol';
import { kiln } from './client.ts';
import { NotFoundError } from './errors.ts';
import { fakeEndpoints, sendJson } from './fake-endpoint.ts';

// Every fake endpoint started here is closed after the file's tests.
const fake = fakeEndpoints(after);

/** Resolves once a sleep of `ms` is pending, then moves the clock past it. */
async function passSleep(clock: ManualClock, ms: number): Promise<void> {
  await clock.waitForSleep(ms);
  await clock.advance(ms);
}

test('a server that holds status-sync is long-polled with wait=90000 and no pause in between', async () => {
  const clock = new ManualClock();
  const f = await fake(async (_req, res, n) => {
    // The hold, as the client's clock sees it.
    await clock.advance(90_000);
    sendJson(res, 200, n < 3 ? { id: 'j1', status: 'IN_PROGRESS' } : { id: 'j1', status: 'COMPLETED', output: { ok: true } });
  });
  const job = await kiln({ baseUrl: f.baseUrl, clock }).endpoint<unknown, { ok: boolean }>('ep').waitFor('j1');
  assert.equal(job.status, 'COMPLETED');
  assert.deepEqual(job.output, { ok: true });
  assert.deepEqual(f.requests.map((r) => r.url), Array(3).fill('/v2/ep/status-sync/j1?wait=90000'));
});

test('a server that answers status-sync at once is asked again after a pause that doubles', async () => {
  const clock = new ManualClock();
  const f = await fake((_req, res, n) => {
    sendJson(res, 200, n < 5 ? { id: 'j1', status: 'IN_QUEUE' } : { id: 'j1', status: 'FAILED', error: 'boom' });
  });
  const waiting = kiln({ baseUrl: f.baseUrl, clock }).endpoint('ep').waitFor('j1', { pollMs: 500 });
  for (const pause of [500, 1000, 2000, 4000]) await passSleep(clock, pause);
  const job = await waiting;
  assert.equal(job.status, 'FAILED');
  assert.equal(job.error, 'boom');
  assert.equal(f.requests.length, 5);
});

test('the pause stops doubling at 10 s', async () => {
  const clock = new ManualClock();
  const f = await fake((_req, res, n) => sendJson(res, 200, n < 8 ? { id: 'j1', status: 'IN_QUEUE' } : { id: 'j1', status: 'COMPLETED' }));
  const waiting = kiln({ baseUrl: f.baseUrl, clock }).endpoint('ep').waitFor('j1');
  for (const pause of [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]) await passSleep(clock, pause);
  assert.equal((await waiting).status, 'COMPLETED');
});

test('onProgress: status-sync is asked with wait=pollMs (at least 1000) and each distinct progress is reported once', async () => {
  const clock = new ManualClock();
  const answers = [
    { id: 'j1', status: 'IN_QUEUE' },
    { id: 'j1', status: 'IN_PROGRESS', output: { step: 1, of: 2 } },
    { id: 'j1', status: 'IN_PROGRESS', output: { step: 1, of: 2 } },
    { id: 'j1', status: 'IN_PROGRESS', output: { step: 2, of: 2 } },
    { id: 'j1', status: 'COMPLETED', output: 'result' },
  ];
  const f = await fake(async (_req, res) => {
    await clock.advance(1000);
    sendJson(res, 200, answers.shift());
  });
  const progress: unknown[] = [];
  const job = await kiln({ baseUrl: f.baseUrl, clock }).endpoint('ep').waitFor('j1', { onProgress: (p) => progress.push(p), pollMs: 200 });
  assert.equal(job.output, 'result');
  assert.deepEqual(progress, [
    { step: 1, of: 2 },
    { step: 2, of: 2 },
  ]);
  assert.ok(f.requests.every((r) => r.url === '/v2/ep/status-sync/j1?wait=1000'));
});

test('a server without status-sync (404 there, /status knows the job) is polled on /status', async () => {
  const clock = new ManualClock();
  let statusCalls = 0;
  const f = await fake((req, res) => {
    if (req.url.startsWith('/v2/ep/status-sync/')) return sendJson(res, 404, { error: 'no such route' });
    statusCalls++;
    sendJson(res, 200, statusCalls < 3 ? { id: 'j1', status: 'IN_PROGRESS' } : { id: 'j1', status: 'TIMED_OUT' });
  });
  const waiting = kiln({ baseUrl: f.baseUrl, clock }).endpoint('ep').waitFor('j1');
  for (const pause of [1000, 2000]) await passSleep(clock, pause);
  assert.equal((await waiting).status, 'TIMED_OUT');
  assert.deepEqual(
    f.requests.map((r) => r.url),
    ['/v2/ep/status-sync/j1?wait=90000', '/v2/ep/status/j1', '/v2/ep/status/j1', '/v2/ep/status/j1'],
  );
});

test('a job that is gone (404 on status-sync and on /status) rejects with NotFoundError', async () => {
  const f = await fake((_req, res) => sendJson(res, 404, { error: 'job j1 not found on endpoint ep', code: 'job_not_found' }));
  await assert.rejects(kiln({ baseUrl: f.baseUrl }).endpoint('ep').waitFor('j1'), NotFoundError);
  assert.equal(f.requests.length, 2);
});

test('the caller’s signal ends the wait during a pause, with its reason', async () => {
  const clock = new ManualClock();
  const f = await fake((_req, res) => sendJson(res, 200, { id: 'j1', status: 'IN_QUEUE' }));
  const controller = new AbortController();
  const waiting = kiln({ baseUrl: f.baseUrl, clock }).endpoint('ep').waitFor('j1', { signal: controller.signal });
  await clock.waitForSleep(1000);
  controller.abort(new Error('enough'));
  await assert.rejects(waiting, /enough/);
  assert.equal(f.requests.length, 1);
});
