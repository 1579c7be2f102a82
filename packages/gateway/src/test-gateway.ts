import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Hono } from 'hono';
import { ManualClock, type ModelsResponse, type ModelView } from '@kiln/protocol';
import { parseConfig } from './config.ts';
import { UnknownModelError } from './errors.ts';
import { createHttpApp, createNodeRequestListener } from './http-app.ts';
import type { GatewayContext } from './http-app.ts';
import { JobEvents } from './job-events.ts';
import type { JobStore } from './job-store.ts';
import { openSqliteStore } from './sqlite-store.ts';
import { MetricsSampler } from './metrics-sampler.ts';
import type { ModelsAccess } from './models-access.ts';
import { WorkerRegistry } from './worker-registry.ts';
import { WorkerSchemas } from './worker-schema.ts';

/** The API key the default test config accepts. */
export const TEST_API_KEY = 'test-key';

/** One captured log call. */
export interface CapturedLog {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields: object | undefined;
}

/** Options of {@link createTestGateway}. */
export interface TestGatewayOptions {
  /** Raw `kiln.config.json` value; default: endpoint `echo` and API key {@link TEST_API_KEY}. */
  config?: unknown;
  /** Environment given to the config parser (secrets, KILN_API_KEYS). */
  env?: Record<string, string | undefined>;
  /**
   * How `request` reaches the gateway: `app` (default) calls `app.request` in process; `socket`
   * sends real HTTP to a loopback server running `createNodeRequestListener`, the gateway's own
   * listener (worker calls on node:http directly, the rest through hono).
   */
  transport?: 'app' | 'socket';
  /** The models volume the admin API shows (absent: its routes answer 404). */
  models?: ModelsAccess;
  /** The built dashboard's folder. */
  dashboardDir?: string;
}

/** Body and headers of a test request. */
export interface TestRequestInit {
  method?: string;
  /** Serialised as JSON, `content-type: application/json`. */
  json?: unknown;
  /** Sent as is. */
  body?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A registered worker and the calls a RunPod worker SDK makes, with its token (sent raw, as runpod-python does). */
export interface TestWorker {
  readonly workerId: string;
  readonly endpoint: string;
  readonly token: string;
  /** `GET job-take/{workerId}?gpu=G&job_in_progress=0`. */
  take(init?: { signal?: AbortSignal }): Promise<Response>;
  /** `GET job-take-batch/{workerId}?gpu=G&batch_size=N&job_in_progress=0`. */
  takeBatch(size: number, init?: { signal?: AbortSignal }): Promise<Response>;
  /** `POST job-done/{workerId}/{jobId}`: JSON text labelled x-www-form-urlencoded, as the SDK sends it. */
  done(jobId: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** `POST job-stream/{workerId}/{jobId}` with `{ output }`. */
  stream(jobId: string, output: unknown): Promise<Response>;
  /** `GET job-stop/{workerId}?gpu=G`. */
  stop(init?: { signal?: AbortSignal }): Promise<Response>;
  /** `GET ping/{workerId}?{query}`. */
  ping(query?: string): Promise<Response>;
}

/** A gateway app on a temp SQLite store and a manual clock, for in-process tests. */
export interface TestGateway {
  readonly app: Hono;
  readonly ctx: GatewayContext;
  readonly clock: ManualClock;
  readonly store: JobStore;
  readonly registry: WorkerRegistry;
  readonly events: JobEvents;
  /** The metrics sampler in `ctx` (not started: call `sample()` or `start()`). */
  readonly metrics: MetricsSampler;
  /** Temp folder holding the SQLite file; removed by `close()`. */
  readonly dir: string;
  readonly logs: CapturedLog[];
  /** `app.request` without auth. */
  request(path: string, init?: TestRequestInit): Promise<Response>;
  /** A client API call with `Authorization: Bearer <TEST_API_KEY>`; `path` is under `/v2/{endpoint}/`. */
  client(path: string, init?: TestRequestInit, endpoint?: string): Promise<Response>;
  /** Submits `/run` and returns the job id. */
  run(input: unknown, extra?: Record<string, unknown>, endpoint?: string): Promise<string>;
  /** Registers a worker in the registry and returns its SDK calls. */
  addWorker(options?: { endpoint?: string; workerId?: string }): TestWorker;
  close(): Promise<void>;
}

const DEFAULT_CONFIG = {
  endpoints: { echo: { worker: { command: 'node worker.js' } } },
  gateway: { apiKeys: [TEST_API_KEY] },
};

/**
 * Builds the gateway's HTTP app on a fresh SQLite file with a `ManualClock`.
 *
 * @example
 * const gw = await createTestGateway();
 * try {
 *   const id = await gw.run({ a: 1 });
 *   const worker = gw.addWorker();
 *   assert.equal((await (await worker.take()).json()).id, id);
 * } finally {
 *   await gw.close();
 * }
 */
export async function createTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-gateway-test-'));
  const config = parseConfig(options.config ?? DEFAULT_CONFIG, { baseDir: dir, env: options.env ?? {} });
  const clock = new ManualClock();
  const store = await openSqliteStore({ path: path.join(dir, 'kiln.db') });
  await store.migrate();
  const registry = new WorkerRegistry({ clock });
  const events = new JobEvents({ clock });
  const logs: CapturedLog[] = [];
  const capture = (level: CapturedLog['level']) => (message: string, fields?: object) => void logs.push({ level, message, fields });
  const metrics = new MetricsSampler({ store, endpoints: Object.keys(config.endpoints), listWorkers: (endpoint) => registry.list(endpoint), clock });
  const schemas = new WorkerSchemas({ config, clock });
  const ctx: GatewayContext = {
    config,
    store,
    clock,
    workers: registry,
    workerCounts: (endpoint) => registry.counts(endpoint),
    listWorkers: (endpoint) => registry.list(endpoint),
    events,
    log: { info: capture('info'), warn: capture('warn'), error: capture('error') },
    metrics,
    schemas,
    ...(options.models ? { models: options.models } : {}),
    ...(options.dashboardDir === undefined ? {} : { dashboardDir: options.dashboardDir }),
  };
  const app = createHttpApp(ctx);
  const server = options.transport === 'socket' ? await listenOnLoopback(createNodeRequestListener(ctx, app)) : undefined;
  const firstEndpoint = Object.keys(config.endpoints)[0] ?? 'echo';
  let workers = 0;

  const request = (url: string, init: TestRequestInit = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    let body = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers['content-type'] ??= 'application/json';
    }
    const requestInit: RequestInit = {
      method: init.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      ...(body !== undefined ? { body } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    };
    return server ? fetch(new URL(url, server.url), requestInit) : Promise.resolve(app.request(url, requestInit));
  };

  const client = (url: string, init: TestRequestInit = {}, endpoint = firstEndpoint) =>
    request(`/v2/${endpoint}/${url}`, { ...init, headers: { authorization: `Bearer ${TEST_API_KEY}`, ...init.headers } });

  return {
    app,
    ctx,
    clock,
    store,
    registry,
    events,
    metrics,
    dir,
    logs,
    request,
    client,
    async run(input, extra = {}, endpoint = firstEndpoint) {
      const res = await client('run', { json: { input, ...extra } }, endpoint);
      const body = (await res.json()) as { id?: string };
      if (res.status !== 200 || typeof body.id !== 'string') throw new Error(`/run failed: ${res.status} ${JSON.stringify(body)}`);
      return body.id;
    },
    addWorker({ endpoint = firstEndpoint, workerId = `worker-${++workers}` } = {}) {
      const token = `token-${workerId}`;
      registry.register({ workerId, endpoint, token });
      const base = `/v2/${endpoint}`;
      const auth = { authorization: token };
      const get = (url: string, signal?: AbortSignal) => request(url, { headers: auth, ...(signal ? { signal } : {}) });
      const post = (url: string, body: string, headers: Record<string, string>) =>
        request(url, { method: 'POST', body, headers: { ...auth, ...headers } });
      return {
        workerId,
        endpoint,
        token,
        take: (init) => get(`${base}/job-take/${workerId}?gpu=G&job_in_progress=0`, init?.signal),
        takeBatch: (size, init) => get(`${base}/job-take-batch/${workerId}?gpu=G&batch_size=${size}&job_in_progress=0`, init?.signal),
        done: (jobId, body, headers = {}) =>
          post(`${base}/job-done/${workerId}/${jobId}?gpu=G&isStream=false`, JSON.stringify(body), {
            'content-type': 'application/x-www-form-urlencoded',
            charset: 'utf-8',
            'x-request-id': jobId,
            ...headers,
          }),
        stream: (jobId, output) =>
          post(`${base}/job-stream/${workerId}/${jobId}?gpu=G&isStream=false`, JSON.stringify({ output }), {
            'content-type': 'application/x-www-form-urlencoded',
          }),
        stop: (init) => get(`${base}/job-stop/${workerId}?gpu=G`, init?.signal),
        ping: (query = '') => get(`${base}/ping/${workerId}${query === '' ? '' : `?${query}`}`),
      };
    },
    async close() {
      schemas.close();
      await metrics.stop();
      await server?.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function listenOnLoopback(listener: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('test server has no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A models volume with one model, `tiny`, whose pull only records that it was asked for (any other
 * name: `UnknownModelError`); `emit` sends a model view to the subscribers, `listeners` counts them.
 */
export function fakeModels(): ModelsAccess & { pulls: string[]; emit(model: ModelView): void; readonly listeners: number } {
  const tiny: ModelView = { name: 'tiny', source: 'hf:org/tiny', status: 'missing', files: 0, bytes: 0, totalBytes: null, pull: null, error: null };
  const listeners = new Set<(model: ModelView) => void>();
  const pulls: string[] = [];
  return {
    pulls,
    get listeners() {
      return listeners.size;
    },
    emit: (model) => listeners.forEach((l) => l(model)),
    list: async (): Promise<ModelsResponse> => ({ volume: '/vol/models', models: [tiny] }),
    pull: async (name) => {
      if (name !== 'tiny') throw new UnknownModelError(name);
      pulls.push(name);
      return { ...tiny, pull: { doneBytes: 0, totalBytes: null } };
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}
