// The worker's two local modes as a developer meets them: `--test-input` (one job, the status object
// on stdout) in a real child process, and `--serve-api` (RunPod's endpoint API served by the worker
// itself) over a real socket, in process and once as a child process.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CLIENT_LIMITS,
  isTerminalState,
  parseErrorString,
  parseHealthResponse,
  parseStatusObject,
  parseStreamResponse,
  type ErrorObject,
  type StatusObject,
  type StreamItem,
} from '@kiln/protocol';
import { defineWorker, JobAbortedError, type KilnWorker } from './define-worker.ts';
import { runWorker } from './run-worker.ts';
import { readWorkerEnvironment } from './worker-env.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const KILN = path.join(ROOT, 'packages/cli/bin/kiln.js');
const ECHO_TS = path.join(ROOT, 'examples/echo/src/worker.ts');
const STREAM_TS = fileURLToPath(new URL('./test-workers/aggregate-stream.ts', import.meta.url));
const SETUP_FAILS_TS = fileURLToPath(new URL('./test-workers/setup-fails.ts', import.meta.url));
/** `node <file.ts>` with the workspace's sources: the worker file is the main module and starts itself. */
const NODE_TS = ['--conditions=kiln-source', '--import', 'tsx'];
/** Safety net only: every wait below ends on an event long before this. */
const SAFETY_MS = 20_000;

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// helpers

/** This process's environment without any RunPod variable (the test runner's marker stays: spawned workers must start under it). */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('RUNPOD_')) delete env[key];
  return env;
}

function spawnNode(args: string[], cwd = ROOT): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, args, { cwd, env: childEnv(), stdio: 'pipe' });
}

function killIfRunning(child: ChildProcessWithoutNullStreams): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node …args` to its end. */
async function runNode(args: string[], cwd = ROOT): Promise<Finished> {
  const child = spawnNode(args, cwd);
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  try {
    const [code] = (await once(child, 'close', { signal: AbortSignal.timeout(SAFETY_MS) })) as [number | null];
    return { code, stdout, stderr };
  } finally {
    killIfRunning(child);
  }
}

/** stdout must be exactly one line: the status object. */
function statusLine(run: Finished): StatusObject & Json {
  const lines = run.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `stdout should hold only the status object, got:\n${run.stdout}\nstderr:\n${run.stderr}`);
  const value = JSON.parse(lines[0]!) as Json;
  return { ...value, ...parseStatusObject(value) };
}

/** The values of the `{"chunk": …}` lines on stderr, in order. */
function chunkLines(stderr: string): unknown[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Json)
    .filter((o) => 'chunk' in o)
    .map((o) => o['chunk']);
}

function errorObject(status: { error?: string }): ErrorObject & Json {
  assert.equal(typeof status.error, 'string', 'a failed job carries an error string');
  const info = parseErrorString(status.error!);
  assert.ok(info, `error should be RunPod's JSON error string, got ${status.error}`);
  return info as ErrorObject & Json;
}

function testInput(value: unknown): string[] {
  return ['--test-input', JSON.stringify(value)];
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-local-modes-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Awaits `promise`, failing instead of hanging if it never settles. */
async function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves (with the handler's fallback value) once `signal` aborts. */
function untilAborted(signal: AbortSignal, onAbort: (reason: unknown) => void = () => {}): Promise<string> {
  return new Promise((resolve) => {
    signal.addEventListener(
      'abort',
      () => {
        onAbort(signal.reason);
        resolve('finished after abort');
      },
      { once: true },
    );
  });
}

interface Api {
  url: string;
}

/** Runs `worker` with `--serve-api --port 0` in this process; stops it (and checks exit code 0) afterwards. */
async function withApi(worker: KilnWorker, fn: (api: Api) => Promise<void>): Promise<void> {
  const ready = deferred<{ url: string; stop: () => Promise<void> }>();
  const exited = runWorker(worker, {
    environment: readWorkerEnvironment({}, ['--serve-api', '--port', '0']),
    handleSignals: false,
    logSink: () => {},
    onReady: ({ url, stop }) => ready.resolve({ url: url!, stop }),
  });
  const api = await within(
    Promise.race([ready.promise, exited.then((code) => Promise.reject(new Error(`runWorker returned ${code} before the API was up`)))]),
    'the local API to listen',
  );
  try {
    await fn({ url: api.url });
  } finally {
    await api.stop();
    assert.equal(await within(exited, 'runWorker to return'), 0);
  }
}

async function call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, {
    method,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function getStatus(url: string): Promise<StatusObject> {
  const res = await call('GET', url);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return parseStatusObject(res.body);
}

/** POSTs `text` with chunked transfer encoding, so the server cannot know its length up front. */
function postChunked(url: string, text: string): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.setEncoding('utf8').on('data', (c: string) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) as Json }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const bytes = Buffer.from(text);
    for (let i = 0; i < bytes.length; i += 1 << 20) req.write(bytes.subarray(i, i + (1 << 20)));
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// --test-input

describe('--test-input (child process)', () => {
  test('kiln worker <file.ts> --test-input prints the COMPLETED status object on stdout and exits 0', async () => {
    const run = await runNode([KILN, 'worker', ECHO_TS, ...testInput({ input: { message: 'hi' } })]);
    assert.equal(run.code, 0, run.stderr);
    const status = statusLine(run);
    assert.equal(status.id, 'local_test');
    assert.equal(status.status, 'COMPLETED');
    assert.equal(typeof status.executionTime, 'number');
    assert.equal((status.output as Json)['message'], 'hi');
    assert.equal(status.error, undefined);
  });

  test('a worker file run with plain node starts itself as the main module and runs --test-input, keeping the given job id', async () => {
    const run = await runNode([...NODE_TS, ECHO_TS, ...testInput({ id: 'my-job', input: { message: 'direct' } })]);
    assert.equal(run.code, 0, run.stderr);
    const status = statusLine(run);
    assert.equal(status.id, 'my-job');
    assert.equal(status.status, 'COMPLETED');
    assert.equal((status.output as Json)['message'], 'direct');
  });

  test('a handler that throws: exit 1, status FAILED, and the error is RunPod\'s JSON error string', async () => {
    const run = await runNode([...NODE_TS, ECHO_TS, ...testInput({ input: { message: 'x', fail: 'boom' } })]);
    assert.equal(run.code, 1, run.stderr);
    const status = statusLine(run);
    assert.equal(status.status, 'FAILED');
    assert.equal(status.output, undefined);
    const info = errorObject(status);
    assert.equal(info.error_type, 'Error');
    assert.equal(info.error_message, 'boom');
    assert.match(info.error_traceback, /boom/);
    assert.match(run.stderr, /job failed: Error: boom/);
  });

  test('a setup that throws fails the job with a SetupError carrying its message, exit 1', async () => {
    const run = await runNode([KILN, 'worker', SETUP_FAILS_TS, ...testInput({ input: {} })]);
    assert.equal(run.code, 1, run.stderr);
    const status = statusLine(run);
    assert.equal(status.status, 'FAILED');
    const info = errorObject(status);
    assert.equal(info.error_type, 'SetupError');
    assert.match(info.error_message, /model weights not found at \/models\/missing\.onnx/);
    assert.match(info.error_traceback, /setup-fails\.ts/);
  });

  test('a streaming handler is iterated: every chunk is a JSON line on stderr, and the aggregated output holds them all', async () => {
    const run = await runNode([...NODE_TS, STREAM_TS, ...testInput({ input: { tokens: ['a', 'b', 'c'] } })]);
    assert.equal(run.code, 0, run.stderr);
    const expected = [
      { index: 0, token: 'a' },
      { index: 1, token: 'b' },
      { index: 2, token: 'c' },
    ];
    assert.deepEqual(chunkLines(run.stderr), expected);
    const status = statusLine(run);
    assert.equal(status.status, 'COMPLETED');
    assert.deepEqual(status.output, expected);
  });

  test('a streaming handler without aggregateStream prints its chunks and ends with output [], as on RunPod', async () => {
    const run = await runNode([KILN, 'worker', ECHO_TS, ...testInput({ input: { message: 'one two', stream: true } })]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(chunkLines(run.stderr), [{ word: 'one' }, { word: 'two' }]);
    const status = statusLine(run);
    assert.equal(status.status, 'COMPLETED');
    assert.deepEqual(status.output, []);
  });

  test('input the schema rejects fails the job before the handler runs, naming the offending path', async () => {
    const run = await runNode([KILN, 'worker', ECHO_TS, ...testInput({ input: { message: 42 } })]);
    assert.equal(run.code, 1, run.stderr);
    const status = statusLine(run);
    assert.equal(status.status, 'FAILED');
    const info = errorObject(status);
    assert.equal(info.error_type, 'InputValidationError');
    assert.match(info.error_message, /input\.message/);
    assert.deepEqual(
      (info['issues'] as { path: string }[]).map((i) => i.path),
      ['input.message'],
    );
  });

  test('without --test-input, test_input.json in the current folder is the job', async () => {
    await withTempDir(async (dir) => {
      await writeFile(path.join(dir, 'test_input.json'), JSON.stringify({ input: { message: 'from test_input.json' } }));
      const run = await runNode([KILN, 'worker', ECHO_TS], dir);
      assert.equal(run.code, 0, run.stderr);
      const status = statusLine(run);
      assert.equal(status.status, 'COMPLETED');
      assert.equal((status.output as Json)['message'], 'from test_input.json');
    });
  });

  test('with no job source at all the worker exits 2 with the usage text, prints nothing on stdout and runs no setup', async () => {
    await withTempDir(async (dir) => {
      const run = await runNode([KILN, 'worker', ECHO_TS], dir);
      assert.equal(run.code, 2, run.stderr);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, /no job source/);
      assert.match(run.stderr, /usage: /);
      assert.doesNotMatch(run.stderr, /setup started/);
    });
  });

  test('malformed --test-input JSON: exit 2 with a message saying it is not JSON, and no job runs', async () => {
    const run = await runNode([...NODE_TS, ECHO_TS, '--test-input', '{"input": {"message": ']);
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /--test-input: not JSON/);
    assert.doesNotMatch(run.stderr, /setup started/);
  });

  test('--test-input JSON without an "input" key: exit 2 with a message showing the expected shape', async () => {
    const run = await runNode([KILN, 'worker', ECHO_TS, ...testInput({ message: 'forgot the wrapper' })]);
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /--test-input: must be a JSON object with an "input" key/);
  });
});

// ---------------------------------------------------------------------------------------------
// --serve-api

describe('--serve-api (in process, real socket)', () => {
  test('POST /run answers {id, status: IN_QUEUE} and the job runs in the background, before any /status call', async () => {
    const ran = deferred<string>();
    const worker = defineWorker({
      handler(job) {
        ran.resolve(job.id);
        return { doubled: (job.input as { n: number }).n * 2 };
      },
    });
    await withApi(worker, async ({ url }) => {
      const res = await call('POST', `${url}/run`, { input: { n: 21 } });
      assert.equal(res.status, 200);
      assert.deepEqual(Object.keys(res.body).sort(), ['id', 'status']);
      assert.equal(res.body['status'], 'IN_QUEUE');
      const id = String(res.body['id']);
      // Nothing has asked about the job yet: the handler must run on its own (runpod-python's waits for /status).
      assert.equal(await within(ran.promise, 'the handler to run'), id);
      const done = await getStatus(`${url}/status-sync/${id}?wait=10000`);
      assert.equal(done.status, 'COMPLETED');
      const status = await getStatus(`${url}/status/${id}`);
      assert.equal(status.id, id);
      assert.equal(status.status, 'COMPLETED');
      assert.deepEqual(status.output, { doubled: 42 });
      assert.match(status.workerId ?? '', /^local-/);
      assert.equal(typeof status.delayTime, 'number');
      assert.equal(typeof status.executionTime, 'number');
    });
  });

  test('POST /runsync answers the terminal status object: COMPLETED with the output, or FAILED with the error string', async () => {
    const worker = defineWorker({
      handler(job) {
        const input = job.input as { text: string; fail?: boolean };
        if (input.fail) throw new RangeError(`cannot echo ${input.text}`);
        return { echo: input.text };
      },
    });
    await withApi(worker, async ({ url }) => {
      const ok = await call('POST', `${url}/runsync`, { input: { text: 'hi' } });
      assert.equal(ok.status, 200);
      const completed = parseStatusObject(ok.body);
      assert.equal(completed.status, 'COMPLETED');
      assert.deepEqual(completed.output, { echo: 'hi' });

      const bad = await call('POST', `${url}/runsync`, { input: { text: 'this', fail: true } });
      assert.equal(bad.status, 200);
      const failed = parseStatusObject(bad.body);
      assert.equal(failed.status, 'FAILED');
      const info = errorObject(failed);
      assert.equal(info.error_type, 'RangeError');
      assert.equal(info.error_message, 'cannot echo this');
    });
  });

  test('POST /runsync?wait=1000 answers just {id, status} when the job is still running (IN_PROGRESS) or still queued (IN_QUEUE)', async () => {
    const started = deferred<string>();
    const worker = defineWorker({
      handler(job, ctx) {
        started.resolve(job.id);
        return untilAborted(ctx.signal);
      },
    });
    await withApi(worker, async ({ url }) => {
      const running = call('POST', `${url}/runsync?wait=1000`, { input: 'first' });
      const runningId = await within(started.promise, 'the first job to start');
      // Concurrency is 1: this one waits in the queue behind the first.
      const queued = call('POST', `${url}/runsync?wait=1000`, { input: 'second' });
      const [r, q] = await Promise.all([running, queued]);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { id: runningId, status: 'IN_PROGRESS' });
      assert.equal(q.status, 200);
      assert.deepEqual(Object.keys(q.body).sort(), ['id', 'status']);
      assert.equal(q.body['status'], 'IN_QUEUE');
      assert.notEqual(q.body['id'], runningId);
    });
  });

  test('GET /stream/{id} holds until there are chunks and hands out each chunk exactly once, in order, as {output}', async () => {
    const firstGate = deferred();
    const lastGate = deferred();
    const worker = defineWorker({
      async *handler() {
        await firstGate.promise;
        yield 'a';
        yield 'b';
        await lastGate.promise;
        yield 'c';
      },
    });
    await withApi(worker, async ({ url }) => {
      const run = await call('POST', `${url}/run`, { input: {} });
      const id = String(run.body['id']);
      const firstPage = call('GET', `${url}/stream/${id}`);
      firstGate.resolve();
      const pages = [parseStreamResponse((await firstPage).body)];
      assert.notDeepEqual(pages[0]!.stream, [], 'the first /stream call waits for a chunk instead of answering empty');
      const seen = (): StreamItem[] => pages.flatMap((p) => p.stream);
      while (!isTerminalState(pages.at(-1)!.status)) {
        assert.ok(pages.length < 20, `too many /stream calls: ${JSON.stringify(pages)}`);
        if (seen().length >= 2) lastGate.resolve();
        const res = await call('GET', `${url}/stream/${id}`);
        assert.equal(res.status, 200);
        pages.push(parseStreamResponse(res.body));
      }
      assert.equal(pages.at(-1)!.status, 'COMPLETED');
      assert.deepEqual(seen(), [{ output: 'a' }, { output: 'b' }, { output: 'c' }]);
      assert.ok(pages.every((p) => p.id === id));
      const after = parseStreamResponse((await call('GET', `${url}/stream/${id}`)).body);
      assert.deepEqual(after.stream, [], 'chunks already handed out are not handed out again');
    });
  });

  test('POST /cancel/{id} on a running job answers CANCELLED and aborts the handler\'s signal with a job-stop JobAbortedError', async () => {
    const started = deferred<string>();
    const aborted = deferred<unknown>();
    const worker = defineWorker({
      handler(job, ctx) {
        started.resolve(job.id);
        return untilAborted(ctx.signal, (reason) => aborted.resolve(reason));
      },
    });
    await withApi(worker, async ({ url }) => {
      const id = String((await call('POST', `${url}/run`, { input: {} })).body['id']);
      assert.equal(await within(started.promise, 'the job to start'), id);
      const cancel = await call('POST', `${url}/cancel/${id}`);
      assert.equal(cancel.status, 200);
      assert.deepEqual(cancel.body, { id, status: 'CANCELLED' });
      const reason = await within(aborted.promise, "the handler's signal to abort");
      assert.ok(reason instanceof JobAbortedError, `reason is ${String(reason)}`);
      assert.equal(reason.kind, 'job-stop');
      const status = await getStatus(`${url}/status/${id}`);
      assert.equal(status.status, 'CANCELLED');
      assert.equal(status.output, undefined, "the handler's late return value is not the output of a cancelled job");
    });
  });

  test('POST /cancel/{id} on a queued job answers CANCELLED and the job never runs', async () => {
    const ran: string[] = [];
    const started = deferred<string>();
    const lastRan = deferred<string>();
    const worker = defineWorker({
      handler(job, ctx) {
        ran.push(job.id);
        if (job.input === 'last') {
          lastRan.resolve(job.id);
          return 'done';
        }
        started.resolve(job.id);
        return untilAborted(ctx.signal);
      },
    });
    await withApi(worker, async ({ url }) => {
      const blocker = String((await call('POST', `${url}/run`, { input: 'block' })).body['id']);
      await within(started.promise, 'the blocking job to start');
      const doomed = String((await call('POST', `${url}/run`, { input: 'doomed' })).body['id']);
      const last = String((await call('POST', `${url}/run`, { input: 'last' })).body['id']);
      assert.deepEqual((await call('POST', `${url}/cancel/${doomed}`)).body, { id: doomed, status: 'CANCELLED' });
      await call('POST', `${url}/cancel/${blocker}`);
      // Jobs leave the queue in order, so once `last` ran, `doomed` had its turn.
      await within(lastRan.promise, 'the last job to run');
      assert.deepEqual(ran, [blocker, last]);
      assert.equal((await getStatus(`${url}/status/${doomed}`)).status, 'CANCELLED');
    });
  });

  test('GET /health counts jobs by state and shows the worker running while a job is in flight, idle after', async () => {
    const started = deferred<string>();
    const worker = defineWorker({
      handler(job, ctx) {
        if (job.input === 'fail') throw new Error('asked to fail');
        if (job.input === 'block') {
          started.resolve(job.id);
          return untilAborted(ctx.signal);
        }
        return 'ok';
      },
    });
    await withApi(worker, async ({ url }) => {
      assert.equal(parseStatusObject((await call('POST', `${url}/runsync`, { input: 'ok' })).body).status, 'COMPLETED');
      assert.equal(parseStatusObject((await call('POST', `${url}/runsync`, { input: 'fail' })).body).status, 'FAILED');
      const blocker = String((await call('POST', `${url}/run`, { input: 'block' })).body['id']);
      await within(started.promise, 'the blocking job to start');
      const waiting = String((await call('POST', `${url}/run`, { input: 'ok' })).body['id']);

      const busy = await call('GET', `${url}/health`);
      assert.equal(busy.status, 200);
      assert.deepEqual(parseHealthResponse(busy.body), {
        jobs: { completed: 1, failed: 1, inProgress: 1, inQueue: 1, retried: 0 },
        workers: { idle: 0, running: 1, initializing: 0, ready: 1, throttled: 0, unhealthy: 0 },
      });
      assert.equal((busy.body['setup'] as Json)['status'], 'ready');

      await call('POST', `${url}/cancel/${blocker}`);
      assert.equal((await getStatus(`${url}/status-sync/${waiting}?wait=10000`)).status, 'COMPLETED');
      assert.deepEqual(parseHealthResponse((await call('GET', `${url}/health`)).body), {
        jobs: { completed: 2, failed: 1, inProgress: 0, inQueue: 0, retried: 0 },
        workers: { idle: 1, running: 0, initializing: 0, ready: 1, throttled: 0, unhealthy: 0 },
      });
    });
  });

  test('a failed setup shows on /health (worker unhealthy, setup error given) and fails every job with a SetupError', async () => {
    const worker = defineWorker({
      setup(): { model: string } {
        throw new Error('CUDA not available');
      },
      handler: () => 'unreachable',
    });
    await withApi(worker, async ({ url }) => {
      // A job waits for setup to end, so /health below sees its outcome rather than a setup still running.
      const job = parseStatusObject((await call('POST', `${url}/runsync`, { input: {} })).body);
      assert.equal(job.status, 'FAILED');
      const info = errorObject(job);
      assert.equal(info.error_type, 'SetupError');
      assert.match(info.error_message, /CUDA not available/);

      const health = await call('GET', `${url}/health`);
      assert.equal(health.status, 200);
      const { workers } = parseHealthResponse(health.body);
      assert.deepEqual(workers, { idle: 0, running: 0, initializing: 0, ready: 0, throttled: 0, unhealthy: 1 });
      const setup = health.body['setup'] as Json;
      assert.equal(setup['status'], 'failed');
      assert.match(String(setup['error']), /CUDA not available/);
    });
  });

  test('404 with a message naming the id for a job the API never issued, on every per-job route', async () => {
    await withApi(defineWorker({ handler: () => 'x' }), async ({ url }) => {
      for (const [method, route] of [
        ['GET', 'status'],
        ['GET', 'status-sync'],
        ['GET', 'stream'],
        ['POST', 'cancel'],
      ] as const) {
        const res = await call(method, `${url}/${route}/no-such-job`);
        assert.equal(res.status, 404, `${method} /${route}`);
        assert.match(String(res.body['error']), /no-such-job/);
      }
      assert.equal((await call('GET', `${url}/no-such-route`)).status, 404);
    });
  });

  test('400 with a message naming `input` for a body without input, and 400 for a body that is not JSON', async () => {
    await withApi(defineWorker({ handler: () => 'x' }), async ({ url }) => {
      for (const route of ['run', 'runsync']) {
        const res = await call('POST', `${url}/${route}`, { prompt: 'forgot the input wrapper' });
        assert.equal(res.status, 400, route);
        assert.equal(res.body['field'], 'input');
        assert.match(String(res.body['error']), /\binput\b/);
      }
      const notJson = await call('POST', `${url}/run`, '{"input": ');
      assert.equal(notJson.status, 400);
      assert.match(String(notJson.body['error']), /JSON/);
    });
  });

  test('413 for a /run body over 10 MB, with or without a declared length; /runsync (limit 20 MB) takes the same body', async () => {
    const worker = defineWorker({ handler: (job) => (job.input as string).length });
    const payload = 'x'.repeat(CLIENT_LIMITS.runBodyBytes);
    const body = JSON.stringify({ input: payload });
    await withApi(worker, async ({ url }) => {
      const declared = await call('POST', `${url}/run`, body);
      assert.equal(declared.status, 413);
      assert.match(String(declared.body['error']), /limit/);
      const chunked = await postChunked(`${url}/run`, body);
      assert.equal(chunked.status, 413);
      assert.match(String(chunked.body['error']), /limit/);
      const health = parseHealthResponse((await call('GET', `${url}/health`)).body);
      assert.deepEqual(health.jobs, { completed: 0, failed: 0, inProgress: 0, inQueue: 0, retried: 0 }, 'no job was queued');

      const sync = await call('POST', `${url}/runsync`, body);
      assert.equal(sync.status, 200);
      const status = parseStatusObject(sync.body);
      assert.equal(status.status, 'COMPLETED');
      assert.equal(status.output, payload.length);
    });
  });

  test('stopping the API aborts the running job with cause shutdown and starts none of the queued jobs', async () => {
    const started: string[] = [];
    const firstStarted = deferred<string>();
    const aborted = deferred<unknown>();
    const worker = defineWorker({
      handler(job, ctx) {
        started.push(job.id);
        firstStarted.resolve(job.id);
        return untilAborted(ctx.signal, (reason) => aborted.resolve(reason));
      },
    });
    const ready = deferred<{ url: string; stop: () => Promise<void> }>();
    const exited = runWorker(worker, {
      environment: readWorkerEnvironment({}, ['--serve-api', '--port', '0']),
      handleSignals: false,
      logSink: () => {},
      onReady: ({ url, stop }) => ready.resolve({ url: url!, stop }),
    });
    const api = await within(ready.promise, 'the local API to listen');
    let stopped = false;
    try {
      const running = String((await call('POST', `${api.url}/run`, { input: 'running' })).body['id']);
      await within(firstStarted.promise, 'the first job to start');
      await call('POST', `${api.url}/run`, { input: 'queued' });
      await api.stop();
      stopped = true;
      assert.equal(await within(exited, 'runWorker to return'), 0);
      const reason = await within(aborted.promise, "the running job's signal to abort");
      assert.ok(reason instanceof JobAbortedError, `reason is ${String(reason)}`);
      assert.equal(reason.kind, 'shutdown');
      // The aborted job ends through promise callbacks alone: one macrotask later, whatever it would start has started.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(started, [running], 'no queued job starts once the API is stopped');
    } finally {
      if (!stopped) await api.stop();
    }
  });

  test('every route also answers under /v2/{endpoint}/, so RunPod clients work with a base URL ending in /v2', async () => {
    const streamGate = deferred();
    const worker = defineWorker({
      async *handler(job) {
        await streamGate.promise;
        yield job.input;
      },
    });
    await withApi(worker, async ({ url }) => {
      const base = `${url}/v2/my-endpoint`;
      const run = await call('POST', `${base}/run`, { input: 'queued' });
      assert.equal(run.status, 200);
      assert.equal(run.body['status'], 'IN_QUEUE');
      const id = String(run.body['id']);
      streamGate.resolve();
      const stream = await call('GET', `${base}/stream/${id}`);
      assert.equal(stream.status, 200);
      assert.deepEqual(parseStreamResponse(stream.body).stream, [{ output: 'queued' }]);
      assert.equal((await getStatus(`${base}/status-sync/${id}?wait=10000`)).status, 'COMPLETED');
      assert.equal((await getStatus(`${base}/status/${id}`)).status, 'COMPLETED');
      const sync = await call('POST', `${base}/runsync`, { input: 'sync' });
      assert.equal(parseStatusObject(sync.body).status, 'COMPLETED');
      const health = await call('GET', `${base}/health`);
      assert.equal(parseHealthResponse(health.body).jobs.completed, 2);
      const cancel = await call('POST', `${base}/cancel/${id}`);
      assert.deepEqual(cancel.body, { id, status: 'COMPLETED' }, 'cancelling a finished job leaves it as it was');
    });
  });
});

describe('--serve-api (child process)', () => {
  test('kiln worker <file> --serve-api --port 0 prints its URL, serves jobs on it, and exits 0 on SIGTERM', async () => {
    const child = spawnNode([KILN, 'worker', ECHO_TS, '--serve-api', '--port', '0']);
    child.stdin.end();
    child.stdout.resume();
    try {
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      const url = await within(
        new Promise<string>((resolve, reject) => {
          const lines = createInterface({ input: child.stderr });
          lines.on('line', (line) => {
            const m = /RunPod endpoint API on (http:\/\/\S+)/.exec(line);
            if (m) resolve(m[1]!);
          });
          void exited.then(([code]) => reject(new Error(`worker exited with ${code} before printing its URL`)));
        }),
        'the worker to print its URL',
        SAFETY_MS,
      );
      const res = await call('POST', `${url}/runsync`, { input: { message: 'over a real socket' } });
      assert.equal(res.status, 200);
      const status = parseStatusObject(res.body);
      assert.equal(status.status, 'COMPLETED');
      assert.equal((status.output as Json)['message'], 'over a real socket');

      child.kill('SIGTERM');
      const [code, signal] = await within(exited, 'the worker to exit after SIGTERM');
      assert.equal(signal, null);
      assert.equal(code, 0);
    } finally {
      killIfRunning(child);
    }
  });
});
