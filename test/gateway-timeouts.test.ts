// Execution timeout and TTL end to end — a real gateway on a socket, real echo worker processes — with
// the gateway on a manual clock: time only moves when the test says so, and the test runs the
// supervisor itself (gateway.tick()).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Gateway, parseConfig } from '@kiln/gateway';
import { ManualClock } from '@kiln/protocol';

const ECHO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples/echo');
const clock = new ManualClock(Date.now());
let gateway: Gateway;
let dir: string;
let base: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-timeouts-'));
  const config = parseConfig(
    { endpoints: { echo: { worker: { command: `${process.execPath} dist/worker.js`, cwd: ECHO }, workersMin: 1, workersMax: 1 } }, gateway: { port: 0, stopGraceMs: 2000 } },
    { baseDir: dir, env: {} },
  );
  gateway = new Gateway(config, { clock, log: { info() {}, warn() {}, error() {} } });
  await gateway.start();
  base = `${gateway.url}/v2/echo`;
});

after(async () => {
  void clock.advance(600_000);
  await gateway?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return (await res.json()) as Record<string, unknown>;
}

/** Polls /status (real time, a safety net only) until the job is in one of `wanted`. */
async function until(id: string, wanted: string[]): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = await call('GET', `${base}/status/${id}`);
    if (wanted.includes(String(status['status']))) return status;
    if (Date.now() > deadline) throw new Error(`job ${id} is ${String(status['status'])}, wanted ${wanted.join('|')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('execution timeout: TIMED_OUT once past policy.executionTimeout, the worker stops the job and takes the next', async () => {
  const id = String((await call('POST', `${base}/run`, { input: { message: 'forever', sleepMs: 600_000 }, policy: { executionTimeout: 5000 } }))['id']);
  await until(id, ['IN_PROGRESS']);
  await clock.advance(5000);
  await gateway.tick();
  assert.equal((await call('GET', `${base}/status/${id}`))['status'], 'IN_PROGRESS', 'not past its deadline yet');
  await clock.advance(1);
  await gateway.tick();
  const timedOut = await until(id, ['TIMED_OUT']);
  assert.equal(timedOut['status'], 'TIMED_OUT');
  // The worker got job-stop and aborted the handler: it is free for the next job, long before 600 s.
  const next = String((await call('POST', `${base}/run`, { input: { message: 'next' } }))['id']);
  const done = await until(next, ['COMPLETED']);
  assert.equal((done['output'] as { message: string }).message, 'next');
  assert.equal((await call('GET', `${base}/status/${id}`))['status'], 'TIMED_OUT', 'a late result would change nothing');
});

test('TTL: a job still queued past policy.ttl is TIMED_OUT and never runs', async () => {
  const busy = String((await call('POST', `${base}/run`, { input: { message: 'busy', sleepMs: 600_000 } }))['id']);
  await until(busy, ['IN_PROGRESS']);
  const queued = String((await call('POST', `${base}/run`, { input: { message: 'too late' }, policy: { ttl: 10_000 } }))['id']);
  await clock.advance(10_001);
  await gateway.tick();
  assert.equal((await until(queued, ['TIMED_OUT']))['status'], 'TIMED_OUT');
  await call('POST', `${base}/cancel/${busy}`);
  const after = String((await call('POST', `${base}/run`, { input: { message: 'after' } }))['id']);
  await until(after, ['COMPLETED']);
  assert.equal((await call('GET', `${base}/status/${queued}`))['status'], 'TIMED_OUT', 'the expired job was never handed out');
});
