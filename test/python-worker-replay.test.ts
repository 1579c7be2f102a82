// Replays the worker side of every recorded runpod-python exchange (shared/fixtures/runpod-python-exchange)
// against a real gateway over real sockets — same methods, paths, query strings, headers (raw
// Authorization key, JSON labelled x-www-form-urlencoded, the bogus `charset` header, stale
// X-Request-ID) and body bytes, with job ids mapped to the ids the gateway gave — and checks what
// a RunPod client then sees through the endpoint API.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Gateway, parseConfig } from '@kiln/gateway';
import {
  fixtureFiles,
  jobsOf,
  kindOf,
  loadExchange,
  rawRequest,
  type RecordedJob,
  type RecordedRequest,
} from './support/recorded-exchange.ts';

const ENDPOINT = 'ep-test';
/** The fixtures' RUNPOD_AI_API_KEY, sent raw as Authorization (trixie.jsonl was recorded with `k`). */
const WORKER_TOKEN = 'test-ai-key';
/** Take/stop long-poll hold: short, so the recorded 204s come back fast. */
const HOLD_MS = 100;
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT']);
/** What /run needs beyond the fields a recorded job's s3Config carried (the fake server sent only bucketName). */
const S3_DEFAULTS = { accessId: 'AKIA-test', accessSecret: 'secret', bucketName: 'bucket', endpointUrl: 'https://s3.example.test' };

type Json = Record<string, unknown>;

/** What the client must see for one recorded job once the replay is over. */
interface ExpectedJob {
  status: string;
  /** Omitted ⇒ the status object must have no `output`. */
  output?: unknown;
  /** A string to compare, or a check of the error string; omitted ⇒ no `error`. */
  error?: string | ((error: string) => void);
}

interface FixtureSpec {
  /** The worker id in the recorded paths (RUNPOD_POD_ID). */
  workerId: string;
  /** Its RUNPOD_AI_API_KEY; default {@link WORKER_TOKEN}. */
  token?: string;
  /** Every job the recording's take answers carried, by recorded id. */
  jobs: Record<string, ExpectedJob>;
  /** Chunks clients must read through /stream, by recorded id. */
  chunks?: Record<string, unknown[]>;
  /** Further checks once the replay is done. */
  after?: (gateway: Gateway, records: RecordedRequest[]) => void;
}

const W = 'worker-abc123';
const echoed = (input: unknown, keys: string[]) => ({ status: 'COMPLETED', output: { echo: input, keys } });
const SPECS: Record<string, FixtureSpec> = {
  'basic.jsonl': { workerId: W, jobs: { 'job-1': echoed({ prompt: 'hi' }, ['id', 'input', 's3Config']) } },
  'trixie.jsonl': { workerId: 'w-trixie', token: 'k', jobs: { t1: echoed({ x: 1 }, ['id', 'input']), t2: echoed({ x: 2 }, ['id', 'input']) } },
  'raises.jsonl': {
    workerId: W,
    jobs: {
      'job-r': {
        status: 'FAILED',
        error: (error) => {
          const info = JSON.parse(error) as Json;
          assert.equal(info['error_type'], "<class 'ValueError'>");
          assert.equal(info['error_message'], 'boom from handler');
          assert.match(String(info['error_traceback']), /^Traceback/);
          assert.equal(info['worker_id'], W);
        },
      },
    },
  },
  'errdict.jsonl': { workerId: W, jobs: { 'job-ed': { status: 'FAILED', error: 'bad input', output: { detail: 1 } } } },
  'gen.jsonl': {
    workerId: W,
    jobs: { 'job-gen': { status: 'COMPLETED', output: [{ tok: 0 }, { tok: 1 }, { tok: 2 }] } },
    chunks: { 'job-gen': [{ tok: 0 }, { tok: 1 }, { tok: 2 }] },
  },
  'gen-1713.jsonl': {
    workerId: W,
    jobs: { g1: { status: 'COMPLETED', output: [{ tok: 0 }, { tok: 1 }, { tok: 2 }] } },
    chunks: { g1: [{ tok: 0 }, { tok: 1 }, { tok: 2 }] },
  },
  'agen.jsonl': {
    workerId: W,
    jobs: { 'job-agen': { status: 'COMPLETED', output: [] } },
    chunks: { 'job-agen': ['chunk-0', 'chunk-1'] },
  },
  'batch.jsonl': {
    workerId: W,
    jobs: {
      b1: { status: 'COMPLETED', output: { slept: 1 } },
      b2: { status: 'COMPLETED', output: { slept: 1 } },
      b3: { status: 'COMPLETED', output: { slept: 2 } },
      b4: { status: 'COMPLETED', output: { slept: 1 } },
    },
  },
  'batch-1713.jsonl': {
    workerId: W,
    jobs: {
      b1: { status: 'COMPLETED', output: { slept: 1 } },
      b2: { status: 'COMPLETED', output: { slept: 1 } },
      b3: { status: 'COMPLETED', output: { slept: 1 } },
    },
  },
  'refresh.jsonl': {
    workerId: W,
    jobs: { r1: { status: 'COMPLETED', output: 42 } },
    after: (gateway) => assert.equal(gateway.registry.get(W)?.recycle, true, 'stopPod: true marks the worker for recycling'),
  },
  'stop.jsonl': {
    workerId: W,
    jobs: { s1: { status: 'CANCELLED' } },
    after: (_gateway, records) =>
      assert.ok(!records.some((r) => kindOf(r) === 'job-done'), 'the recorded worker sent no job-done for the stopped job'),
  },
};

const running = new Set<{ gateway: Gateway; dir: string }>();

after(async () => {
  for (const entry of [...running]) await stopGateway(entry);
});

async function startGateway(workerId: string, token: string): Promise<{ gateway: Gateway; dir: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-replay-'));
  const config = parseConfig(
    {
      endpoints: {
        // workersMax cannot be 0; the registered fake worker is the one live worker, so nothing is spawned
        // (the command would exit at once, and the test checks that no other worker ever registered).
        [ENDPOINT]: {
          worker: { command: `${process.execPath} -e process.exit(7)` },
          workersMin: 0,
          workersMax: 1,
          idleTimeout: 3600,
          scaler: { type: 'QUEUE_DELAY', value: 10_000 },
        },
      },
      gateway: { port: 0, takeHoldMs: HOLD_MS, pingIntervalMs: 10_000, pingTimeoutMs: 600_000 },
    },
    { baseDir: dir, env: {} },
  );
  const gateway = new Gateway(config, { tickMs: 50, log: { info() {}, warn() {}, error() {} } });
  const entry = { gateway, dir };
  running.add(entry);
  await gateway.start();
  gateway.registry.register({ workerId, endpoint: ENDPOINT, token });
  return entry;
}

async function stopGateway(entry: { gateway: Gateway; dir: string }): Promise<void> {
  if (!running.delete(entry)) return;
  await entry.gateway.stop();
  await rm(entry.dir, { recursive: true, force: true });
}

/** A client API call (no API keys configured). */
async function client(base: string, method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${base}/v2/${ENDPOINT}/${url}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

async function statusOf(base: string, id: string): Promise<Json> {
  const { status, json } = await client(base, 'GET', `status/${id}`);
  assert.equal(status, 200, `/status/${id}: ${JSON.stringify(json)}`);
  return json;
}

function fullS3Config(recorded: unknown): Json {
  return { ...S3_DEFAULTS, ...(recorded as Json) };
}

/** Replays one fixture file; returns after the final client-side checks. */
async function replay(file: string, spec: FixtureSpec): Promise<void> {
  const records = loadExchange(file);
  const token = spec.token ?? WORKER_TOKEN;
  const entry = await startGateway(spec.workerId, token);
  const { gateway } = entry;
  const base = gateway.url;
  const host = new URL(base).host;
  try {
    /** recorded job id → the gateway's job id */
    const ids = new Map<string, string>();
    const mapId = (recorded: string, where: string): string => {
      const id = ids.get(recorded);
      if (id === undefined) throw new Error(`${where}: job ${recorded} was never handed out`);
      return id;
    };
    /** Chunks posted through job-stream that no client has read yet, and those read, by recorded id. */
    const unread = new Map<string, unknown[]>();
    const read = new Map<string, unknown[]>();
    /** The status object right after a job's first final job-done, by recorded id. */
    const finals = new Map<string, Json>();

    /** GET /stream once: it must hand out exactly the unread chunks, each once. */
    const readStream = async (recorded: string, wantStatus: (status: string) => boolean, where: string) => {
      const pending = unread.get(recorded) ?? [];
      const { status, json } = await client(base, 'GET', `stream/${mapId(recorded, where)}`);
      assert.equal(status, 200, where);
      assert.ok(wantStatus(String(json['status'])), `${where}: /stream status ${String(json['status'])}`);
      assert.deepEqual(json['stream'], pending.map((output) => ({ output })), `${where}: /stream chunks`);
      read.set(recorded, [...(read.get(recorded) ?? []), ...pending]);
      unread.set(recorded, []);
    };

    for (const [index, record] of records.entries()) {
      const kind = kindOf(record);
      const where = `${file}:${index + 1} ${record.method} ${record.path}${record.rawQuery}`;
      const segments = record.path.split('/');
      const recordedJob = kind === 'job-done' || kind === 'job-stream' ? segments[5]! : undefined;

      // --- client side, before the worker's request ---
      if ((kind === 'job-take' || kind === 'job-take-batch') && record.status === 200) {
        // The jobs this take answer carried: submitted by a client just before, with the same input.
        for (const job of jobsOf(record)) {
          const { status, json } = await client(base, 'POST', 'run', {
            input: job.input,
            ...(job['s3Config'] !== undefined ? { s3Config: fullS3Config(job['s3Config']) } : {}),
          });
          assert.equal(status, 200, `${where}: /run ${JSON.stringify(json)}`);
          assert.equal(json['status'], 'IN_QUEUE');
          ids.set(job.id, String(json['id']));
        }
      }
      if (kind === 'job-stop' && record.status === 200) {
        // The recording's server asked the worker to stop these jobs: here a client cancels them.
        for (const recorded of (record.response as { jobsToStop: string[] }).jobsToStop) {
          const id = mapId(recorded, where);
          const { status, json } = await client(base, 'POST', `cancel/${id}`, {});
          assert.equal(status, 200, where);
          assert.deepEqual(json, { id, status: 'CANCELLED' });
        }
      }
      const body = record.body === '' ? undefined : (JSON.parse(record.body) as Json);
      const isFinal = kind === 'job-done' && body?.['status'] !== 'IN_PROGRESS';
      if (isFinal && !finals.has(recordedJob!) && (unread.get(recordedJob!)?.length ?? 0) > 0) {
        // Before the result: a client polling /stream gets every chunk posted so far, in one answer.
        await readStream(recordedJob!, (s) => s === 'IN_PROGRESS', `${where} (before the result)`);
      }

      // --- the worker's request, as recorded, with job ids mapped ---
      const pathAndQuery =
        segments.map((segment, i) => (i === 5 ? mapId(segment, where) : segment)).join('/') +
        record.rawQuery.replace(/([?&]job_id=)([^&]*)/, (_m, key: string, value: string) =>
          key + value.split('%2C').map((id) => mapId(id, where)).join('%2C'),
        );
      let sentBody = record.body;
      for (const [recorded, id] of ids) sentBody = sentBody.replaceAll(JSON.stringify(recorded), JSON.stringify(id));
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(record.headers)) {
        if (name === 'host' || name === 'content-length') continue;
        // A stale X-Request-ID stays stale: it names the (mapped) job of an earlier request.
        headers[name] = name === 'x-request-id' ? (ids.get(value) ?? value) : value;
      }
      headers['host'] = host;
      if (sentBody !== '') headers['content-length'] = String(Buffer.byteLength(sentBody));
      assert.equal(headers['authorization'], token, `${where}: the raw key, as recorded`);
      const res = await rawRequest(base, { method: record.method, pathAndQuery, headers, body: sentBody });

      // --- what the gateway answered the worker ---
      switch (kind) {
        case 'job-take':
        case 'job-take-batch': {
          if (record.status === 204) {
            assert.equal(res.status, 204, `${where}: empty queue ⇒ 204 after the hold (got ${res.status} ${res.body})`);
            assert.equal(res.body, '');
            break;
          }
          assert.equal(res.status, 200, `${where}: ${res.body}`);
          assert.match(String(res.headers['content-type']), /^application\/json/);
          const answer = JSON.parse(res.body) as unknown;
          const expected = jobsOf(record).map((job: RecordedJob) => ({
            ...job,
            id: mapId(job.id, where),
            ...(job['s3Config'] !== undefined ? { s3Config: fullS3Config(job['s3Config']) } : {}),
          }));
          if (kind === 'job-take') {
            assert.ok(!Array.isArray(answer), `${where}: job-take answers one job object`);
            assert.deepEqual(answer, expected[0], where);
          } else {
            assert.ok(Array.isArray(answer), `${where}: job-take-batch answers an array`);
            const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
            assert.deepEqual([...(answer as { id: string }[])].sort(byId), expected.sort(byId), where);
          }
          for (const job of expected) {
            const seen = await statusOf(base, job.id);
            assert.equal(seen['status'], 'IN_PROGRESS', where);
            assert.equal(seen['workerId'], spec.workerId, where);
          }
          break;
        }
        case 'job-stop':
          if (record.status === 204) {
            assert.equal(res.status, 204, `${where}: nothing to stop ⇒ 204 after the hold (got ${res.status} ${res.body})`);
          } else {
            assert.equal(res.status, 200, where);
            const stops = (record.response as { jobsToStop: string[] }).jobsToStop.map((id) => mapId(id, where));
            assert.deepEqual(JSON.parse(res.body), { jobsToStop: stops }, where);
          }
          break;
        case 'ping':
          assert.equal(res.status, 200, `${where}: ${res.body}`);
          break;
        case 'job-stream': {
          // Whatever the recording's server answered, the gateway accepts it: 200.
          assert.equal(res.status, 200, `${where}: ${res.body}`);
          unread.set(recordedJob!, [...(unread.get(recordedJob!) ?? []), body!['output']]);
          break;
        }
        case 'job-done': {
          assert.equal(res.status, 200, `${where}: ${res.body} (recorded: ${record.status})`);
          const seen = await statusOf(base, mapId(recordedJob!, where));
          if (!isFinal) {
            // A progress update: the client sees it as `output` while the job runs.
            assert.equal(seen['status'], 'IN_PROGRESS', where);
            assert.deepEqual(seen['output'], body!['output'], where);
          } else if (!finals.has(recordedJob!)) {
            assert.ok(TERMINAL.has(String(seen['status'])), `${where}: terminal after the first result, got ${JSON.stringify(seen)}`);
            finals.set(recordedJob!, seen);
          } else {
            // A repeated result (the SDK retries after a 5xx): accepted, and it changes nothing.
            assert.deepEqual(seen, finals.get(recordedJob!), `${where}: a duplicate result must not change the job`);
          }
          break;
        }
      }
    }

    // --- what a client sees once the worker is done ---
    assert.deepEqual([...ids.keys()].sort(), Object.keys(spec.jobs).sort(), 'the jobs the recording handed out');
    for (const [recorded, want] of Object.entries(spec.jobs)) {
      const seen = await statusOf(base, mapId(recorded, file));
      const where = `${file}: job ${recorded}`;
      assert.equal(seen['status'], want.status, `${where}: ${JSON.stringify(seen)}`);
      assert.equal(seen['workerId'], spec.workerId, where);
      if (want.output === undefined) assert.ok(!Object.hasOwn(seen, 'output'), `${where}: no output expected, got ${JSON.stringify(seen)}`);
      else assert.deepEqual(seen['output'], want.output, where);
      if (want.error === undefined) assert.ok(!Object.hasOwn(seen, 'error'), `${where}: no error expected, got ${JSON.stringify(seen)}`);
      else if (typeof want.error === 'string') assert.equal(seen['error'], want.error, where);
      else {
        assert.equal(typeof seen['error'], 'string', `${where}: error is a string`);
        want.error(String(seen['error']));
      }
      if (want.status !== 'CANCELLED') {
        assert.equal(typeof seen['delayTime'], 'number', where);
        assert.equal(typeof seen['executionTime'], 'number', where);
      }
      // Streams: after the result, /stream hands out what was left, then reports the terminal status.
      if (spec.chunks?.[recorded] !== undefined || (unread.get(recorded)?.length ?? 0) > 0) {
        await readStream(recorded, (s) => s === want.status, `${where} (after the result)`);
        assert.deepEqual(read.get(recorded), spec.chunks?.[recorded] ?? [], `${where}: every chunk, in order, each once`);
      }
    }
    const health = await client(base, 'GET', 'health');
    const jobs = health.json['jobs'] as Record<string, number>;
    assert.equal(jobs['inQueue'], 0, `${file}: nothing left in the queue`);
    assert.equal(jobs['inProgress'], 0, `${file}: nothing left running`);
    assert.deepEqual(
      gateway.registry.list(ENDPOINT).map((w) => w.workerId),
      [spec.workerId],
      `${file}: no worker was spawned besides the replayed one`,
    );
    spec.after?.(gateway, records);
  } finally {
    await stopGateway(entry);
  }
}

test('every recorded exchange has a replay spec', () => {
  assert.deepEqual(fixtureFiles(), Object.keys(SPECS).sort());
});

for (const [file, spec] of Object.entries(SPECS)) {
  test(`replay ${file}: the gateway answers the real worker's requests, and clients see its results`, async () => {
    await replay(file, spec);
  });
}
