import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, test } from 'node:test';
import { parseErrorString } from '@kiln/protocol';
import { z } from 'zod';
import { ManualClock } from '@kiln/protocol';
import { defineWorker } from './define-worker.ts';
import type { LoopbackJobServer } from './testing/loopback-job-server.ts';
import { useLoopbackServer } from './testing/use-loopback-server.ts';
import { startWorkerInProcess } from './testing/run-in-process.ts';

const useServer = useLoopbackServer();
let server: LoopbackJobServer;
beforeEach(() => {
  server = useServer();
});

function errorOf(body: unknown) {
  const error = (body as { error?: string }).error;
  assert.equal(typeof error, 'string', 'the done body carries an error string');
  const info = parseErrorString(error!);
  assert.ok(info, 'the error string holds RunPod error JSON');
  return info;
}

test('a setup that throws keeps the process up; every job fails saying setup failed and why; ping reports unhealthy', async () => {
  let handlerCalls = 0;
  const worker = defineWorker({
    setup() {
      throw new Error('CUDA out of memory while loading weights');
    },
    handler: () => ++handlerCalls,
  });
  server.enqueue({ id: 'j1', input: {} }, { id: 'j2', input: {} });
  const w = startWorkerInProcess(worker, server, { pingIntervalMs: 1000 });
  try {
    for (const id of ['j1', 'j2']) {
      const info = errorOf((await server.waitForResult(id)).body);
      assert.equal(info.error_type, 'SetupError');
      assert.match(info.error_message, /setup failed: CUDA out of memory while loading weights/);
    }
    assert.equal(handlerCalls, 0, 'the handler never runs without a successful setup');
    await server.waitFor(() => server.on('ping').some((r) => r.query['status'] === 'unhealthy'), 5000, 'an unhealthy ping');
    const ping = server.on('ping').find((r) => r.query['status'] === 'unhealthy')!;
    assert.equal(ping.query['check'], 'setup');
    assert.match(ping.query['reason'] ?? '', /CUDA out of memory/);
    // Still alive: it takes the next job too.
    server.enqueue({ id: 'j3', input: {} });
    await server.waitForResult('j3');
  } finally {
    await w.stop();
  }
  assert.equal(await w.exited, 0);
});

test('a setup that does not finish within setupTimeoutMs fails every job with a timeout message', async () => {
  const clock = new ManualClock();
  const worker = defineWorker({ setupTimeoutMs: 30_000, setup: () => new Promise<never>(() => {}), handler: () => 'never' });
  server.enqueue({ id: 'slow-setup', input: {} });
  const w = startWorkerInProcess(worker, server, { clock });
  try {
    await clock.waitForSleep(30_000);
    assert.equal(server.on('take').length, 0, 'eager setup runs before the first job-take');
    await clock.advance(30_000);
    const info = errorOf((await server.waitForResult('slow-setup')).body);
    assert.equal(info.error_type, 'SetupTimeoutError');
    assert.match(info.error_message, /setup did not finish within 30000 ms/);
  } finally {
    void clock.advance(600_000);
    await w.stop();
  }
});

test("lazy setup runs once, on the first job, even when several jobs arrive together", async () => {
  let setups = 0;
  let releaseSetup: () => void = () => {};
  const worker = defineWorker({
    load: 'lazy',
    concurrency: 3,
    async setup() {
      setups++;
      await new Promise<void>((resolve) => (releaseSetup = resolve));
      return { model: 'loaded' };
    },
    handler: (job, ctx) => ({ id: job.id, model: ctx.state.model }),
  });
  const w = startWorkerInProcess(worker, server);
  try {
    await server.waitFor(() => server.on('take-batch').length > 0);
    assert.equal(setups, 0, 'lazy: nothing loaded before a job arrives');
    server.enqueue({ id: 'l1', input: {} }, { id: 'l2', input: {} }, { id: 'l3', input: {} });
    await server.waitFor(() => setups > 0);
    releaseSetup();
    for (const id of ['l1', 'l2', 'l3']) assert.deepEqual((await server.waitForResult(id)).body, { output: { id, model: 'loaded' } });
    assert.equal(setups, 1);
  } finally {
    await w.stop();
  }
});

test('invalid input fails the job with every failing path and message, and the handler is not called', async () => {
  let called = false;
  const worker = defineWorker({
    input: z.object({ text: z.string().max(5), voice: z.enum(['a', 'b']), steps: z.number().int() }),
    handler: () => (called = true),
  });
  server.enqueue({ id: 'bad', input: { text: 'far too long', voice: 'c' } });
  const w = startWorkerInProcess(worker, server);
  try {
    const info = errorOf((await server.waitForResult('bad')).body);
    assert.equal(info.error_type, 'InputValidationError');
    const paths = (info['issues'] as { path: string }[]).map((i) => i.path).sort();
    assert.deepEqual(paths, ['input.steps', 'input.text', 'input.voice']);
    for (const p of paths) assert.ok(info.error_message.includes(p), `message names ${p}`);
    assert.equal(called, false);
  } finally {
    await w.stop();
  }
});

test('valid input reaches the handler parsed by the schema (defaults applied)', async () => {
  const worker = defineWorker({ input: z.object({ n: z.number().default(7) }), handler: (job) => job.input.n * 2 });
  server.enqueue({ id: 'ok', input: {} });
  const w = startWorkerInProcess(worker, server);
  try {
    assert.deepEqual((await server.waitForResult('ok')).body, { output: 14 });
  } finally {
    await w.stop();
  }
});

test('ctx.tmpDir is created on first use and removed after the job, on success and on failure', async () => {
  const tmpRoot = await mkdtemp(path.join(os.tmpdir(), 'kiln-tmp-test-'));
  const seen: string[] = [];
  const worker = defineWorker({
    async handler(job, ctx) {
      const dir = ctx.tmpDir;
      seen.push(dir);
      assert.equal(ctx.tmpDir, dir, 'one folder per job');
      await writeFile(path.join(dir, 'frame.bin'), Buffer.alloc(1024));
      if ((job.input as { fail?: boolean }).fail) throw new Error('after writing');
      return 'ok';
    },
  });
  server.enqueue({ id: 't-ok', input: {} }, { id: 't-fail', input: { fail: true } });
  const w = startWorkerInProcess(worker, server, { tmpRoot });
  try {
    await server.waitForResult('t-ok');
    await server.waitForResult('t-fail');
    assert.equal(seen.length, 2);
    assert.notEqual(seen[0], seen[1]);
    for (const dir of seen) assert.equal(existsSync(dir), false, `${dir} removed`);
    assert.deepEqual(await readdir(tmpRoot), []);
  } finally {
    await w.stop();
  }
});

test('progress updates are posted before the result, the latest one wins when they pile up', async () => {
  const worker = defineWorker({
    async handler(_job, ctx) {
      for (let i = 1; i <= 50; i++) void ctx.progress({ step: i });
      await ctx.progress({ step: 51 });
      return 'done';
    },
  });
  server.enqueue({ id: 'p', input: {} });
  const w = startWorkerInProcess(worker, server);
  try {
    await server.waitForResult('p');
    const posts = server.on('done').map((r) => JSON.parse(r.body) as Record<string, unknown>);
    const last = posts.at(-1)!;
    assert.deepEqual(last, { output: 'done' });
    const progress = posts.slice(0, -1);
    assert.ok(progress.length >= 1 && progress.length < 51, `coalesced: ${progress.length} progress posts for 51 updates`);
    for (const p of progress) assert.equal(p['status'], 'IN_PROGRESS');
    assert.deepEqual(progress.at(-1)!['output'], { step: 51 });
  } finally {
    await w.stop();
  }
});

test('a result over 20 MB fails the job with its size and the limit instead of being dropped', async () => {
  const worker = defineWorker({ handler: () => ({ image: 'x'.repeat(21 * 1024 * 1024) }) });
  server.enqueue({ id: 'big', input: {} });
  const w = startWorkerInProcess(worker, server);
  try {
    const info = errorOf((await server.waitForResult('big')).body);
    assert.equal(info.error_type, 'ResultTooLargeError');
    assert.match(info.error_message, /result is 2202\d{4} bytes, over the limit of 20971520 bytes/);
  } finally {
    await w.stop();
  }
});

test('a returned dict with error and refresh_worker keys maps to RunPod fields (error, output rest, stopPod)', async () => {
  const worker = defineWorker({ concurrency: 1, handler: () => ({ error: { code: 3 }, detail: 'x', refresh_worker: true }) });
  server.enqueue({ id: 'e', input: {} });
  const w = startWorkerInProcess(worker, server);
  assert.deepEqual((await server.waitForResult('e')).body, { output: { detail: 'x' }, error: '{"code":3}', stopPod: true });
  assert.equal(await w.exited, 0, 'refresh: the worker exits by itself');
});
