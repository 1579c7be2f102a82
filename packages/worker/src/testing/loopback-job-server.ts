/**
 * A loopback stand-in for RunPod's worker-facing job API (PROTOCOL.md §1), for tests and benchmarks
 * of workers. RunPod's real job server cannot run on this machine; this one follows the recorded
 * behaviour of the platform (fixtures/runpod-python-exchange): long-polled job-take and job-stop
 * that answer 204 when empty, job-done / job-stream that accept JSON under any content type, and
 * progress arriving through job-done with `status: IN_PROGRESS`. It records every request.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

/** One request as the server saw it (the fixture files' shape). */
export interface RecordedRequest {
  /** `performance.timeOrigin + performance.now()` at arrival. */
  t: number;
  method: string;
  path: string;
  query: Record<string, string>;
  rawQuery: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Status the server answered (set once answered). */
  status?: number;
  /** What the server answered (JSON), if anything. */
  response?: unknown;
  /** When the answer was fully written (same time base as `t`). */
  answeredAt?: number;
}

/** The route a worker-API request was for. */
export type JobApiRoute = 'take' | 'take-batch' | 'done' | 'stream' | 'stop' | 'ping';

/** A canned answer for the next request on a route (fault injection). */
export interface CannedAnswer {
  status: number;
  body?: string;
  contentType?: string;
}

/** A job as queued on the fake platform. */
export interface QueuedJob {
  id: string;
  input: unknown;
  [key: string]: unknown;
}

/** Options of {@link LoopbackJobServer}. */
export interface LoopbackJobServerOptions {
  /** How long an empty job-take / job-stop is held before 204. Default 1000 ms. */
  holdMs?: number;
  /** Endpoint id in the URLs. Default `ep-test`, as in the fixtures. */
  endpointId?: string;
  /** Keep every request (default) or only count them (benchmarks). */
  record?: boolean;
}


/**
 * A fake RunPod job server on 127.0.0.1.
 *
 * @example
 * const server = new LoopbackJobServer();
 * await server.start();
 * server.enqueue({ id: 'job-1', input: { prompt: 'hi' } });
 * spawn('node', ['worker.js'], { env: { ...server.workerEnv('w1') } });
 * const result = await server.waitForResult('job-1');
 */
export class LoopbackJobServer {
  readonly requests: RecordedRequest[] = [];
  readonly #queue: QueuedJob[] = [];
  readonly #stops: string[] = [];
  readonly #canned = new Map<JobApiRoute, CannedAnswer[]>();
  readonly #takeWaiters = new Set<() => void>();
  readonly #stopWaiters = new Set<() => void>();
  readonly #requestWaiters = new Set<() => void>();
  readonly #results = new Map<string, { body: unknown; isStream: boolean; at: number }>();
  readonly #options: Required<LoopbackJobServerOptions>;
  #server: http.Server | undefined;
  #baseUrl = '';
  /** Requests served per route, counted even when not recording. */
  readonly counts: Record<JobApiRoute | 'other', number> = { take: 0, 'take-batch': 0, done: 0, stream: 0, stop: 0, ping: 0, other: 0 };

  constructor(options: LoopbackJobServerOptions = {}) {
    this.#options = { holdMs: options.holdMs ?? 1000, endpointId: options.endpointId ?? 'ep-test', record: options.record ?? true };
  }

  /** Listens on an ephemeral loopback port; resolves with the base URL. */
  async start(): Promise<string> {
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.#baseUrl = `http://127.0.0.1:${port}`;
    return this.#baseUrl;
  }

  /** Closes the server and every open connection. */
  async stop(): Promise<void> {
    for (const wake of [...this.#takeWaiters, ...this.#stopWaiters]) wake();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  /** The RunPod environment a worker needs to talk to this server (the fixtures' shape, PROTOCOL.md §1.1). */
  workerEnv(workerId = 'worker-abc123', options: { pingIntervalMs?: number; apiKey?: string; gpu?: string } = {}): Record<string, string> {
    const base = `${this.#baseUrl}/v2/${this.#options.endpointId}`;
    const GPU_QUERY = `gpu=${encodeURIComponent(options.gpu ?? 'NVIDIA H100 80GB HBM3').replaceAll('%20', '+')}`;
    return {
      RUNPOD_WEBHOOK_GET_JOB: `${base}/job-take/$ID?${GPU_QUERY}`,
      RUNPOD_WEBHOOK_POST_OUTPUT: `${base}/job-done/$RUNPOD_POD_ID/$ID?${GPU_QUERY}`,
      RUNPOD_WEBHOOK_POST_STREAM: `${base}/job-stream/$RUNPOD_POD_ID/$ID?${GPU_QUERY}`,
      RUNPOD_WEBHOOK_PING: `${base}/ping/$RUNPOD_POD_ID`,
      RUNPOD_AI_API_KEY: options.apiKey ?? 'test-ai-key',
      RUNPOD_POD_ID: workerId,
      RUNPOD_ENDPOINT_ID: this.#options.endpointId,
      RUNPOD_PING_INTERVAL: String(options.pingIntervalMs ?? 2000),
      RUNPOD_SKIP_AUTO_SYSTEM_CHECKS: 'true',
    };
  }

  /** Queues jobs; a held job-take is answered at once. */
  enqueue(...jobs: QueuedJob[]): void {
    this.#queue.push(...jobs);
    this.#wakeOne(this.#takeWaiters);
  }

  /** Makes the next job-stop poll (or the one being held) answer `{"jobsToStop":[…ids]}`. */
  stopJobs(...ids: string[]): void {
    this.#stops.push(...ids);
    this.#wakeOne(this.#stopWaiters);
  }

  /** Answers the next request on `route` with `answer` instead of the normal behaviour. */
  cannedAnswer(route: JobApiRoute, ...answers: CannedAnswer[]): void {
    const list = this.#canned.get(route) ?? [];
    list.push(...answers);
    this.#canned.set(route, list);
  }

  /** Job-take requests being held right now (a stopped worker's aborted take stays here until its socket close is seen). */
  get heldTakes(): number {
    return this.#takeWaiters.size;
  }

  /** Forgets recorded requests, results, queued jobs and canned answers (between scenarios on one server). */
  reset(): void {
    this.requests.length = 0;
    this.#results.clear();
    this.#queue.length = 0;
    this.#stops.length = 0;
    this.#canned.clear();
  }

  /** Jobs still queued. */
  get queued(): number {
    return this.#queue.length;
  }

  /** The final done body for a job, once it arrived. */
  result(jobId: string): { body: unknown; isStream: boolean; at: number } | undefined {
    return this.#results.get(jobId);
  }

  /** Number of final results received. */
  get resultCount(): number {
    return this.#results.size;
  }

  /** Resolves with the final done body for `jobId`. */
  async waitForResult(jobId: string, timeoutMs = 10_000): Promise<{ body: unknown; isStream: boolean; at: number }> {
    await this.waitFor(() => this.#results.has(jobId), timeoutMs, `result of ${jobId}`);
    return this.#results.get(jobId)!;
  }

  /** Resolves when `predicate` holds (checked on every request), or rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    return new Promise((resolve, reject) => {
      if (predicate()) return resolve();
      const timer = setTimeout(() => {
        this.#requestWaiters.delete(check);
        clearInterval(poll);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      // Checked on every request, and also every few ms for conditions the worker changes between requests.
      const poll = setInterval(() => check(), 5);
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        clearInterval(poll);
        this.#requestWaiters.delete(check);
        resolve();
      };
      this.#requestWaiters.add(check);
    });
  }

  /** Recorded requests on one route. */
  on(route: JobApiRoute): RecordedRequest[] {
    return this.requests.filter((r) => routeOf(r.path) === route);
  }

  #wakeOne(set: Set<() => void>): void {
    const first = set.values().next();
    if (!first.done) first.value();
  }

  #notify(): void {
    for (const check of [...this.#requestWaiters]) check();
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', this.#baseUrl);
      const record: RecordedRequest = {
        t: performance.timeOrigin + performance.now(),
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        rawQuery: url.search,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      const route = routeOf(url.pathname);
      this.counts[route ?? 'other']++;
      if (this.#options.record) this.requests.push(record);
      const answer = (status: number, body?: unknown) => {
        record.status = status;
        if (body !== undefined) record.response = body;
        const text = body === undefined ? '' : JSON.stringify(body);
        res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text, () => {
          record.answeredAt = performance.timeOrigin + performance.now();
          this.#notify();
        });
      };
      const canned = route ? this.#canned.get(route)?.shift() : undefined;
      if (canned) {
        record.status = canned.status;
        res.writeHead(canned.status, canned.contentType ? { 'content-type': canned.contentType } : {});
        res.end(canned.body ?? '', () => this.#notify());
        return;
      }
      switch (route) {
        case 'take':
        case 'take-batch': {
          const size = route === 'take' ? 1 : Math.max(1, Number(url.searchParams.get('batch_size') ?? '1'));
          this.#hold(req, res, this.#takeWaiters, () => this.#queue.length > 0, () => {
            if (this.#queue.length === 0) return answer(204);
            const jobs = this.#queue.splice(0, size);
            answer(200, route === 'take' ? jobs[0] : jobs);
          });
          return;
        }
        case 'stop':
          this.#hold(req, res, this.#stopWaiters, () => this.#stops.length > 0, () => {
            if (this.#stops.length === 0) return answer(204);
            answer(200, { jobsToStop: this.#stops.splice(0) });
          });
          return;
        case 'done': {
          const jobId = decodeURIComponent(url.pathname.split('/').pop() ?? '');
          let parsed: unknown;
          try {
            parsed = JSON.parse(record.body);
          } catch {
            return answer(400, { error: 'body: must be JSON' });
          }
          const isProgress = typeof parsed === 'object' && parsed !== null && (parsed as Record<string, unknown>)['status'] === 'IN_PROGRESS';
          if (!isProgress && !this.#results.has(jobId)) {
            this.#results.set(jobId, { body: parsed, isStream: url.searchParams.get('isStream') === 'true', at: record.t });
          }
          return answer(200, {});
        }
        case 'stream':
        case 'ping':
          return answer(200, {});
        default:
          return answer(404, { error: `no route ${url.pathname}` });
      }
    });
  }

  /** Holds a long-poll until `ready()` or the hold time passes; a client that leaves is never answered. */
  #hold(req: http.IncomingMessage, res: http.ServerResponse, waiters: Set<() => void>, ready: () => boolean, reply: () => void): void {
    if (ready()) return reply();
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      waiters.delete(finish);
      res.off('close', onClose);
      // (`req` is already destroyed here: a fully read request auto-destroys. The response tells.)
      if (!res.destroyed && !res.writableEnded) reply();
      else this.#wakeOne(waiters);
    };
    const onClose = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      waiters.delete(finish);
    };
    const timer = setTimeout(finish, this.#options.holdMs);
    waiters.add(finish);
    res.on('close', onClose);
  }
}

function routeOf(pathname: string): JobApiRoute | undefined {
  const m = /\/(job-take-batch|job-take|job-done|job-stream|job-stop|ping)\//.exec(pathname);
  switch (m?.[1]) {
    case 'job-take':
      return 'take';
    case 'job-take-batch':
      return 'take-batch';
    case 'job-done':
      return 'done';
    case 'job-stream':
      return 'stream';
    case 'job-stop':
      return 'stop';
    case 'ping':
      return 'ping';
    default:
      return undefined;
  }
}
