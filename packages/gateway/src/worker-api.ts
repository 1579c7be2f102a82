import { Hono } from 'hono';
import { WORKER_LIMITS, parseDonePost, parsePingQuery, parseStreamBody } from '@kiln/protocol';
import { parseJsonText, readBodyText, retainUntil, tokenFromAuthorization } from './client-api.ts';
import { InvalidRequestError, PayloadTooLargeError, UnauthorizedError } from './errors.ts';
import type { GatewayContext } from './http-app.ts';
import type { JobRecord } from './job-store.ts';

/** Most jobs one job-take-batch hands out. */
export const MAX_BATCH_SIZE = 100;

/** A job as a worker receives it on job-take: what its handler gets verbatim. */
export interface TakenJob {
  id: string;
  input: unknown;
  /** The request's `s3Config`, when it had one (handlers read `job["s3Config"]`). */
  s3Config?: unknown;
  /** Present when the request set `policy.executionTimeout`: the limit the gateway enforces. */
  policy?: { executionTimeout: number };
}

/** What a worker call answers: 204 with no body, or 200 with a JSON body. */
export type WorkerReply = { status: 204 } | { status: 200; body: unknown };

const EMPTY: WorkerReply = { status: 204 };
const OK: WorkerReply = { status: 200, body: {} };

/** The worker routes, as `{route}/{workerId}[/{jobId}]` under `/v2/{endpoint}/`. */
export const WORKER_ROUTES = {
  'job-take': { method: 'GET', withJobId: false },
  'job-take-batch': { method: 'GET', withJobId: false },
  'job-done': { method: 'POST', withJobId: true },
  'job-stream': { method: 'POST', withJobId: true },
  'job-stop': { method: 'GET', withJobId: false },
  ping: { method: 'GET', withJobId: false },
} as const;

/** One of {@link WORKER_ROUTES}. */
export type WorkerRoute = keyof typeof WORKER_ROUTES;

/** A worker call, whatever transport carried it. */
export interface WorkerCall {
  route: WorkerRoute;
  endpoint: string;
  workerId: string;
  /** `job-done` and `job-stream` only. */
  jobId?: string;
  /** The raw `Authorization` header. */
  authorization: string | undefined;
  query: URLSearchParams;
  /** Reads the body as text (POST routes); throws `PayloadTooLargeError` over `limit` bytes. */
  readBody(limit: number): Promise<string>;
  /** Aborts when the worker hangs up (take and stop long-polls watch it). */
  signal: AbortSignal;
}

/**
 * Answers one worker call (PROTOCOL.md §1). Every call needs the worker's own token (raw
 * `Authorization`, as the Python SDK sends it, or `Bearer`). Take and stop long-poll for
 * `gateway.takeHoldMs` and then answer 204. Reports about jobs the worker does not hold
 * (cancelled, timed out, someone else's) are logged and answered 200 `{}`, so SDKs do not retry.
 * Nothing routes on `X-Request-ID` (the SDK sends stale values). Throws the gateway's typed errors.
 */
export async function answerWorkerCall(ctx: GatewayContext, call: WorkerCall): Promise<WorkerReply> {
  const { endpoint, workerId } = call;
  if (!ctx.workers.authenticate(endpoint, workerId, tokenFromAuthorization(call.authorization))) {
    throw new UnauthorizedError(`invalid or missing token for worker ${workerId} of endpoint ${endpoint}`);
  }
  switch (call.route) {
    case 'job-take': {
      const [job] = await takeJobs(ctx, endpoint, workerId, 1, call.signal);
      return job ? { status: 200, body: toTakenJob(job) } : EMPTY;
    }
    case 'job-take-batch': {
      const jobs = await takeJobs(ctx, endpoint, workerId, parseBatchSize(call.query.get('batch_size') ?? undefined), call.signal);
      // The SDK treats `[]` as "no jobs" but then hot-loops; 204 is what RunPod answers.
      return jobs.length === 0 ? EMPTY : { status: 200, body: jobs.map(toTakenJob) };
    }
    case 'job-done':
      return jobDone(ctx, endpoint, workerId, call.jobId ?? '', await readWorkerBody(call));
    case 'job-stream': {
      const jobId = call.jobId ?? '';
      const { output } = parseStreamBody(parseJsonText(await readWorkerBody(call)));
      if (await ctx.store.appendStream(jobId, workerId, [output])) {
        ctx.events.notify(jobId, endpoint);
        await webhookEvent(ctx, endpoint, jobId, 'output', [output]);
      } else ctx.log.warn(`ignored stream chunk for job ${jobId}: worker ${workerId} does not hold it`, { endpoint, jobId, workerId });
      return OK;
    }
    case 'job-stop': {
      const stops = await waitForStops(ctx, workerId, call.signal);
      return stops.length === 0 ? EMPTY : { status: 200, body: { jobsToStop: stops } };
    }
    case 'ping': {
      const query = parsePingQuery(call.query);
      ctx.workers.recordPing(workerId, {
        jobIds: query.jobIds,
        ...(query.status === 'unhealthy' ? { unhealthy: { check: query.check ?? 'unknown', reason: query.reason ?? '' } } : {}),
      });
      return OK;
    }
  }
}

async function jobDone(ctx: GatewayContext, endpoint: string, workerId: string, jobId: string, text: string): Promise<WorkerReply> {
  const post = parseDonePost(normaliseError(parseJsonText(text)));
  if (post.kind === 'progress') {
    if (await ctx.store.progress(jobId, workerId, post.output)) {
      ctx.events.notify(jobId, endpoint);
      await webhookEvent(ctx, endpoint, jobId, 'progress');
    }
    // A late progress post after the result is a known SDK race (runpod-python#250).
    else ctx.log.info(`ignored progress for job ${jobId}: not in progress on worker ${workerId}`, { endpoint, jobId, workerId });
    return OK;
  }
  const result = {
    ...(post.output !== undefined ? { output: post.output } : {}),
    ...(post.error !== undefined ? { error: post.error } : {}),
  };
  const finished = await ctx.store.finish(jobId, workerId, result, ctx.clock.now(), retainUntil(ctx, jobId));
  if (finished) {
    ctx.events.notify(jobId, endpoint);
    ctx.log.info(`job ${jobId} ${finished.status} on worker ${workerId}`, { endpoint, jobId, workerId, status: finished.status });
  } else {
    ctx.log.warn(`ignored result for job ${jobId}: worker ${workerId} does not hold it (cancelled, timed out, or not its job)`, {
      endpoint,
      jobId,
      workerId,
    });
  }
  if (post.stopPod) ctx.workers.requestRecycle(workerId);
  return OK;
}

/** Queues a `progress`/`output` webhook for a job that asked for it (the dispatcher sends `completed` by itself). */
async function webhookEvent(ctx: GatewayContext, endpoint: string, jobId: string, event: 'progress' | 'output', stream?: unknown[]): Promise<void> {
  if (!ctx.webhooks) return;
  const job = await ctx.store.get(endpoint, jobId);
  if (job) await ctx.webhooks.jobEvent(job, event, stream);
}

/** Stop requests for the worker, holding up to `takeHoldMs` while there are none. */
async function waitForStops(ctx: GatewayContext, workerId: string, signal: AbortSignal): Promise<string[]> {
  const stops = ctx.workers.takeStops(workerId);
  if (stops.length > 0) return stops;
  const held = new AbortController();
  const release = () => held.abort();
  signal.addEventListener('abort', release, { once: true });
  try {
    await Promise.race([ctx.clock.sleep(ctx.config.gateway.takeHoldMs, held.signal), ctx.workers.waitForStops(workerId, held.signal)]);
  } finally {
    held.abort();
    signal.removeEventListener('abort', release);
  }
  // Stops taken for a worker that already hung up would be lost: leave them for its next poll.
  return signal.aborted ? [] : ctx.workers.takeStops(workerId);
}

/**
 * RunPod's worker API under `/:endpoint/…` (mount under `/v2`) as hono routes over
 * {@link answerWorkerCall}, for `app.request` in tests and any fetch-style host. The gateway's
 * own server answers these paths before hono, on node:http directly (`worker-http.ts`).
 *
 * @example
 * app.route('/v2', createWorkerApi(ctx));
 */
export function createWorkerApi(ctx: GatewayContext): Hono {
  const api = new Hono();
  for (const [route, { method, withJobId }] of Object.entries(WORKER_ROUTES) as [WorkerRoute, (typeof WORKER_ROUTES)[WorkerRoute]][]) {
    const path = withJobId ? `/:endpoint/${route}/:workerId/:jobId` : `/:endpoint/${route}/:workerId`;
    api.on(method, path, async (c) => {
      const jobId = c.req.param('jobId');
      const reply = await answerWorkerCall(ctx, {
        route,
        endpoint: c.req.param('endpoint') ?? '',
        workerId: c.req.param('workerId') ?? '',
        ...(jobId === undefined ? {} : { jobId }),
        authorization: c.req.header('authorization'),
        query: new URL(c.req.url).searchParams,
        readBody: (limit) => readBodyText(c.req.raw, limit),
        signal: c.req.raw.signal,
      });
      return reply.status === 204 ? c.body(null, 204) : c.json(reply.body);
    });
  }
  return api;
}

/**
 * Claims up to `limit` jobs, holding the request up to `takeHoldMs` while the queue is empty and
 * waking as soon as the store says jobs may be claimable. Never claims for a worker that hung up;
 * jobs claimed just as it hung up go back to the queue.
 */
async function takeJobs(ctx: GatewayContext, endpoint: string, workerId: string, limit: number, signal: AbortSignal): Promise<JobRecord[]> {
  ctx.workers.recordTake(workerId);
  const deadline = ctx.clock.now() + ctx.config.gateway.takeHoldMs;
  let woken = false;
  let wake = () => {};
  // Subscribe before the first claim, so a job enqueued between claim and sleep is not missed.
  const unsubscribe = ctx.store.onJobsAvailable((available) => {
    if (available !== endpoint) return;
    woken = true;
    wake();
  });
  try {
    for (;;) {
      if (signal.aborted) return [];
      woken = false;
      const jobs = await ctx.store.claim(endpoint, workerId, limit, ctx.clock.now());
      if (jobs.length > 0) {
        if (!signal.aborted) {
          for (const job of jobs) {
            ctx.events.notify(job.id, endpoint);
            void ctx.webhooks?.jobEvent(job, 'start');
          }
          return jobs;
        }
        await ctx.store.unclaim(
          jobs.map((j) => j.id),
          workerId,
        ).catch((err: unknown) => ctx.log.error(`could not put back jobs claimed for a gone worker ${workerId}`, { error: String(err) }));
        return [];
      }
      const remaining = deadline - ctx.clock.now();
      if (remaining <= 0) return [];
      if (woken) continue;
      const held = new AbortController();
      wake = () => held.abort();
      const release = () => held.abort();
      signal.addEventListener('abort', release, { once: true });
      try {
        await ctx.clock.sleep(remaining, held.signal);
      } finally {
        wake = () => {};
        signal.removeEventListener('abort', release);
      }
    }
  } finally {
    unsubscribe();
  }
}

function toTakenJob(job: JobRecord): TakenJob {
  const taken: TakenJob = { id: job.id, input: job.input };
  if (job.s3Config !== null) taken.s3Config = job.s3Config;
  if (job.policy.executionTimeout !== undefined) taken.policy = { executionTimeout: job.executionTimeoutMs };
  return taken;
}

function parseBatchSize(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 1;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new InvalidRequestError('batch_size', `must be an integer from 1 to ${MAX_BATCH_SIZE}`);
  return Math.min(Number(raw), MAX_BATCH_SIZE);
}

/** Worker bodies over the limit get 400, as RunPod answers (the SDK does not retry 4xx). */
async function readWorkerBody(call: WorkerCall): Promise<string> {
  try {
    return await call.readBody(WORKER_LIMITS.maxResultBytes);
  } catch (err) {
    if (!(err instanceof PayloadTooLargeError)) throw err;
    throw new InvalidRequestError('body', `must be at most ${WORKER_LIMITS.maxResultBytes} bytes (20 MB); upload large results to S3`, { cause: err });
  }
}

/**
 * A non-string `error` (some handlers return objects) is kept as its JSON text, as `/status`
 * shows errors as strings; `error: null` means no error.
 */
function normaliseError(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const body = value as Record<string, unknown>;
  if (!Object.hasOwn(body, 'error') || body.error === undefined || typeof body.error === 'string') return value;
  const { error, ...rest } = body;
  return error === null ? rest : { ...rest, error: JSON.stringify(error) };
}
