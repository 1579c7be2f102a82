import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import type { Clock, HealthWorkers } from '@kiln/protocol';
import { createClientApi } from './client-api.ts';
import type { GatewayConfig } from './config.ts';
import { toHttpResponse } from './errors.ts';
import type { JobEvents } from './job-events.ts';
import type { JobStore } from './job-store.ts';
import { createWorkerApi } from './worker-api.ts';
import type { WorkerAccess, WorkerInfo } from './worker-registry.ts';
import type { WebhookDispatcher } from './webhook-dispatcher.ts';
import { createAdminApi } from './admin-api.ts';
import { createWorkerRequestHandler } from './worker-http.ts';
import { createDashboardFiles } from './dashboard-files.ts';
import type { MetricsSampler } from './metrics-sampler.ts';
import type { ModelsAccess } from './models-access.ts';
import type { WorkerSchemas } from './worker-schema.ts';

/** Structured log sink (a pino-compatible subset). */
export interface HttpLogger {
  info(message: string, fields?: object): void;
  warn(message: string, fields?: object): void;
  error(message: string, fields?: object): void;
}

/** Everything the HTTP layer works with, passed explicitly (no module state). */
export interface GatewayContext {
  config: GatewayConfig;
  /** All job state goes through the store. */
  store: JobStore;
  clock: Clock;
  /** Worker tokens, pings, takes, stop requests. */
  workers: WorkerAccess;
  workerCounts(endpoint: string): HealthWorkers;
  /** Wakes long-polls when a job changes. */
  events: JobEvents;
  log: HttpLogger;
  /** The endpoint's workers, for the admin API (absent in tests that have no registry). */
  listWorkers?(endpoint: string): WorkerInfo[];
  /** The webhook sender: `jobEvent` for start/progress/output calls, `wake` after a redelivery (absent in tests without one). */
  webhooks?: Pick<WebhookDispatcher, 'jobEvent' | 'wake'>;
  /** Each endpoint's load over the last hour, for the admin API (absent: `/metrics` answers no samples). */
  metrics?: MetricsSampler;
  /** The models volume, for `/kiln/v1/models` (absent: those routes answer 404). */
  models?: ModelsAccess;
  /** Workers' own descriptions of their input, for `/kiln/v1/endpoints/:ep/schema` (absent: one is made from the config). */
  schemas?: WorkerSchemas;
  /** Folder of the built dashboard, served at `/` (absent: `/` says how to build it). */
  dashboardDir?: string;
}

/**
 * The gateway's HTTP app: RunPod's endpoint API and worker API under `/v2/{endpoint}/…`, kiln's
 * admin API under `/kiln/v1/…`, the built dashboard at `/` and `/assets/…`, errors mapped to JSON in one place (`toHttpResponse`), unknown routes as JSON 404.
 *
 * @example
 * const app = createHttpApp(ctx);
 * serve({ fetch: app.fetch, hostname: ctx.config.gateway.host, port: ctx.config.gateway.port });
 * // in tests: await app.request('/v2/tts/health', { headers: { authorization: 'Bearer key' } });
 */
export function createHttpApp(ctx: GatewayContext): Hono {
  const app = new Hono();
  app.route('/v2', createWorkerApi(ctx));
  app.route('/v2', createClientApi(ctx));
  app.route('/kiln/v1', createAdminApi(ctx));
  // Last: the page and its assets, without auth (the page asks for the key).
  app.route('/', createDashboardFiles(ctx.dashboardDir));
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}`, code: 'not_found' }, 404));
  app.onError((err, c) => {
    const { status, body, headers } = toHttpResponse(err, ctx.log);
    return c.json(body, status, headers);
  });
  return app;
}

/**
 * The gateway as a node:http request listener: worker calls answered on node:http directly
 * (`createWorkerRequestHandler`, the per-job hot path), everything else by `app` (default: a
 * new {@link createHttpApp}).
 *
 * @example
 * http.createServer(createNodeRequestListener(ctx)).listen(8080, '127.0.0.1');
 */
export function createNodeRequestListener(ctx: GatewayContext, app: Hono = createHttpApp(ctx)): (req: IncomingMessage, res: ServerResponse) => void {
  const workerCalls = createWorkerRequestHandler(ctx);
  const rest = getRequestListener(app.fetch);
  return function gatewayRequest(req, res) {
    if (!workerCalls(req, res)) void rest(req, res);
  };
}
