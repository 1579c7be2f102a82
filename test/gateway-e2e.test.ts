// The gateway end to end: real sockets, real echo worker processes spawned by the process driver,
// a real SQLite file. What a user of `kiln dev` and RunPod's clients would see.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Gateway, parseConfig } from '@kiln/gateway';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ECHO = path.join(ROOT, 'examples/echo');

// A RunPod worker that answers each job with the environment variables its input names.
const ENV_WORKER = `
const auth = process.env.RUNPOD_AI_API_KEY;
for (;;) {
  const res = await fetch(process.env.RUNPOD_WEBHOOK_GET_JOB + '&job_in_progress=0', { headers: { authorization: auth } });
  if (res.status !== 200) { await res.arrayBuffer(); continue; }
  const job = await res.json();
  const output = Object.fromEntries(job.input.names.map((n) => [n, process.env[n] ?? null]));
  await fetch(process.env.RUNPOD_WEBHOOK_POST_OUTPUT.replace('$ID', job.id) + '&isStream=false', { method: 'POST', headers: { authorization: auth }, body: JSON.stringify({ output }) });
}
`;

let gateway: Gateway;
let dir: string;
let base: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-e2e-'));
  await writeFile(path.join(dir, 'env-worker.mjs'), ENV_WORKER);
  const config = parseConfig(
    {
      endpoints: {
        echo: { worker: { command: `${process.execPath} dist/worker.js`, cwd: ECHO }, workersMin: 0, workersMax: 2, idleTimeout: 2, scaler: { type: 'QUEUE_DELAY', value: 1 } },
        solo: { worker: { command: `${process.execPath} dist/worker.js`, cwd: ECHO }, workersMin: 1, workersMax: 1, idleTimeout: 60 },
        env: {
          worker: { command: `${process.execPath} env-worker.mjs` },
          volumes: { models: { mountPath: '/runpod-volume', local: 'volumes/models' } },
          env: { HF_HOME: '/cache/hf' },
        },
      },
      gateway: { port: 0, pingIntervalMs: 1000, pingTimeoutMs: 5000, stopGraceMs: 2000 },
    },
    { baseDir: dir, env: {}, file: path.join(dir, 'kiln.config.json') },
  );
  gateway = new Gateway(config, { tickMs: 100, log: { info() {}, warn() {}, error() {} } });
  await gateway.start();
  base = `${gateway.url}/v2`;
});

after(async () => {
  await gateway?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const TERMINAL = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'];

/** Waits for one of `wanted`: long-polls status-sync for terminal states, polls /status for the others. */
async function waitForStatus(endpoint: string, id: string, wanted: string[], timeoutMs = 20_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  const terminalOnly = wanted.every((s) => TERMINAL.includes(s));
  for (;;) {
    const { json } = terminalOnly
      ? await call('GET', `${base}/${endpoint}/status-sync/${id}?wait=2000`)
      : await call('GET', `${base}/${endpoint}/status/${id}`);
    if (wanted.includes(String(json['status']))) return json;
    if (Date.now() > deadline) throw new Error(`job ${id} is ${String(json['status'])}, wanted ${wanted.join('|')}`);
    if (!terminalOnly) await new Promise((r) => setTimeout(r, 20));
  }
}

test('runsync from zero workers: the gateway spawns a worker, and the answer is the echo', async () => {
  const { status, json } = await call('POST', `${base}/echo/runsync`, { input: { message: 'hello gateway' } });
  assert.equal(status, 200);
  assert.equal(json['status'], 'COMPLETED');
  assert.equal((json['output'] as { message: string }).message, 'hello gateway');
  assert.equal(typeof json['delayTime'], 'number');
  assert.equal(typeof json['executionTime'], 'number');
  assert.match(String(json['workerId']), /^echo-/);
});

test('run then status: IN_QUEUE at once, progress while running, COMPLETED with output', async () => {
  const { json: submitted } = await call('POST', `${base}/echo/run`, { input: { message: 'slow', sleepMs: 3000, progressSteps: 3 } });
  assert.deepEqual(Object.keys(submitted).sort(), ['id', 'status']);
  assert.equal(submitted['status'], 'IN_QUEUE');
  const id = String(submitted['id']);
  // While it runs, /status shows the latest progress update as its output.
  const deadline = Date.now() + 20_000;
  let progress: unknown;
  while (progress === undefined && Date.now() < deadline) {
    const { json } = await call('GET', `${base}/echo/status/${id}`);
    if (json['status'] === 'IN_PROGRESS' && json['output'] !== undefined) progress = json['output'];
    else if (json['status'] === 'COMPLETED') break;
    else await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(progress, 'a progress update was visible while IN_PROGRESS');
  assert.deepEqual(Object.keys(progress as object).sort(), ['of', 'step']);
  assert.equal((progress as { of: number }).of, 3);
  const done = await waitForStatus('echo', id, ['COMPLETED']);
  assert.equal((done['output'] as { message: string }).message, 'slow');
});

test('stream: chunks of a generator worker arrive through /stream, each once, then the final status', async () => {
  const { json } = await call('POST', `${base}/echo/run`, { input: { message: 'one two three four', stream: true, sleepMs: 400 } });
  const id = String(json['id']);
  const words: string[] = [];
  for (let i = 0; i < 50; i++) {
    const { json: page } = await call('GET', `${base}/echo/stream/${id}`);
    for (const item of page['stream'] as { output: { word: string } }[]) words.push(item.output.word);
    if (['COMPLETED', 'FAILED'].includes(String(page['status']))) break;
  }
  assert.deepEqual(words, ['one', 'two', 'three', 'four']);
});

test('a handler error ends FAILED with RunPod’s error string; retry puts the same id back in the queue', async () => {
  const { json } = await call('POST', `${base}/echo/runsync`, { input: { message: 'x', fail: 'boom on purpose' } });
  assert.equal(json['status'], 'FAILED');
  const error = JSON.parse(String(json['error'])) as Record<string, string>;
  assert.equal(error['error_message'], 'boom on purpose');
  const id = String(json['id']);
  const { json: retried } = await call('POST', `${base}/echo/retry/${id}`);
  assert.deepEqual(retried, { id, status: 'IN_QUEUE' });
  const again = await waitForStatus('echo', id, ['FAILED']);
  assert.equal(again['retries'], 1);
});

test('cancel while running: CANCELLED at once, the worker is told through job-stop and is free for the next job', async () => {
  await waitForStatus('solo', String((await call('POST', `${base}/solo/runsync`, { input: { message: 'warm' } })).json['id']), ['COMPLETED']);
  const { json } = await call('POST', `${base}/solo/run`, { input: { message: 'long', sleepMs: 60_000 } });
  const id = String(json['id']);
  await waitForStatus('solo', id, ['IN_PROGRESS']);
  const { json: cancelled } = await call('POST', `${base}/solo/cancel/${id}`, {});
  assert.deepEqual(cancelled, { id, status: 'CANCELLED' });
  // The only worker must be free again well before the 60 s job would have ended.
  const started = Date.now();
  const { json: next } = await call('POST', `${base}/solo/runsync`, { input: { message: 'after cancel' } });
  assert.equal(next['status'], 'COMPLETED');
  assert.ok(Date.now() - started < 15_000);
  assert.equal((await call('GET', `${base}/solo/status/${id}`)).json['status'], 'CANCELLED');
});

test('cancel while queued and purge-queue: queued jobs never run', async () => {
  const busy = String((await call('POST', `${base}/solo/run`, { input: { message: 'busy', sleepMs: 3000 } })).json['id']);
  await waitForStatus('solo', busy, ['IN_PROGRESS']);
  const queued = String((await call('POST', `${base}/solo/run`, { input: { message: 'queued' } })).json['id']);
  const purged1 = String((await call('POST', `${base}/solo/run`, { input: { message: 'p1' } })).json['id']);
  const purged2 = String((await call('POST', `${base}/solo/run`, { input: { message: 'p2' } })).json['id']);
  assert.deepEqual((await call('POST', `${base}/solo/cancel/${queued}`)).json, { id: queued, status: 'CANCELLED' });
  assert.deepEqual((await call('POST', `${base}/solo/purge-queue`)).json, { removed: 2, status: 'completed' });
  await waitForStatus('solo', busy, ['COMPLETED']);
  for (const id of [queued, purged1, purged2]) assert.equal((await call('GET', `${base}/solo/status/${id}`)).json['status'], 'CANCELLED');
});

test('a worker SIGKILLed mid-job: the job goes back to the queue and completes on another worker', async () => {
  const { json } = await call('POST', `${base}/echo/run`, { input: { message: 'survivor', sleepMs: 3000 } });
  const id = String(json['id']);
  const running = await waitForStatus('echo', id, ['IN_PROGRESS']);
  const victim = String(running['workerId']);
  assert.ok(gateway.killWorkerProcess(victim), `worker ${victim} has a process`);
  const done = await waitForStatus('echo', id, ['COMPLETED'], 30_000);
  assert.notEqual(done['workerId'], victim);
  assert.equal((done['output'] as { message: string }).message, 'survivor');
});

test('health counts jobs and workers; worker logs are readable per job', async () => {
  const { json } = await call('GET', `${base}/echo/health`);
  const jobs = json['jobs'] as Record<string, number>;
  const workers = json['workers'] as Record<string, number>;
  assert.ok(jobs['completed']! >= 3, JSON.stringify(json));
  assert.ok(workers['idle']! + workers['running']! >= 1);
  const { json: sync } = await call('POST', `${base}/echo/runsync`, { input: { message: 'logged' } });
  await gateway.tick();
  const lines = await gateway.store.readLogs({ endpoint: 'echo', jobId: String(sync['id']) });
  assert.ok(lines.some((l) => l.line.includes('echoing 6 characters')), 'the handler’s log line, tagged with its job');
  assert.ok(lines.every((l) => l.jobId === String(sync['id'])));
});

test('a spawned worker gets the RunPod variables, its endpoint env, KILN_VOLUME (the endpoint\'s models volume) and KILN_CONFIG; not the gateway\'s env', async () => {
  const names = ['RUNPOD_ENDPOINT_ID', 'RUNPOD_POD_ID', 'KILN_VOLUME', 'KILN_CONFIG', 'HF_HOME', 'NODE_TEST_CONTEXT'];
  const { json } = await call('POST', `${base}/env/runsync`, { input: { names } });
  assert.equal(json['status'], 'COMPLETED');
  const env = json['output'] as Record<string, string | null>;
  assert.equal(env['RUNPOD_ENDPOINT_ID'], 'env');
  assert.equal(env['RUNPOD_POD_ID'], json['workerId']);
  assert.equal(env['KILN_VOLUME'], path.join(dir, 'volumes/models'));
  assert.equal(env['KILN_CONFIG'], path.join(dir, 'kiln.config.json'), 'the manifest ensure() reads is the gateway\'s config');
  assert.equal(env['HF_HOME'], '/cache/hf');
  assert.equal(env['NODE_TEST_CONTEXT'], null, 'the gateway process\'s own environment is not passed on');
});
