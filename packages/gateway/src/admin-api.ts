import { Hono } from 'hono';
import { clientAuth } from './client-api.ts';
import { EndpointNotFoundError, InvalidRequestError } from './errors.ts';
import type { GatewayContext } from './http-app.ts';

/** Most log lines one request returns. */
export const MAX_LOG_LINES = 1000;

/**
 * kiln's own API beside RunPod's, under `/kiln/v1`, with the client API's auth: an endpoint's
 * workers (state, cold start, last ping) and their captured stdout/stderr, per worker or per job.
 *
 * @example
 * GET /kiln/v1/endpoints/tts/logs?jobId=…&after=120   → { lines: […], next: 164 }
 * GET /kiln/v1/endpoints/tts/workers                  → { workers: […] }
 */
export function createAdminApi(ctx: GatewayContext): Hono {
  const app = new Hono();
  app.use('*', clientAuth(ctx.config.gateway.apiKeys));

  app.get('/endpoints/:endpoint/workers', (c) => {
    const endpoint = knownEndpoint(ctx, c.req.param('endpoint'));
    const now = ctx.clock.now();
    const workers = (ctx.listWorkers?.(endpoint) ?? []).map((w) => ({
      workerId: w.workerId,
      state: w.state,
      startedAt: w.startedAt,
      uptimeMs: now - w.startedAt,
      coldStartMs: w.readyAt === null ? null : w.readyAt - w.startedAt,
      lastPingAt: w.lastPingAt,
      jobs: w.reportedJobs,
      unhealthy: w.unhealthy,
    }));
    return c.json({ workers });
  });

  app.get('/endpoints/:endpoint/logs', async (c) => {
    const endpoint = knownEndpoint(ctx, c.req.param('endpoint'));
    const after = integerParam(c.req.query('after'), 'after', 0);
    const limit = Math.min(integerParam(c.req.query('limit'), 'limit', 200), MAX_LOG_LINES);
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

  return app;
}

function knownEndpoint(ctx: GatewayContext, name: string): string {
  if (!Object.hasOwn(ctx.config.endpoints, name)) throw new EndpointNotFoundError(name);
  return name;
}

function integerParam(raw: string | undefined, field: string, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new InvalidRequestError(field, `must be a non-negative integer, got '${raw}'`);
  return n;
}
