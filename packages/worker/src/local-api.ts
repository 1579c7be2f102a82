import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CLIENT_LIMITS,
  isTerminalState,
  parseRunRequest,
  ProtocolParseError,
  type JobState,
  type RunResponse,
  type StatusObject,
} from '@kiln/protocol';
import type { KilnWorker } from './define-worker.ts';
import { startJob, type RunningJob } from './job-runner.ts';
import type { LocalDeps } from './local-test.ts';

/** How long `/stream/{id}` holds a request that has nothing new yet. */
export const STREAM_HOLD_MS = 5000;

interface LocalJob {
  id: string;
  input: unknown;
  policy: Record<string, unknown> | undefined;
  status: JobState;
  output?: unknown;
  error?: string;
  chunks: unknown[];
  streamed: number;
  submittedAt: number;
  startedAt?: number;
  endedAt?: number;
  running?: RunningJob;
  retries: number;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * RunPod's endpoint API served by the worker process itself, for a developer with no gateway:
 * `/run` really queues the job and runs it in the background (runpod-python's `--rp_serve_api`
 * only runs it when `/status` is called), with the worker's own concurrency. Routes answer both
 * at `/run` and at `/v2/{endpoint}/run`, so RunPod's clients work with `baseUrl …/v2`.
 */
export class LocalApi {
  readonly #worker: KilnWorker;
  readonly #deps: LocalDeps;
  readonly #jobs = new Map<string, LocalJob>();
  readonly #queue: string[] = [];
  readonly #waiters = new Map<string, Set<() => void>>();
  #server: http.Server | undefined;
  #capacity = 1;
  #runningCount = 0;
  #stopped = false;

  constructor(worker: KilnWorker, deps: LocalDeps) {
    this.#worker = worker;
    this.#deps = deps;
  }

  /** Listens and resolves with the base URL. Runs eager setup in the background. */
  async start(host: string, port: number): Promise<string> {
    if ((this.#worker.definition.load ?? 'eager') === 'eager') void this.#deps.setup.run();
    this.#server = http.createServer((req, res) => void this.#serve(req, res));
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(port, host, () => resolve());
    });
    const address = this.#server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${shownHost}:${address.port}`;
  }

  /** Stops listening and aborts running jobs; queued jobs never start. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const job of this.#jobs.values()) job.running?.abort('shutdown');
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] === 'v2' && parts.length >= 3) parts.splice(0, 2);
    const [op, id] = parts;
    try {
      const method = req.method ?? 'GET';
      let body: unknown;
      if (op === 'run' && method === 'POST') {
        const job = await this.#submit(req, CLIENT_LIMITS.runBodyBytes);
        body = { id: job.id, status: 'IN_QUEUE' } satisfies RunResponse;
      } else if (op === 'runsync' && method === 'POST') {
        const job = await this.#submit(req, CLIENT_LIMITS.runsyncBodyBytes);
        body = await this.#waitTerminal(job.id, this.#waitParam(url));
      } else if (op === 'status' && id) body = this.#status(this.#get(id));
      else if (op === 'status-sync' && id) body = await this.#waitTerminal(this.#get(id).id, this.#waitParam(url));
      else if (op === 'stream' && id) body = await this.#stream(this.#get(id));
      else if (op === 'cancel' && id && method === 'POST') body = this.#cancel(this.#get(id));
      else if (op === 'retry' && id && method === 'POST') body = this.#retry(this.#get(id));
      else if (op === 'purge-queue' && method === 'POST') body = this.#purge();
      else if (op === 'health' && method === 'GET') body = this.#health();
      else throw new HttpError(404, `no route ${method} ${url.pathname}`);
      send(res, 200, body);
    } catch (err) {
      if (err instanceof HttpError) send(res, err.status, { error: err.message });
      else if (err instanceof ProtocolParseError) send(res, 400, { error: err.message, field: err.field });
      else send(res, 500, { error: err instanceof Error ? err.message : String(err) });
    }
  }

  #waitParam(url: URL): number {
    const raw = url.searchParams.get('wait');
    if (raw === null) return CLIENT_LIMITS.runsyncWait.default;
    const n = Number(raw);
    if (!Number.isInteger(n)) throw new HttpError(400, `wait: must be an integer number of milliseconds, got '${raw}'`);
    return Math.min(CLIENT_LIMITS.runsyncWait.max, Math.max(CLIENT_LIMITS.runsyncWait.min, n));
  }

  async #submit(req: http.IncomingMessage, limit: number): Promise<LocalJob> {
    const text = await readBody(req, limit);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'body: must be JSON like {"input": {...}}');
    }
    const run = parseRunRequest(value);
    if (run.webhook) this.#deps.log.warn('webhook ignored: the local API does not deliver webhooks; the kiln gateway does');
    const job: LocalJob = {
      id: `local-${randomUUID()}`,
      input: run.input,
      policy: run.policy ? { ...run.policy } : undefined,
      status: 'IN_QUEUE',
      chunks: [],
      streamed: 0,
      submittedAt: this.#deps.clock.now(),
      retries: 0,
    };
    this.#jobs.set(job.id, job);
    this.#queue.push(job.id);
    this.#dispatch();
    return job;
  }

  #get(id: string): LocalJob {
    const job = this.#jobs.get(id);
    if (!job) throw new HttpError(404, `job ${id} not found`);
    return job;
  }

  #currentCapacity(): number {
    const c = this.#worker.definition.concurrency;
    if (typeof c === 'number') return c;
    if (typeof c === 'function') {
      const next = c(this.#capacity);
      if (Number.isInteger(next) && next >= 1) this.#capacity = next;
    }
    return this.#capacity;
  }

  #dispatch(): void {
    // An aborted job frees its slot after stop(): the queue must not refill it.
    if (this.#stopped) return;
    while (this.#queue.length > 0 && this.#runningCount < this.#currentCapacity()) {
      const job = this.#jobs.get(this.#queue.shift()!);
      if (!job || job.status !== 'IN_QUEUE') continue;
      this.#runningCount++;
      job.status = 'IN_PROGRESS';
      job.startedAt = this.#deps.clock.now();
      job.running = startJob(
        { id: job.id, input: job.input, ...(job.policy ? { policy: job.policy } : {}) },
        {
          definition: this.#worker.definition,
          setup: this.#deps.setup,
          clock: this.#deps.clock,
          log: this.#deps.log,
          origin: this.#deps.origin,
          ...(this.#deps.tmpRoot ? { tmpRoot: this.#deps.tmpRoot } : {}),
          channel: {
            progress: async (value) => {
              if (job.status === 'IN_PROGRESS') job.output = value;
              this.#notify(job.id);
            },
            chunk: async (value) => {
              job.chunks.push(value);
              this.#notify(job.id);
            },
          },
        },
      );
      void job.running.outcome.then((outcome) => {
        this.#runningCount--;
        delete job.running;
        if (job.status === 'IN_PROGRESS') {
          job.endedAt = this.#deps.clock.now();
          if (outcome.kind === 'result') {
            job.status = outcome.timedOut ? 'TIMED_OUT' : outcome.failed ? 'FAILED' : 'COMPLETED';
            if ('output' in outcome.body) job.output = outcome.body.output;
            else delete job.output;
            if (outcome.body.error !== undefined) job.error = outcome.body.error;
          } else {
            job.status = 'CANCELLED';
          }
        }
        this.#notify(job.id);
        this.#dispatch();
      });
    }
  }

  #notify(id: string): void {
    const set = this.#waiters.get(id);
    if (!set) return;
    this.#waiters.delete(id);
    for (const wake of set) wake();
  }

  /** Resolves on the job's next change, or after `ms`. */
  #nextChange(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, (set = new Set()));
      set.add(done);
      function done() {
        clearTimeout(timer);
        set!.delete(done);
        resolve();
      }
    });
  }

  async #waitTerminal(id: string, waitMs: number): Promise<StatusObject | { id: string; status: JobState }> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const job = this.#get(id);
      if (isTerminalState(job.status)) return this.#status(job);
      const left = deadline - Date.now();
      if (left <= 0) return { id: job.id, status: job.status };
      await this.#nextChange(id, left);
    }
  }

  async #stream(job: LocalJob): Promise<unknown> {
    if (job.streamed >= job.chunks.length && !isTerminalState(job.status)) await this.#nextChange(job.id, STREAM_HOLD_MS);
    const fresh = job.chunks.slice(job.streamed).map((output) => ({ output }));
    job.streamed = job.chunks.length;
    return { id: job.id, status: job.status, stream: fresh };
  }

  #status(job: LocalJob): StatusObject {
    const now = this.#deps.clock.now();
    const out: StatusObject = { id: job.id, status: job.status, workerId: this.#deps.origin.workerId };
    if (job.startedAt !== undefined) {
      out.delayTime = job.startedAt - job.submittedAt;
      out.executionTime = (job.endedAt ?? now) - job.startedAt;
    }
    if (job.output !== undefined) out.output = job.output;
    if (job.error !== undefined) out.error = job.error;
    if (job.retries > 0) out.retries = job.retries;
    return out;
  }

  #cancel(job: LocalJob): { id: string; status: JobState } {
    if (job.status === 'IN_QUEUE') {
      job.status = 'CANCELLED';
      job.endedAt = this.#deps.clock.now();
    } else if (job.status === 'IN_PROGRESS') {
      job.status = 'CANCELLED';
      job.endedAt = this.#deps.clock.now();
      job.running?.abort('job-stop');
    }
    this.#notify(job.id);
    return { id: job.id, status: job.status };
  }

  #retry(job: LocalJob): { id: string; status: JobState } {
    if (job.status !== 'FAILED' && job.status !== 'TIMED_OUT') {
      throw new HttpError(400, `job ${job.id} is ${job.status}: only FAILED or TIMED_OUT jobs can be retried`);
    }
    job.status = 'IN_QUEUE';
    job.retries++;
    job.chunks = [];
    job.streamed = 0;
    delete job.output;
    delete job.error;
    delete job.startedAt;
    delete job.endedAt;
    job.submittedAt = this.#deps.clock.now();
    this.#queue.push(job.id);
    this.#dispatch();
    return { id: job.id, status: job.status };
  }

  #purge(): { removed: number; status: 'completed' } {
    let removed = 0;
    for (const id of this.#queue.splice(0)) {
      const job = this.#jobs.get(id);
      if (job?.status === 'IN_QUEUE') {
        job.status = 'CANCELLED';
        removed++;
        this.#notify(id);
      }
    }
    return { removed, status: 'completed' };
  }

  #health(): unknown {
    const count = (s: JobState) => [...this.#jobs.values()].filter((j) => j.status === s).length;
    const setup = this.#deps.setup;
    const unhealthy = setup.state === 'failed' ? 1 : 0;
    const initializing = setup.state === 'running' ? 1 : 0;
    const running = this.#runningCount > 0 && !unhealthy ? 1 : 0;
    return {
      jobs: {
        completed: count('COMPLETED'),
        failed: count('FAILED') + count('TIMED_OUT'),
        inProgress: count('IN_PROGRESS'),
        inQueue: count('IN_QUEUE'),
        retried: [...this.#jobs.values()].reduce((n, j) => n + j.retries, 0),
      },
      workers: {
        idle: unhealthy || initializing || running ? 0 : 1,
        running,
        initializing,
        ready: unhealthy || initializing ? 0 : 1,
        throttled: 0,
        unhealthy,
      },
      setup: { status: setup.state, ...(setup.failure ? { error: setup.failure.message } : {}), ...(setup.durationMs !== undefined ? { setupMs: setup.durationMs } : {}) },
    };
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      return reject(new HttpError(413, `body is ${declared} bytes, over the ${limit}-byte limit of this route`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (size > limit) return;
      size += c.length;
      if (size > limit) {
        // Keep reading (and dropping) the rest: destroying the request would reset the socket before the 413 is sent.
        chunks.length = 0;
        reject(new HttpError(413, `body is over the ${limit}-byte limit of this route`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
