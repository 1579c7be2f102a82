import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import type { Context, MiddlewareHandler } from 'hono';
import { CLIENT_LIMITS, DEFAULT_WEBHOOK_EVENTS, isTerminalState, parseRunRequest, parseRunsyncWait } from '@kiln/protocol';
import type { RunPolicy, S3Config, WebhookEvent } from '@kiln/protocol';
import type { EndpointConfig } from './config.ts';
import {
  EndpointNotFoundError,
  IdempotencyConflictError,
  InvalidRequestError,
  InvalidTransitionError,
  JobNotFoundError,
  PayloadTooLargeError,
  UnauthorizedError,
} from './errors.ts';
import type { GatewayContext } from './http-app.ts';
import type { JobRecord } from './job-store.ts';
import { acceptsEventStream, respondWithJobEvents } from './sse-stream.ts';
import { toStatusObject } from './status-view.ts';

/** How long `/stream` holds a request without new chunks before answering with an empty `stream`. */
export const STREAM_HOLD_MS = 5000;
/** Longest `Idempotency-Key` accepted. */
export const MAX_IDEMPOTENCY_KEY_CHARS = 255;
/** Delivered-chunk marks of `/stream` are forgotten this long after their last use (or with the job's retention). */
const STREAM_MARK_PRUNE_EVERY_MS = 60_000;

/**
 * RunPod's endpoint API under `/:endpoint/…` (mount under `/v2`): run, runsync, status,
 * status-sync, stream, cancel, retry, purge-queue, health. Success is always HTTP 200 with
 * JSON; failures are thrown as gateway errors for the app's single error handler. `/stream` with
 * `Accept: text/event-stream` is kiln's addition: server-sent events (see `respondWithJobEvents`).
 *
 * @example
 * app.route('/v2', createClientApi(ctx));
 */
export function createClientApi(ctx: GatewayContext): Hono {
  const api = new Hono();
  const auth = clientAuth(ctx.config.gateway.apiKeys);
  const stream = new StreamMarks();

  api.post('/:endpoint/run', auth, async function run(c) {
    const endpoint = requireEndpoint(ctx, c.req.param('endpoint'));
    const job = await submit(ctx, c, endpoint, false);
    return c.json({ id: job.id, status: job.status });
  });

  api.post('/:endpoint/runsync', auth, async function runsync(c) {
    const endpoint = requireEndpoint(ctx, c.req.param('endpoint'));
    const wait = parseRunsyncWait(c.req.query('wait'));
    const submitted = await submit(ctx, c, endpoint, true);
    const job = await waitForTerminal(ctx, endpoint.name, submitted.id, wait, c.req.raw.signal);
    if (!job) throw new JobNotFoundError(endpoint.name, submitted.id);
    if (!isTerminalState(job.status)) return c.json({ id: job.id, status: job.status });
    return c.json(toStatusObject(job, ctx.clock.now()));
  });

  api.on(['GET', 'POST'], '/:endpoint/status/:id', auth, async function status(c) {
    const endpoint = requireEndpoint(ctx, c.req.param('endpoint'));
    const job = await requireJob(ctx, endpoint.name, c.req.param('id'));
    return c.json(toStatusObject(job, ctx.clock.now()));
  });

  api.on(['GET', 'POST'], '/:endpoint/status-sync/:id', auth, async function statusSync(c) {
    const endpoint = requireEndpoint(ctx, c.req.param('endpoint'));
    const id = c.req.param('id');
    const wait = parseRunsyncWait(c.req.query('wait'));
    const job = await waitForTerminal(ctx, endpoint.name, id, wait, c.req.raw.signal);
    if (!job) throw new JobNotFoundError(endpoint.name, id);
    return c.json(toStatusObject(job, ctx.clock.now()));
  });

  api.on(['GET', 'POST'], '/:endpoint/stream/:id', auth, async function streamChunks(c) {
    const endpoint = requireEndpoint(ctx, c.req.param('endpoint'));
    const id = c.req.param('id');
    // SSE only when asked for by name: RunPod's clients send `*/*` and expect the long-poll's JSON.
    if (acceptsEventStream(c.req.header('accept'))) return respondWithJobEvents(ctx, endpoint.name, id, c.req.raw);
    const hold = parseStreamWait(c.req.query('wait'));
    const deadline = ctx.clock.now() + hold;
    const signal = c.req.raw.signal;
    stream.prune(ctx.clock.now(), ctx.config.gateway.retention.runMs);
    for (;;) {
      const change = ctx.events.watch(id);
      try {
        // Status first, chunks second: chunks read after a terminal status are all there will be.
        const job = await requireJob(ctx, endpoint.name, id);
        const key = `${endpoint.name}/${id}/${job.retries}`;
        const chunks = await ctx.store.streamChunks(id, stream.mark(key));
        // Re-filter after the await: a concurrent /stream for the same job may have taken some.
        const fresh = chunks.filter((chunk) => chunk.seq > stream.mark(key));
        const now = ctx.clock.now();
        // A client that hung up gets nothing: marking chunks delivered to it would lose them for its next poll.
        if (signal.aborted) return c.body(null, 204);
        if (fresh.length > 0 || isTerminalState(job.status) || now >= deadline) {
          const last = fresh.at(-1);
          if (last) stream.deliver(key, last.seq, now);
          return c.json({ status: job.status, stream: fresh.map((chunk) => ({ output: chunk.output })), id: job.id });
        }
        await change.wait(deadline - now, signal);
      } finally {
        change.close();
      }
    }
  });

  api.post('/:endpoint/cancel/:id', auth, async function cancel(c) {
    const endpoint = requireEndpoint(ctx, c.req.param('endpoint'));
    const id = c.req.param('id');
    const result = await ctx.store.cancel(endpoint.name, id, ctx.clock.now(), retainUntil(ctx, id));
    if (!result) throw new JobNotFoundError(endpoint.name, id);
    if (result.changed) {
      ctx.events.notify(id, endpoint.name);
      // v1.10+ workers stop the job through job-stop; older ones finish it and their late result is dropped.
      if (result.job.workerId !== null) ctx.workers.requestStop(result.job.workerId, id);
      ctx.log.info(`job ${id} cancelled`, { endpoint: endpoint.name, jobId: id, workerId: result.job.workerId });
    }
    return c.json({ id: result.job.id, status: result.job.status });
  });

  api.post('/:endpoint/retry/:id', auth, async function retry(c) {
    const endpoint = requireEndpoint(ctx, c.req.param('endpoint'));
    const id = c.req.param('id');
    const before = await requireJob(ctx, endpoint.name, id);
    const now = ctx.clock.now();
    const retried = await ctx.store.retry(endpoint.name, id, now, now + (before.policy.ttl ?? endpoint.ttlMs));
    if (!retried) {
      const current = await requireJob(ctx, endpoint.name, id);
      throw new InvalidTransitionError(id, current.status, 'retry', 'only FAILED or TIMED_OUT jobs can be retried');
    }
    ctx.events.notify(id, endpoint.name);
    return c.json({ id: retried.id, status: retried.status });
  });

  api.post('/:endpoint/purge-queue', auth, async function purgeQueue(c) {
    const endpoint = requireEndpoint(ctx, c.req.param('endpoint'));
    const now = ctx.clock.now();
    const purged = await ctx.store.purgeQueue(endpoint.name, now, now + ctx.config.gateway.retention.runMs);
    // Long-polls on those jobs and the dashboard's live feed hear that they ended CANCELLED.
    for (const id of purged) ctx.events.notify(id, endpoint.name);
    return c.json({ removed: purged.length, status: 'completed' });
  });

  api.get('/:endpoint/health', auth, async function health(c) {
    const endpoint = requireEndpoint(ctx, c.req.param('endpoint'));
    const counts = await ctx.store.counts(endpoint.name);
    return c.json({
      jobs: {
        completed: counts.completed,
        failed: counts.failed,
        inProgress: counts.inProgress,
        inQueue: counts.inQueue,
        retried: counts.retried,
      },
      workers: ctx.workerCounts(endpoint.name),
    });
  });

  return api;
}

/** Creates the job of a `/run` or `/runsync` request, or returns the one its `Idempotency-Key` already made. */
async function submit(ctx: GatewayContext, c: Context, endpoint: EndpointConfig, sync: boolean): Promise<JobRecord> {
  const limit = sync ? CLIENT_LIMITS.runsyncBodyBytes : CLIENT_LIMITS.runBodyBytes;
  const request = parseRunRequest(parseJsonText(await readBodyText(c.req.raw, limit)));
  const key = idempotencyKeyOf(c.req.header('idempotency-key'));
  const now = ctx.clock.now();
  // RunPod's id shapes: `<uuid>-u1` for /run, `sync-<uuid>-e1` for /runsync.
  const id = sync ? `sync-${randomUUID()}-e1` : `${randomUUID()}-u1`;
  const { job, created } = await ctx.store.enqueue({
    id,
    endpoint: endpoint.name,
    input: request.input,
    webhook: request.webhook ?? null,
    webhookEvents: request.webhookEvents ?? null,
    policy: request.policy ?? {},
    s3Config: request.s3Config ?? null,
    createdAt: now,
    expiresAt: now + (request.policy?.ttl ?? endpoint.ttlMs),
    executionTimeoutMs: request.policy?.executionTimeout ?? endpoint.executionTimeoutMs,
    idempotencyKey: key ?? null,
  });
  if (!created && key !== undefined) {
    const sent = fingerprint(request.input, request.webhook ?? null, request.webhookEvents ?? DEFAULT_WEBHOOK_EVENTS, request.policy ?? {}, request.s3Config ?? null);
    if (sent !== fingerprint(job.input, job.webhook, job.webhookEvents, job.policy, job.s3Config)) throw new IdempotencyConflictError(key, job.id);
    ctx.log.info(`Idempotency-Key reused: answering with job ${job.id}`, { endpoint: endpoint.name, jobId: job.id });
  }
  if (created) ctx.events.notify(job.id, endpoint.name);
  return job;
}

/** Long-poll: the job once terminal, or as it is when `waitMs` ran out (undefined once it is gone). */
async function waitForTerminal(
  ctx: GatewayContext,
  endpoint: string,
  id: string,
  waitMs: number,
  signal: AbortSignal,
): Promise<JobRecord | undefined> {
  const deadline = ctx.clock.now() + waitMs;
  for (;;) {
    // Watch before reading: a job that finishes between the read and the wait still wakes us.
    const change = ctx.events.watch(id);
    try {
      const job = await ctx.store.get(endpoint, id);
      if (!job || isTerminalState(job.status)) return job;
      const remaining = deadline - ctx.clock.now();
      if (remaining <= 0 || signal.aborted) return job;
      await change.wait(remaining, signal);
    } finally {
      change.close();
    }
  }
}

/** When a finished job is deleted: /runsync results live shorter than /run results (RunPod: 1 min vs 30 min). */
export function retainUntil(ctx: GatewayContext, jobId: string): number {
  const { retention } = ctx.config.gateway;
  return ctx.clock.now() + (jobId.startsWith('sync-') ? retention.runsyncMs : retention.runMs);
}

/** The endpoint's config, or `EndpointNotFoundError`. */
export function requireEndpoint(ctx: GatewayContext, name: string): EndpointConfig {
  const endpoint = Object.hasOwn(ctx.config.endpoints, name) ? ctx.config.endpoints[name] : undefined;
  if (!endpoint) throw new EndpointNotFoundError(name);
  return endpoint;
}

async function requireJob(ctx: GatewayContext, endpoint: string, id: string): Promise<JobRecord> {
  const job = await ctx.store.get(endpoint, id);
  if (!job) throw new JobNotFoundError(endpoint, id);
  return job;
}

/**
 * Reads a request body as UTF-8 text, refusing more than `limit` bytes: by Content-Length before
 * reading, and by counting while reading (chunked bodies, lying headers).
 */
export async function readBodyText(request: Request, limit: number): Promise<string> {
  const declared = request.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > limit) {
    throw new PayloadTooLargeError(limit, Number(declared));
  }
  if (!request.body) return '';
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new PayloadTooLargeError(limit);
    }
    parts.push(value);
  }
  return Buffer.concat(parts, size).toString('utf8');
}

/** Parses body text as JSON whatever the Content-Type said. */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new InvalidRequestError('body', text.trim() === '' ? 'is required (a JSON object)' : 'must be JSON', { cause });
  }
}

/** The key of an `Authorization` header: `Bearer <key>` or the raw key (RunPod accepts both). */
export function tokenFromAuthorization(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const token = header.replace(/^Bearer\s+/i, '').trim();
  return token === '' ? undefined : token;
}

/** Client-key auth (Bearer or raw key, constant-time); no keys configured ⇒ open (loopback only). */
export function clientAuth(apiKeys: readonly string[]): MiddlewareHandler {
  const digests = apiKeys.map(sha256);
  return async function clientAuth(c, next) {
    if (digests.length > 0) {
      const token = tokenFromAuthorization(c.req.header('authorization'));
      // Comparing fixed-length digests keeps the comparison constant-time whatever the key lengths.
      const given = token === undefined ? undefined : sha256(token);
      if (!given || !digests.some((d) => timingSafeEqual(d, given))) throw new UnauthorizedError();
    }
    await next();
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function idempotencyKeyOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const key = header.trim();
  if (key === '' || key.length > MAX_IDEMPOTENCY_KEY_CHARS) {
    throw new InvalidRequestError('Idempotency-Key', `must be 1 to ${MAX_IDEMPOTENCY_KEY_CHARS} characters`);
  }
  return key;
}

/** What makes two submissions "the same request" for `Idempotency-Key`. */
function fingerprint(input: unknown, webhook: string | null, webhookEvents: readonly WebhookEvent[], policy: RunPolicy, s3Config: S3Config | null): string {
  return canonicalJson({
    input,
    webhook,
    webhookEvents: [...new Set(webhookEvents)].sort(),
    policy: { executionTimeout: policy.executionTimeout ?? null, ttl: policy.ttl ?? null, lowPriority: policy.lowPriority ?? false },
    s3Config,
  });
}

/** JSON with object keys sorted, so key order does not make two equal values differ. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const obj = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(obj).sort().map((k) => [k, obj[k]]));
  });
}

function parseStreamWait(raw: string | undefined): number {
  if (raw === undefined || raw === '') return STREAM_HOLD_MS;
  if (!/^\d+$/.test(raw)) throw new InvalidRequestError('wait', 'must be an integer number of milliseconds');
  return Math.min(Number(raw), CLIENT_LIMITS.runsyncWait.max);
}

/** Per job (and per retry of it): the highest chunk seq `/stream` has handed out, so each chunk goes out once. */
class StreamMarks {
  readonly #marks = new Map<string, { seq: number; touched: number }>();
  #lastPrune = 0;

  mark(key: string): number {
    return this.#marks.get(key)?.seq ?? 0;
  }

  deliver(key: string, seq: number, now: number): void {
    if (seq > this.mark(key)) this.#marks.set(key, { seq, touched: now });
  }

  /** Forgets marks unused for `maxAgeMs` (by then the job's result is gone too). */
  prune(now: number, maxAgeMs: number): void {
    if (now - this.#lastPrune < STREAM_MARK_PRUNE_EVERY_MS) return;
    this.#lastPrune = now;
    for (const [key, { touched }] of this.#marks) if (now - touched > maxAgeMs) this.#marks.delete(key);
  }
}
