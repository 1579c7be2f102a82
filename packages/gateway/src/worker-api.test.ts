import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { WORKER_LIMITS } from '@kiln/protocol';
import { createTestGateway } from './test-gateway.ts';
import type { TestGateway } from './test-gateway.ts';

type Json = Record<string, unknown>;

let gw: TestGateway;

async function body(res: Response | Promise<Response>): Promise<unknown> {
  return (await res).json();
}

async function statusOf(id: string): Promise<Json> {
  return (await body(gw.client(`status/${id}`))) as Json;
}

// Every case runs twice: through hono in process, and over a real socket through the gateway's
// own listener, which answers worker calls on node:http directly. Both must answer the same.
for (const transport of ['app', 'socket'] as const) {
  describe(`worker API (${transport === 'app' ? 'app.request, hono routes' : 'real socket, node:http worker path'})`, () => {
    beforeEach(async () => {
      gw = await createTestGateway({ transport });
    });
    afterEach(async () => {
      await gw.close();
    });

    describe('job-take', () => {
      it('hands out the job as the handler sees it, with JSON content type', async () => {
        const s3Config = { accessId: 'a', accessSecret: 's', bucketName: 'b', endpointUrl: 'https://s3.example' };
        const id = await gw.run({ prompt: 'hi' }, { s3Config, policy: { executionTimeout: 9000 } });
        const worker = gw.addWorker();
        const res = await worker.take();
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
        assert.deepEqual(await res.json(), { id, input: { prompt: 'hi' }, s3Config, policy: { executionTimeout: 9000 } });
        assert.equal((await statusOf(id)).status, 'IN_PROGRESS');
        assert.equal(gw.registry.get(worker.workerId)?.state, 'idle');
      });

      it('hands out only id and input for a plain job', async () => {
        const id = await gw.run([1, 2]);
        assert.deepEqual(await body(gw.addWorker().take()), { id, input: [1, 2] });
      });

      it('holds an empty take for takeHoldMs, then answers 204', async () => {
        const worker = gw.addWorker();
        const take = worker.take();
        await gw.clock.waitForSleep(30_000);
        await gw.clock.advance(29_999);
        let settled = false;
        void take.then(() => (settled = true));
        await new Promise((r) => setImmediate(r));
        assert.equal(settled, false);
        await gw.clock.advance(1);
        const res = await take;
        assert.equal(res.status, 204);
        assert.equal(await res.text(), '');
      });

      it('is woken at once by an enqueue', async () => {
        const worker = gw.addWorker();
        const take = worker.take();
        await gw.clock.waitForSleep(30_000);
        const id = await gw.run('now');
        const res = await take;
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as Json).id, id);
      });

      it('is not woken by jobs of another endpoint', async () => {
        const two = await createTestGateway({
          config: { endpoints: { a: { worker: { command: 'x' } }, b: { worker: { command: 'x' } } }, gateway: { apiKeys: ['test-key'] } },
        });
        try {
          const worker = two.addWorker({ endpoint: 'a' });
          const take = worker.take();
          await two.clock.waitForSleep(30_000);
          await two.run('for b', {}, 'b');
          await two.clock.advance(30_000);
          assert.equal((await take).status, 204);
          assert.equal((await two.store.counts('b')).inQueue, 1);
        } finally {
          await two.close();
        }
      });

      it('never claims for a worker that hung up while held', async () => {
        const worker = gw.addWorker();
        const gone = new AbortController();
        const take = worker.take({ signal: gone.signal });
        await gw.clock.waitForSleep(30_000);
        gone.abort();
        await take.then(
          (res) => assert.equal(res.status, 204),
          () => undefined,
        );
        const id = await gw.run('later');
        assert.equal((await statusOf(id)).status, 'IN_QUEUE');
      });

      it('needs the worker’s own token (raw or Bearer) on its own endpoint', async () => {
        const a = gw.addWorker();
        const b = gw.addWorker();
        const path = `/v2/echo/job-take/${a.workerId}?gpu=G&job_in_progress=0`;
        for (const authorization of [undefined, b.token, `Bearer ${b.token}`, 'test-key']) {
          const res = await gw.request(path, { headers: authorization === undefined ? {} : { authorization } });
          assert.equal(res.status, 401);
          assert.equal(((await res.json()) as Json).code, 'unauthorized');
        }
        await gw.run(1);
        assert.equal((await gw.request(path, { headers: { authorization: `Bearer ${a.token}` } })).status, 200);
        assert.equal((await gw.request(`/v2/echo/job-take/unknown?gpu=G`, { headers: { authorization: a.token } })).status, 401);
      });
    });

    describe('job-take-batch', () => {
      it('hands out up to batch_size jobs as an array, oldest first, then holds and answers 204', async () => {
        const ids: string[] = [];
        for (const input of [1, 2, 3]) {
          ids.push(await gw.run(input));
          await gw.clock.advance(1); // the queue orders by queuedAt
        }
        const worker = gw.addWorker();
        const first = (await body(worker.takeBatch(2))) as Json[];
        assert.deepEqual(
          first.map((j) => j.id),
          ids.slice(0, 2),
        );
        const second = (await body(worker.takeBatch(2))) as Json[];
        assert.deepEqual(second, [{ id: ids[2], input: 3 }]);
        const empty = worker.takeBatch(3);
        await gw.clock.waitForSleep(30_000);
        await gw.clock.advance(30_000);
        assert.equal((await empty).status, 204);
      });

      it('names a bad batch_size', async () => {
        const worker = gw.addWorker();
        const res = await gw.request(`/v2/echo/job-take-batch/${worker.workerId}?batch_size=zero`, { headers: { authorization: worker.token } });
        assert.equal(res.status, 400);
        assert.equal(((await res.json()) as Json).field, 'batch_size');
      });
    });

    describe('job-done', () => {
      it('treats IN_PROGRESS posts as progress, shown as output, then completes', async () => {
        const id = await gw.run('x');
        const worker = gw.addWorker();
        await worker.take();
        const progress = await worker.done(id, { status: 'IN_PROGRESS', output: { pct: 50 } });
        assert.equal(progress.status, 200);
        assert.match(progress.headers.get('content-type') ?? '', /^application\/json/);
        assert.deepEqual(await progress.json(), {});
        assert.deepEqual(await statusOf(id), { id, status: 'IN_PROGRESS', delayTime: 0, executionTime: 0, output: { pct: 50 }, workerId: worker.workerId });
        await worker.done(id, { output: { echo: 'x' } });
        const done = await statusOf(id);
        assert.equal(done.status, 'COMPLETED');
        assert.deepEqual(done.output, { echo: 'x' });
        // A late progress post (runpod-python#250) changes nothing.
        assert.equal((await worker.done(id, { status: 'IN_PROGRESS', output: { pct: 99 } })).status, 200);
        assert.deepEqual((await statusOf(id)).output, { echo: 'x' });
      });

      it('reads JSON under any content type and ignores X-Request-ID', async () => {
        const id = await gw.run('x');
        const other = await gw.run('y');
        const worker = gw.addWorker();
        await worker.takeBatch(2);
        // The SDK's shared session carries a stale X-Request-ID naming another job.
        await worker.done(id, { output: 1 }, { 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': other });
        await worker.done(other, { output: 2 }, { 'content-type': 'text/plain' });
        assert.equal((await statusOf(id)).output, 1);
        assert.equal((await statusOf(other)).output, 2);
      });

      it('marks a result with error FAILED; a non-string error is kept as JSON text', async () => {
        const worker = gw.addWorker();
        const a = await gw.run('a');
        await worker.take();
        await worker.done(a, { output: { detail: 1 }, error: 'bad input' });
        assert.deepEqual(await statusOf(a), {
          id: a,
          status: 'FAILED',
          delayTime: 0,
          executionTime: 0,
          output: { detail: 1 },
          error: 'bad input',
          workerId: worker.workerId,
        });
        const b = await gw.run('b');
        await worker.take();
        await worker.done(b, { error: { code: 7 } });
        assert.equal((await statusOf(b)).error, '{"code":7}');
        const c = await gw.run('c');
        await worker.take();
        await worker.done(c, { output: 3, error: null });
        assert.equal((await statusOf(c)).status, 'COMPLETED');
      });

      it('ignores a duplicate result', async () => {
        const id = await gw.run('x');
        const worker = gw.addWorker();
        await worker.take();
        await worker.done(id, { output: 'first' });
        const dup = await worker.done(id, { output: 'second' });
        assert.equal(dup.status, 200);
        assert.deepEqual(await dup.json(), {});
        assert.equal((await statusOf(id)).output, 'first');
      });

      it('ignores a result after cancel, answering 200 {}', async () => {
        const id = await gw.run('x');
        const worker = gw.addWorker();
        await worker.take();
        await gw.client(`cancel/${id}`, { json: {} });
        const late = await worker.done(id, { output: 'late' });
        assert.equal(late.status, 200);
        assert.deepEqual(await late.json(), {});
        const status = await statusOf(id);
        assert.equal(status.status, 'CANCELLED');
        assert.equal(status.output, undefined);
        assert.ok(gw.logs.some((l) => l.level === 'warn' && l.message.includes(`ignored result for job ${id}`)));
      });

      it('ignores results from a worker that does not hold the job', async () => {
        const id = await gw.run('x');
        const holder = gw.addWorker();
        const stranger = gw.addWorker();
        await holder.take();
        assert.equal((await stranger.done(id, { output: 'stolen' })).status, 200);
        assert.equal((await stranger.stream(id, 'chunk')).status, 200);
        assert.equal((await stranger.done(id, { status: 'IN_PROGRESS', output: 1 })).status, 200);
        const status = await statusOf(id);
        assert.equal(status.status, 'IN_PROGRESS');
        assert.equal(status.output, undefined);
        assert.deepEqual(await gw.store.streamChunks(id, 0), []);
      });

      it('recycles the worker on stopPod', async () => {
        const id = await gw.run('x');
        const worker = gw.addWorker();
        await worker.take();
        await worker.done(id, { output: 42, stopPod: true });
        assert.equal(gw.registry.get(worker.workerId)?.recycle, true);
        assert.equal((await statusOf(id)).output, 42);
      });

      it('answers 400 to bad or oversized bodies', async () => {
        const id = await gw.run('x');
        const worker = gw.addWorker();
        await worker.take();
        const notJson = await gw.request(`/v2/echo/job-done/${worker.workerId}/${id}`, {
          method: 'POST',
          body: 'output=1',
          headers: { authorization: worker.token, 'content-type': 'application/x-www-form-urlencoded' },
        });
        assert.equal(notJson.status, 400);
        assert.equal(((await notJson.json()) as Json).field, 'body');
        const big = await worker.done(id, { output: 'x'.repeat(WORKER_LIMITS.maxResultBytes) });
        assert.equal(big.status, 400);
        assert.match(String(((await big.json()) as Json).error), /at most 20971520 bytes/);
        assert.equal((await statusOf(id)).status, 'IN_PROGRESS');
      });
    });

    describe('job-stream', () => {
      it('appends chunks that /stream delivers once each', async () => {
        const id = await gw.run('x');
        const worker = gw.addWorker();
        await worker.take();
        for (const tok of [0, 1, 2]) {
          const res = await worker.stream(id, { tok });
          assert.equal(res.status, 200);
          assert.deepEqual(await res.json(), {});
        }
        assert.deepEqual(await body(gw.client(`stream/${id}`)), {
          status: 'IN_PROGRESS',
          stream: [{ output: { tok: 0 } }, { output: { tok: 1 } }, { output: { tok: 2 } }],
          id,
        });
        await worker.done(id, { output: [] });
        assert.deepEqual(await body(gw.client(`stream/${id}`)), { status: 'COMPLETED', stream: [], id });
      });
    });

    describe('job-stop', () => {
      it('returns cancelled job ids, waking a held poll', async () => {
        const id = await gw.run('x');
        const worker = gw.addWorker();
        await worker.take();
        const stop = worker.stop();
        await gw.clock.waitForSleep(30_000);
        await gw.client(`cancel/${id}`, { json: {} });
        const res = await stop;
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
        assert.deepEqual(await res.json(), { jobsToStop: [id] });
      });

      it('answers at once when stops are pending, and 204 after the hold otherwise', async () => {
        const id = await gw.run('x');
        const worker = gw.addWorker();
        await worker.take();
        await gw.client(`cancel/${id}`, { json: {} });
        assert.deepEqual(await body(worker.stop()), { jobsToStop: [id] });
        const empty = worker.stop();
        await gw.clock.waitForSleep(30_000);
        await gw.clock.advance(30_000);
        assert.equal((await empty).status, 204);
      });
    });

    describe('ping', () => {
      it('records the jobs a worker holds', async () => {
        const worker = gw.addWorker();
        await gw.clock.advance(10);
        const res = await worker.ping('job_id=b3%2Cb4&runpod_version=1.12.0');
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), {});
        const info = gw.registry.get(worker.workerId);
        assert.deepEqual(info?.reportedJobs, ['b3', 'b4']);
        assert.equal(info?.lastPingAt, gw.clock.now());
      });

      it('records an unhealthy report', async () => {
        const worker = gw.addWorker();
        await worker.ping('status=unhealthy&check=gpu&reason=no+CUDA&runpod_version=1.12.0');
        const info = gw.registry.get(worker.workerId);
        assert.equal(info?.state, 'unhealthy');
        assert.deepEqual(info?.unhealthy, { check: 'gpu', reason: 'no CUDA' });
      });

      it('needs the worker token', async () => {
        const worker = gw.addWorker();
        assert.equal((await gw.request(`/v2/echo/ping/${worker.workerId}`)).status, 401);
      });
    });

    describe('routing', () => {
      it('answers a worker path with the wrong method or shape as a JSON 404, and decodes escaped segments', async () => {
        const id = await gw.run('x');
        const worker = gw.addWorker({ workerId: 'pod a/1' });
        const auth = { authorization: worker.token };
        for (const [method, url] of [
          ['GET', `/v2/echo/job-done/${encodeURIComponent(worker.workerId)}/${id}`],
          ['POST', `/v2/echo/job-take/${encodeURIComponent(worker.workerId)}`],
          ['GET', `/v2/echo/job-take/${encodeURIComponent(worker.workerId)}/extra`],
          ['POST', `/v2/echo/job-done/${encodeURIComponent(worker.workerId)}`],
        ] as const) {
          const res = await gw.request(url, { method, headers: auth, ...(method === 'POST' ? { body: '{}' } : {}) });
          assert.equal(res.status, 404, `${method} ${url}`);
          assert.equal(((await res.json()) as Json).code, 'not_found');
        }
        const taken = (await body(gw.request(`/v2/echo/job-take/${encodeURIComponent(worker.workerId)}?gpu=G`, { headers: auth }))) as Json;
        assert.equal(taken.id, id);
        assert.equal(gw.registry.get('pod a/1')?.state, 'idle');
      });

      it('answers a refused token with a JSON 401 body', async () => {
        const worker = gw.addWorker();
        const res = await gw.request(`/v2/echo/job-done/${worker.workerId}/nope`, { method: 'POST', body: '{"output":1}', headers: { authorization: 'wrong' } });
        assert.equal(res.status, 401);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
        assert.match(String(((await res.json()) as Json).error), /invalid or missing token for worker worker-\d+ of endpoint echo/);
      });
    });
  });
}
