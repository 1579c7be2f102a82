import { Hono } from 'hono';
import { JOB_STATES, WEBHOOK_DELIVERY_STATES, isJobState } from '@kiln/protocol';
import type { JobState, WebhookDeliveryState } from '@kiln/protocol';
import { clientAuth } from './client-api.ts';
import type { EndpointOverview, EndpointSchemaResponse, JobDetail, JobStreamResponse, MetricsResponse, ModelsResponse, ModelView } from '@kiln/protocol';
import { AdminFeed } from './admin-events.ts';
import { endpointOverview, toListedJob, workerViews } from './admin-views.ts';
import { EndpointNotFoundError, InvalidRequestError, JobNotFoundError, NoModelsVolumeError, WebhookDeliveryNotFoundError } from './errors.ts';
import type { GatewayContext } from './http-app.ts';
import type { JobListCursor, JobRecord } from './job-store.ts';
import { METRICS_INTERVAL_MS } from './metrics-sampler.ts';
import type { ModelsAccess } from './models-access.ts';
import { toStatusObject } from './status-view.ts';
import { WorkerSchemas } from './worker-schema.ts';

/** Log lines per request, unless `limit` says otherwise. */
export const DEFAULT_LOG_LINES = 200;
/** Most log lines one request returns. */
export const MAX_LOG_LINES = 1000;
/** Webhook deliveries per listing, unless `limit` says otherwise. */
export const DEFAULT_WEBHOOK_PAGE = 100;
/** Most webhook deliveries one listing holds. */
export const MAX_WEBHOOK_PAGE = 1000;
/** Jobs per page of the job listing, unless `limit` says otherwise. */
export const DEFAULT_JOB_PAGE = 50;
/** Most jobs one page of the job listing holds. */
export const MAX_JOB_PAGE = 500;

/**
 * kiln's own API beside RunPod's, under `/kiln/v1`, with the client API's auth: what the
 * dashboard shows (response shapes in `@kiln/protocol`'s admin-api): endpoints with their counts
 * and last hour, load metrics, workers (state, cold start, setup time, jobs held) and their
 * captured stdout/stderr, jobs, stream chunks, webhook deliveries, the Run form's schema, models,
 * and a live feed of all of it.
 *
 * @example
 * GET /kiln/v1/endpoints                              → { endpoints: EndpointOverview[] }
 * GET /kiln/v1/endpoints/tts/metrics                  → { intervalMs: 5000, samples: […] }
 * GET /kiln/v1/endpoints/tts/schema                   → { input: {…} | null, testInput, note }
 * GET /kiln/v1/endpoints/tts/logs?jobId=…&after=120   → { lines: […], next: 164 }
 * GET /kiln/v1/endpoints/tts/workers                  → { workers: […] }
 * GET /kiln/v1/endpoints/tts/webhooks?state=failed&jobId=…  → { deliveries: […] }
 * POST /kiln/v1/webhooks/:deliveryId/redeliver        → the delivery, pending again
 * GET /kiln/v1/endpoints/tts/jobs?status=IN_QUEUE,IN_PROGRESS&limit=50&cursor=…  → { jobs: […], next: '…' | null }
 * GET /kiln/v1/endpoints/tts/jobs/:id                 → the job's whole record (JobDetail)
 * GET /kiln/v1/endpoints/tts/jobs/:id/stream?after=3  → { chunks: [{ seq, output }], next }
 * GET /kiln/v1/jobs/:id                               → JobDetail, whatever its endpoint
 * GET /kiln/v1/models                                 → { volume, models: […] }
 * POST /kiln/v1/models/:name/pull                     → 202 ModelView
 * GET /kiln/v1/events[?endpoint=tts]                  → text/event-stream of AdminEvent
 */
export function createAdminApi(ctx: GatewayContext): Hono {
  const app = new Hono();
  app.use('*', clientAuth(ctx.config.gateway.apiKeys));

  const feed = new AdminFeed(ctx);
  const schemas = ctx.schemas ?? new WorkerSchemas({ config: ctx.config, clock: ctx.clock });

  app.get('/endpoints', async (c) => {
    const now = ctx.clock.now();
    const endpoints: EndpointOverview[] = await Promise.all(
      Object.values(ctx.config.endpoints).map((endpoint) => endpointOverview(ctx.store, endpoint, ctx.listWorkers?.(endpoint.name) ?? [], now)),
    );
    return c.json({ endpoints });
  });

  app.get('/endpoints/:endpoint/metrics', (c) => {
    const endpoint = knownEndpoint(ctx, c.req.param('endpoint'));
    const metrics: MetricsResponse = ctx.metrics?.history(endpoint) ?? { intervalMs: METRICS_INTERVAL_MS, samples: [] };
    return c.json(metrics);
  });

  app.get('/endpoints/:endpoint/schema', async (c) => {
    const endpoint = knownEndpoint(ctx, c.req.param('endpoint'));
    const schema: EndpointSchemaResponse = await schemas.get(endpoint);
    return c.json(schema);
  });

  app.get('/events', (c) => {
    const raw = c.req.query('endpoint');
    const endpoint = raw === undefined || raw === '' ? undefined : knownEndpoint(ctx, raw);
    return feed.respond(c.req.raw, endpoint);
  });

  app.get('/endpoints/:endpoint/workers', async (c) => {
    const endpoint = knownEndpoint(ctx, c.req.param('endpoint'));
    const workers = await workerViews(ctx.store, ctx.listWorkers?.(endpoint) ?? [], ctx.clock.now());
    return c.json({ workers });
  });

  app.get('/endpoints/:endpoint/logs', async (c) => {
    const endpoint = knownEndpoint(ctx, c.req.param('endpoint'));
    const after = integerParam(c.req.query('after'), 'after', 0);
    const limit = limitParam(c.req.query('limit'), DEFAULT_LOG_LINES, MAX_LOG_LINES);
    const workerId = c.req.query('workerId');
    const jobId = c.req.query('jobId');
    const lines = await ctx.store.readLogs({
      endpoint,
      afterSeq: after,
      limit,
      ...(workerId ? { workerId } : {}),
      ...(jobId ? { jobId } : {}),
    });
    return c.json({ lines, next: lines.at(-1)?.seq ?? after });
  });

  // Newest first, keyset-paged: `next` is the cursor of the page after this one, null on the last.
  app.get('/endpoints/:endpoint/jobs', async (c) => {
    const endpoint = knownEndpoint(ctx, c.req.param('endpoint'));
    const statuses = statusesParam(c.req.query('status'));
    const limit = limitParam(c.req.query('limit'), DEFAULT_JOB_PAGE, MAX_JOB_PAGE);
    const cursor = c.req.query('cursor');
    const after = cursor === undefined || cursor === '' ? undefined : decodeCursor(cursor);
    // One more than the page: whether it exists says if there is a next page.
    const found = await ctx.store.listJobs({ endpoint, limit: limit + 1, ...(statuses ? { statuses } : {}), ...(after ? { after } : {}) });
    const page = found.slice(0, limit);
    const last = page.at(-1);
    const now = ctx.clock.now();
    return c.json({ jobs: page.map((job) => toListedJob(job, now)), next: found.length > limit && last ? encodeCursor(last) : null });
  });

  app.get('/endpoints/:endpoint/jobs/:id', async (c) => {
    const endpoint = knownEndpoint(ctx, c.req.param('endpoint'));
    const id = c.req.param('id');
    const job = await ctx.store.get(endpoint, id);
    if (!job) throw new JobNotFoundError(endpoint, id);
    return c.json(toJobDetail(job, ctx.clock.now()));
  });

  // Chunks after `after`, read without marking them delivered (unlike RunPod's /stream).
  app.get('/endpoints/:endpoint/jobs/:id/stream', async (c) => {
    const endpoint = knownEndpoint(ctx, c.req.param('endpoint'));
    const id = c.req.param('id');
    const after = integerParam(c.req.query('after'), 'after', 0);
    const job = await ctx.store.get(endpoint, id);
    if (!job) throw new JobNotFoundError(endpoint, id);
    const chunks = job.streamSeq > after ? await ctx.store.streamChunks(id, after) : [];
    const stream: JobStreamResponse = { chunks: chunks.map((chunk) => ({ seq: chunk.seq, output: chunk.output })), next: chunks.at(-1)?.seq ?? after };
    return c.json(stream);
  });

  // A job by id alone: the dashboard's search box does not know the endpoint.
  app.get('/jobs/:id', async (c) => {
    const id = c.req.param('id');
    for (const endpoint of Object.keys(ctx.config.endpoints)) {
      const job = await ctx.store.get(endpoint, id);
      if (job) return c.json(toJobDetail(job, ctx.clock.now()));
    }
    throw new JobNotFoundError(null, id);
  });

  app.get('/models', async (c) => {
    const models: ModelsResponse = await requireModels(ctx).list();
    return c.json(models);
  });

  // Starts (or joins) a pull in the background: its progress arrives on the live feed as `model` events.
  app.post('/models/:name/pull', async (c) => {
    const model: ModelView = await requireModels(ctx).pull(c.req.param('name'));
    return c.json(model, 202);
  });

  // The webhook outbox of an endpoint, newest first, without payloads.
  app.get('/endpoints/:endpoint/webhooks', async (c) => {
    const endpoint = knownEndpoint(ctx, c.req.param('endpoint'));
    const state = deliveryStateParam(c.req.query('state'));
    const limit = limitParam(c.req.query('limit'), DEFAULT_WEBHOOK_PAGE, MAX_WEBHOOK_PAGE);
    const jobId = c.req.query('jobId');
    const deliveries = await ctx.store.listWebhookDeliveries({ endpoint, limit, ...(state ? { state } : {}), ...(jobId ? { jobId } : {}) });
    return c.json({ deliveries });
  });

  // Back to pending with its attempts reset, whatever its state: sent again at once.
  app.post('/webhooks/:deliveryId/redeliver', async (c) => {
    const id = c.req.param('deliveryId');
    const delivery = await ctx.store.redeliverWebhook(id, ctx.clock.now());
    if (!delivery) throw new WebhookDeliveryNotFoundError(id);
    ctx.webhooks?.wake();
    const { payload: _payload, ...summary } = delivery;
    return c.json(summary);
  });

  return app;
}

/** `state=failed` → the state; undefined (every state) when absent or empty. */
function deliveryStateParam(raw: string | undefined): WebhookDeliveryState | undefined {
  if (raw === undefined || raw === '') return undefined;
  const state = WEBHOOK_DELIVERY_STATES.find((s) => s === raw);
  if (state === undefined) throw new InvalidRequestError('state', `must be one of ${WEBHOOK_DELIVERY_STATES.join(', ')}; got '${raw}'`);
  return state;
}

function knownEndpoint(ctx: GatewayContext, name: string): string {
  if (!Object.hasOwn(ctx.config.endpoints, name)) throw new EndpointNotFoundError(name);
  return name;
}

/** A job's whole record as the admin API shows it (the S3 secret redacted). */
function toJobDetail(job: JobRecord, now: number): JobDetail {
  const { s3Config, streamSeq, progressSeq, ...record } = job;
  const { delayTime = null, executionTime = null } = toStatusObject(job, now);
  return {
    ...record,
    policy: { ...record.policy },
    // The bucket's secret stays in the store.
    s3Config: s3Config && { ...s3Config, accessSecret: '[redacted]' },
    delayTime,
    executionTime,
    streamChunks: streamSeq,
    progressUpdates: progressSeq,
  };
}

function requireModels(ctx: GatewayContext): ModelsAccess {
  if (!ctx.models) throw new NoModelsVolumeError();
  return ctx.models;
}

/** `status=IN_QUEUE,COMPLETED` → the states; undefined (every state) when absent or empty. */
function statusesParam(raw: string | undefined): JobState[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const states = raw.split(',').map((s) => s.trim());
  const bad = states.find((s) => !isJobState(s));
  if (bad !== undefined) throw new InvalidRequestError('status', `must be a comma-separated list of ${JOB_STATES.join(', ')}; got '${bad}'`);
  return states as JobState[];
}

/** The opaque `cursor` of the job listing: base64url of `[createdAt, id]` of the last job of a page. */
function encodeCursor(job: JobListCursor): string {
  return Buffer.from(JSON.stringify([job.createdAt, job.id])).toString('base64url');
}

function decodeCursor(raw: string): JobListCursor {
  const refused = (options?: { cause: unknown }) =>
    new InvalidRequestError('cursor', 'is not a cursor from this listing (pass the `next` of the previous page as is)', options);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch (cause) {
    throw refused({ cause });
  }
  // Node's base64url decoder skips characters it does not know: only a cursor it would have made is accepted.
  if (!Array.isArray(value) || value.length !== 2 || !Number.isSafeInteger(value[0]) || typeof value[1] !== 'string') throw refused();
  const cursor = { createdAt: value[0] as number, id: value[1] };
  if (encodeCursor(cursor) !== raw) throw refused();
  return cursor;
}

/** A query parameter written in decimal digits (`after=120`); `fallback` when absent or empty. */
function integerParam(raw: string | undefined, field: string, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  // Digits only: Number() would also take '0x10', '1e3' and ' 5 '.
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidRequestError(field, `must be a non-negative integer, got '${raw}'`);
  return n;
}

/** `limit`, from 1 to `max`; `fallback` when absent or empty. */
function limitParam(raw: string | undefined, fallback: number, max: number): number {
  const limit = integerParam(raw, 'limit', fallback);
  if (limit < 1 || limit > max) throw new InvalidRequestError('limit', `must be from 1 to ${max}, got ${limit}`);
  return limit;
}
