import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { ManualClock } from '@kiln/protocol';
import { defineWorker } from './define-worker.ts';
import { PING_DURING_SETUP_MS } from './job-loop.ts';
import { deferredSink } from './log.ts';
import type { LoopbackJobServer } from './testing/loopback-job-server.ts';
import { startWorkerInProcess } from './testing/run-in-process.ts';
import { useLoopbackServer } from './testing/use-loopback-server.ts';

const useServer = useLoopbackServer();
let server: LoopbackJobServer;
beforeEach(() => {
  server = useServer();
});

test('the first request of a starting worker is its job-take; ping and job-stop follow', async () => {
  const w = startWorkerInProcess(defineWorker({ setup: () => 'ready', handler: () => null }), server, { pingIntervalMs: 1000 });
  try {
    await server.waitFor(() => server.on('ping').length > 0 && server.on('stop').length > 0);
    assert.match(server.requests[0]!.path, /\/job-take\//);
  } finally {
    await w.stop();
  }
});

test(`a setup longer than ${PING_DURING_SETUP_MS} ms pings before the first take, so the platform sees it alive`, async () => {
  const clock = new ManualClock();
  let finishSetup: () => void = () => {};
  const worker = defineWorker({ setup: () => new Promise<void>((resolve) => (finishSetup = resolve)), handler: () => null });
  const w = startWorkerInProcess(worker, server, { clock, pingIntervalMs: 60_000 });
  try {
    await clock.waitForSleep(PING_DURING_SETUP_MS);
    assert.equal(server.requests.length, 0);
    await clock.advance(PING_DURING_SETUP_MS);
    await server.waitFor(() => server.on('ping').length === 1);
    assert.equal(server.on('take').length, 0, 'no take while setup runs');
    finishSetup();
    await server.waitFor(() => server.on('take').length === 1);
  } finally {
    void clock.advance(600_000);
    await w.stop();
  }
});

test('log lines written before the first take are held, then delivered in order once released', () => {
  const out: string[] = [];
  const sink = deferredSink((line) => out.push(line));
  sink('setup started');
  sink('model loaded');
  assert.deepEqual(out, []);
  sink.release();
  sink('job 1');
  assert.deepEqual(out, ['setup started', 'model loaded', 'job 1']);
});
