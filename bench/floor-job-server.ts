/**
 * The floors the gateway benchmarks are divided by: an in-memory job server on bare `node:http`
 * (no store, no hono, nothing persisted) that speaks the gateway's worker API to the same no-op
 * worker processes, queues `POST /v2/{endpoint}/run`, and relays `POST /v2/{endpoint}/runsync`
 * through the workers (answered when the job's job-done arrives).
 *
 * Worker routes as the gateway answers them (`packages/gateway/src/worker-api.ts`): job-take and
 * job-take-batch hand out queued jobs (each to exactly one take) or are held up to `holdMs` and then
 * answered 204; job-done from the worker that took the job completes it; job-stop is held and
 * answered 204; ping and job-stream answer `{}`; the worker's token is checked. Queued jobs wake
 * every parked take; {@link FloorJobServer.hold} parks every take until `release()`, as the gateway
 * benchmark's gate on claims does.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a take hands to a worker. */
export interface FloorJob {
  id: string;
  input: unknown;
}

/** Requests answered per route, and takes by outcome. */
export interface FloorCounts {
  take: number;
  'take-batch': number;
  done: number;
  stop: number;
  ping: number;
  stream: number;
  run: number;
  runsync: number;
  other: number;
  /** Take answers carrying jobs, and takes answered 204. */
  takesWithJobs: number;
  emptyTakes: number;
  /** job-done posts for a job the worker did not hold (a bug in a floor run). */
  ignoredDone: number;
}

/** Options of {@link FloorJobServer}. */
export interface FloorJobServerOptions {
  /** Endpoint name in the URLs (the gateway bench's, so paths have the same length). */
  endpoint: string;
  /** How long an empty job-take / job-stop is held before 204 (the gateway's `takeHoldMs`). */
  holdMs: number;
}

interface ParkedTake {
  workerId: string;
  /** Jobs this take may carry; null for job-take (one job, answered as an object). */
  batchSize: number | null;
  res: http.ServerResponse;
  timer: NodeJS.Timeout;
}

const MAX_BATCH_SIZE = 100;

/**
 * An in-memory RunPod job server with a `/runsync` relay, for floors measured beside the gateway.
 *
 * @example
 * const server = new FloorJobServer({ endpoint: 'noop', holdMs: 30_000 });
 * await server.start();
 * spawn(node, [workerBundle], { env: { ...server.workerEnv(server.addWorker(), 10_000) } });
 * server.enqueue([{ id: 'j1', input: {} }]);
 */
export class FloorJobServer {
  readonly counts: FloorCounts = { take: 0, 'take-batch': 0, done: 0, stop: 0, ping: 0, stream: 0, run: 0, runsync: 0, other: 0, takesWithJobs: 0, emptyTakes: 0, ignoredDone: 0 };
  /** Jobs completed through job-done since the last {@link resetCounts}. */
  finished = 0;
  readonly #options: FloorJobServerOptions;
  readonly #tokens = new Map<string, string>();
  #queue: FloorJob[] = [];
  #parked: ParkedTake[] = [];
  readonly #heldStops = new Set<{ res: http.ServerResponse; timer: NodeJS.Timeout }>();
  /** Job id → the worker holding it. */
  readonly #taken = new Map<string, string>();
  /** Job id → the `/runsync` client waiting for it. */
  readonly #syncWaiters = new Map<string, http.ServerResponse>();
  #onFinish: ((finished: number) => void) | undefined;
  #server: http.Server | undefined;
  #baseUrl = '';
  #ids = 0;
  #held = false;

  constructor(options: FloorJobServerOptions) {
    this.#options = options;
  }

  /** Listens on an ephemeral loopback port; resolves with the base URL. */
  async start(): Promise<string> {
    const server = http.createServer((req, res) => this.#handle(req, res));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.#baseUrl;
  }

  /** Answers nothing more, drops every connection and closes the server. */
  async stop(): Promise<void> {
    for (const take of this.#parked) clearTimeout(take.timer);
    for (const held of this.#heldStops) clearTimeout(held.timer);
    this.#parked = [];
    this.#heldStops.clear();
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** `POST` here for a relayed runsync. */
  get runsyncUrl(): URL {
    return new URL(`${this.#baseUrl}/v2/${this.#options.endpoint}/runsync`);
  }

  /** `POST` here to queue a job. */
  get runUrl(): URL {
    return new URL(`${this.#baseUrl}/v2/${this.#options.endpoint}/run`);
  }

  /** Registers a worker (id and token, as the gateway's registry does); returns its id. */
  addWorker(): string {
    const workerId = `${this.#options.endpoint}-${randomBytes(4).toString('hex')}`;
    this.#tokens.set(workerId, randomBytes(24).toString('base64url'));
    return workerId;
  }

  /** The RUNPOD_* variables the gateway gives a worker it spawns (`Gateway#spawn`), pointing here. */
  workerEnv(workerId: string, pingIntervalMs: number): Record<string, string> {
    const base = `${this.#baseUrl}/v2/${this.#options.endpoint}`;
    return {
      RUNPOD_WEBHOOK_GET_JOB: `${base}/job-take/${workerId}?gpu=local`,
      RUNPOD_WEBHOOK_POST_OUTPUT: `${base}/job-done/${workerId}/$ID?gpu=local`,
      RUNPOD_WEBHOOK_POST_STREAM: `${base}/job-stream/${workerId}/$ID?gpu=local`,
      RUNPOD_WEBHOOK_PING: `${base}/ping/${workerId}`,
      RUNPOD_AI_API_KEY: this.#tokens.get(workerId) ?? '',
      RUNPOD_POD_ID: workerId,
      RUNPOD_POD_HOSTNAME: workerId,
      RUNPOD_ENDPOINT_ID: this.#options.endpoint,
      RUNPOD_PING_INTERVAL: String(pingIntervalMs),
      RUNPOD_SKIP_AUTO_SYSTEM_CHECKS: 'true',
    };
  }

  /** Distinct workers with a job-take parked right now. */
  get parkedWorkers(): number {
    return new Set(this.#parked.map((t) => t.workerId)).size;
  }

  /** Jobs queued and not yet taken. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Queues jobs and answers parked takes, oldest first, while jobs remain (unless held). */
  enqueue(jobs: readonly FloorJob[]): void {
    for (const job of jobs) this.#queue.push(job);
    this.#dispatch();
  }

  /** Parks every job-take from now on, jobs queued or not, until {@link release}. */
  hold(): void {
    this.#held = true;
  }

  /** Hands queued jobs to the parked takes and lets later takes through. */
  release(): void {
    this.#held = false;
    this.#dispatch();
  }

  /** Zeroes the request counts and {@link finished}. */
  resetCounts(): void {
    for (const key of Object.keys(this.counts) as (keyof FloorCounts)[]) this.counts[key] = 0;
    this.finished = 0;
  }

  /** Calls `listener` synchronously each time a job is completed (with {@link finished}). */
  onFinish(listener: ((finished: number) => void) | undefined): void {
    this.#onFinish = listener;
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '';
    const queryAt = url.indexOf('?');
    const parts = (queryAt === -1 ? url : url.slice(0, queryAt)).split('/');
    // ['', 'v2', endpoint, route, workerId?, jobId?]
    const route = parts[3];
    if (parts[1] !== 'v2' || parts[2] !== this.#options.endpoint) return this.#reply(res, 404, { error: 'not found' });
    if ((route === 'run' || route === 'runsync') && req.method === 'POST' && parts.length === 4) {
      this.counts[route]++;
      readBody(req, (text) => this.#submit(res, text, route === 'runsync'));
      return;
    }
    const workerId = parts[4] ?? '';
    const token = this.#tokens.get(workerId);
    if (token === undefined || req.headers.authorization !== token) return this.#reply(res, 401, { error: 'invalid or missing token' });
    const query = new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1));
    switch (route) {
      case 'job-take':
        this.counts.take++;
        return this.#take(res, workerId, null);
      case 'job-take-batch': {
        this.counts['take-batch']++;
        const size = Number(query.get('batch_size') ?? '1');
        return this.#take(res, workerId, Number.isInteger(size) && size >= 1 ? Math.min(size, MAX_BATCH_SIZE) : 1);
      }
      case 'job-done':
        this.counts.done++;
        readBody(req, (text) => this.#done(res, workerId, decodeURIComponent(parts[5] ?? ''), text));
        return;
      case 'job-stream':
        this.counts.stream++;
        readBody(req, () => this.#reply(res, 200, {}));
        return;
      case 'job-stop':
        this.counts.stop++;
        return this.#holdStop(res);
      case 'ping':
        this.counts.ping++;
        return this.#reply(res, 200, {});
      default:
        this.counts.other++;
        return this.#reply(res, 404, { error: 'not found' });
    }
  }

  #dispatch(): void {
    while (!this.#held && this.#queue.length > 0 && this.#parked.length > 0) {
      const take = this.#parked.shift()!;
      clearTimeout(take.timer);
      if (!take.res.destroyed) this.#answerTake(take.res, take.workerId, take.batchSize);
    }
  }

  #take(res: http.ServerResponse, workerId: string, batchSize: number | null): void {
    if (!this.#held && this.#queue.length > 0) return this.#answerTake(res, workerId, batchSize);
    const take: ParkedTake = {
      workerId,
      batchSize,
      res,
      timer: setTimeout(() => {
        this.#parked = this.#parked.filter((t) => t !== take);
        this.counts.emptyTakes++;
        res.writeHead(204).end();
      }, this.#options.holdMs),
    };
    this.#parked.push(take);
    // A worker that hangs up is never handed a job.
    res.once('close', () => {
      if (res.writableFinished) return;
      clearTimeout(take.timer);
      this.#parked = this.#parked.filter((t) => t !== take);
    });
  }

  #answerTake(res: http.ServerResponse, workerId: string, batchSize: number | null): void {
    const jobs = this.#queue.splice(0, batchSize ?? 1);
    for (const job of jobs) this.#taken.set(job.id, workerId);
    this.counts.takesWithJobs++;
    this.#reply(res, 200, batchSize === null ? jobs[0] : jobs);
  }

  #done(res: http.ServerResponse, workerId: string, jobId: string, text: string): void {
    let post: { output?: unknown; error?: unknown; status?: unknown };
    try {
      post = JSON.parse(text) as typeof post;
    } catch {
      return this.#reply(res, 400, { error: 'body: must be JSON' });
    }
    if (post.status === 'IN_PROGRESS') return this.#reply(res, 200, {});
    // Only the worker that took the job completes it, once (the gateway's finish() transition).
    if (this.#taken.get(jobId) !== workerId) {
      this.counts.ignoredDone++;
      return this.#reply(res, 200, {});
    }
    this.#taken.delete(jobId);
    const client = this.#syncWaiters.get(jobId);
    if (client) {
      this.#syncWaiters.delete(jobId);
      const failed = post.error !== undefined && post.error !== null;
      this.#reply(client, 200, failed ? { id: jobId, status: 'FAILED', error: post.error } : { id: jobId, status: 'COMPLETED', output: post.output ?? null });
    }
    this.finished++;
    this.#onFinish?.(this.finished);
    this.#reply(res, 200, {});
  }

  /** `/run` answers at once; `/runsync` when the job's job-done arrives. */
  #submit(res: http.ServerResponse, text: string, sync: boolean): void {
    let request: { input?: unknown };
    try {
      request = JSON.parse(text) as typeof request;
    } catch {
      return this.#reply(res, 400, { error: 'body: must be JSON' });
    }
    const id = sync ? `sync-${++this.#ids}` : `run-${++this.#ids}`;
    if (sync) {
      this.#syncWaiters.set(id, res);
      res.once('close', () => this.#syncWaiters.delete(id));
    }
    this.enqueue([{ id, input: request.input ?? null }]);
    if (!sync) this.#reply(res, 200, { id, status: 'IN_QUEUE' });
  }

  #holdStop(res: http.ServerResponse): void {
    const held = {
      res,
      timer: setTimeout(() => {
        this.#heldStops.delete(held);
        res.writeHead(204).end();
      }, this.#options.holdMs),
    };
    this.#heldStops.add(held);
    res.once('close', () => {
      clearTimeout(held.timer);
      this.#heldStops.delete(held);
    });
  }

  #reply(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  }
}

function readBody(req: http.IncomingMessage, then: (text: string) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => then(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
}
