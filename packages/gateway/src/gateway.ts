import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Hono } from 'hono';
import { realClock, type Clock } from '@kiln/protocol';
import { isPostgresUrl, type GatewayConfig } from './config.ts';
import { createHttpApp, createNodeRequestListener, type GatewayContext } from './http-app.ts';
import { JobEvents } from './job-events.ts';
import type { JobStore, LogLine } from './job-store.ts';
import { openPostgresStore } from './postgres-store.ts';
import { ProcessDriver, setupMsOf, type WorkerProcess } from './process-driver.ts';
import { planScaling } from './scaling.ts';
import { openSqliteStore } from './sqlite-store.ts';
import { StartBackoff } from './start-backoff.ts';
import { Supervisor } from './supervisor.ts';
import { WorkerRegistry } from './worker-registry.ts';
import { WebhookDispatcher } from './webhook-dispatcher.ts';
import type { ModelsAccess } from './models-access.ts';
import { workerBaseEnv, WorkerSchemas } from './worker-schema.ts';
import { MetricsSampler } from './metrics-sampler.ts';

/** A structured logger (pino-compatible subset). */
export interface GatewayLogger {
  info(message: string, fields?: object): void;
  warn(message: string, fields?: object): void;
  error(message: string, fields?: object): void;
}

/** Options of {@link Gateway}. Everything defaults to the real thing. */
export interface GatewayOptions {
  /** An open store; default: the one the config names (PostgreSQL URL or SQLite file). */
  store?: JobStore;
  clock?: Clock;
  log?: GatewayLogger;
  /** How often timeouts, pings and scaling are checked. Default 1000 ms. */
  tickMs?: number;
  /** Receives every captured worker log line (e.g. to print it), besides the store. */
  onWorkerLog?: (line: LogLine) => void;
  /** Folder of the built dashboard (`@kiln/dashboard`'s `dashboardDir`), served at `/`. Absent: `/` says how to get it. */
  dashboardDir?: string;
  /** The models volume for the admin API's `/kiln/v1/models` (absent: those routes answer 404). */
  models?: ModelsAccess;
}

/** Opens the job store the config names: PostgreSQL (in `databaseSchema`) when `databaseUrl` is a PostgreSQL URL, else the SQLite file. */
export async function openConfiguredStore(config: GatewayConfig): Promise<JobStore> {
  const { databaseUrl: url, databaseSchema: schema } = config.gateway;
  if (url !== undefined && isPostgresUrl(url)) return openPostgresStore({ url, ...(schema === undefined ? {} : { schema }) });
  return openSqliteStore({ path: config.gateway.sqlitePath });
}

/**
 * The kiln gateway: RunPod's endpoint API and worker API on a durable job store, a supervisor
 * for timeouts and dead workers, and a process driver that keeps each endpoint's workers between
 * `workersMin` and `workersMax`.
 *
 * @example
 * const gateway = new Gateway(loadConfig('kiln.config.json', process.env));
 * const url = await gateway.start();
 * // … later
 * await gateway.stop();
 */
export class Gateway {
  readonly config: GatewayConfig;
  readonly registry: WorkerRegistry;
  readonly events: JobEvents;
  #store: JobStore | undefined;
  #app: Hono | undefined;
  #supervisor: Supervisor | undefined;
  #webhooks: WebhookDispatcher | undefined;
  #metrics: MetricsSampler | undefined;
  #schemas: WorkerSchemas | undefined;
  readonly #clock: Clock;
  readonly #log: GatewayLogger;
  readonly #tickMs: number;
  readonly #options: GatewayOptions;
  readonly #driver: ProcessDriver;
  readonly #processes = new Map<string, WorkerProcess>();
  readonly #pendingLogs: LogLine[] = [];
  readonly #startBackoff = new StartBackoff();
  #server: Server | undefined;
  #url = '';
  #stopping = new AbortController();
  #ticking: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  #scaleRequested = false;

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    this.config = config;
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.#log = options.log ?? consoleLogger;
    this.#tickMs = options.tickMs ?? 1000;
    this.registry = new WorkerRegistry({ clock: this.#clock });
    this.events = new JobEvents({ clock: this.#clock });
    this.#driver = new ProcessDriver({
      clock: this.#clock,
      onLog: (line) => {
        if (line.stream === 'stdout') {
          const setupMs = setupMsOf(line.line);
          if (setupMs !== null) this.registry.recordSetup(line.workerId, setupMs);
        }
        const entry: LogLine = { ...line };
        this.#pendingLogs.push(entry);
        options.onWorkerLog?.(entry);
      },
    });
  }

  /** The job store (after `start()`). */
  get store(): JobStore {
    if (!this.#store) throw new Error('gateway not started');
    return this.#store;
  }

  /** The webhook sender (after `start()`): `jobEvent` for start/progress/output calls; `tick()` in tests. */
  get webhooks(): WebhookDispatcher {
    if (!this.#webhooks) throw new Error('gateway not started');
    return this.#webhooks;
  }

  /** The HTTP app (after `start()`), for in-process requests. */
  get app(): Hono {
    if (!this.#app) throw new Error('gateway not started');
    return this.#app;
  }

  /** The base URL it listens on (after `start()`). */
  get url(): string {
    return this.#url;
  }

  /** Opens the store, applies migrations, listens, and starts supervising and scaling. Resolves with the base URL. */
  async start(): Promise<string> {
    this.#store = this.#options.store ?? (await openConfiguredStore(this.config));
    await this.#store.migrate();
    this.#webhooks = new WebhookDispatcher({ store: this.#store, settings: this.config.gateway.webhooks, clock: this.#clock, log: this.#log });
    this.#metrics = new MetricsSampler({
      store: this.#store,
      endpoints: Object.keys(this.config.endpoints),
      listWorkers: (endpoint) => this.registry.list(endpoint),
      clock: this.#clock,
      log: this.#log,
    });
    this.#schemas = new WorkerSchemas({ config: this.config, clock: this.#clock });
    const context: GatewayContext = {
      config: this.config,
      store: this.#store,
      clock: this.#clock,
      workers: this.registry,
      workerCounts: (endpoint) => this.registry.counts(endpoint),
      events: this.events,
      log: this.#log,
      listWorkers: (endpoint) => this.registry.list(endpoint),
      webhooks: this.#webhooks,
      metrics: this.#metrics,
      schemas: this.#schemas,
      ...(this.#options.models ? { models: this.#options.models } : {}),
      ...(this.#options.dashboardDir === undefined ? {} : { dashboardDir: this.#options.dashboardDir }),
    };
    this.#app = createHttpApp(context);
    this.#supervisor = new Supervisor({
      store: this.#store,
      registry: this.registry,
      clock: this.#clock,
      settings: {
        maxAttempts: this.config.gateway.maxAttempts,
        pingTimeoutMs: this.config.gateway.pingTimeoutMs,
        stopGraceMs: this.config.gateway.stopGraceMs,
        retentionMs: this.config.gateway.retention.runMs,
      },
      notify: (jobId, endpoint) => this.events.notify(jobId, endpoint),
      killWorker: (workerId, reason) => this.#kill(workerId, reason),
      log: this.#log,
    });
    const { host, port } = this.config.gateway;
    const listener = createNodeRequestListener(context, this.#app);
    this.#server = await new Promise<Server>((resolve, reject) => {
      const server = createServer(listener);
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
    const address = this.#server.address();
    const boundPort = typeof address === 'object' && address ? address.port : port;
    this.#url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
    this.#unsubscribe = this.#store.onJobsAvailable(() => this.#requestScale());
    this.#ticking = this.#tickLoop();
    this.#webhooks.start();
    this.#metrics.start();
    return this.#url;
  }

  /** Stops scaling, stops every worker (SIGTERM, then SIGKILL after the grace period), closes the server and the store. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#unsubscribe?.();
    this.#schemas?.close();
    await this.#metrics?.stop();
    await this.#ticking;
    await Promise.all([...this.#processes.values()].map((p) => p.stop(this.config.gateway.stopGraceMs)));
    await this.#flushLogs();
    await new Promise<void>((resolve) => {
      if (!this.#server) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    await this.#webhooks?.stop();
    await this.#store?.close();
  }

  /** Sends SIGKILL to a worker's process, as a crash would; false if there is no such worker. */
  killWorkerProcess(workerId: string): boolean {
    const proc = this.#processes.get(workerId);
    if (!proc) return false;
    proc.kill();
    return true;
  }

  /** Restarts an endpoint's workers (e.g. its files changed): each is stopped gracefully; scaling starts new ones as needed. */
  async restartWorkers(endpoint: string): Promise<void> {
    // Its files changed: its description of its input may have too.
    this.#schemas?.forget(endpoint);
    const ids = this.registry.list(endpoint).map((w) => w.workerId);
    await Promise.all(ids.map((id) => this.#stopWorker(id)));
    this.#requestScale();
  }

  /** Runs supervision and scaling once (tests drive this with a manual clock). */
  async tick(): Promise<void> {
    await this.#supervisor!.tick();
    await this.#scale();
    await this.#flushLogs();
  }

  async #tickLoop(): Promise<void> {
    const signal = this.#stopping.signal;
    while (!signal.aborted) {
      try {
        await this.tick();
      } catch (err) {
        this.#log.error(`gateway tick failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      await this.#clock.sleep(this.#tickMs, signal);
    }
  }

  #requestScale(): void {
    if (this.#scaleRequested || this.#stopping.signal.aborted) return;
    this.#scaleRequested = true;
    setImmediate(() => {
      this.#scaleRequested = false;
      this.#scale().catch((err: unknown) => this.#log.error(`scaling failed: ${err instanceof Error ? err.message : String(err)}`));
    });
  }

  async #scale(): Promise<void> {
    if (this.#stopping.signal.aborted) return;
    const now = this.#clock.now();
    for (const [endpoint, settings] of Object.entries(this.config.endpoints)) {
      const counts = await this.#store!.queueStats(endpoint);
      const plan = planScaling({
        workersMin: settings.workersMin,
        workersMax: settings.workersMax,
        idleTimeoutMs: settings.idleTimeout * 1000,
        scaler: settings.scaler,
        queue: { scalable: counts.inQueueScalable, oldestQueuedAt: counts.oldestQueuedAt, inProgress: counts.inProgress },
        workers: this.registry.list(endpoint).map((w) => ({ id: w.workerId, state: w.state, idleSince: w.idleSince, startedAt: w.startedAt })),
        now,
      });
      for (const id of plan.stop) void this.#stopWorker(id);
      for (const w of this.registry.list(endpoint)) if (w.readyAt !== null) this.#startBackoff.ready(endpoint, w.workerId);
      const starts = Math.min(plan.start, this.#startBackoff.startsAllowed(endpoint, now));
      for (let i = 0; i < starts; i++) this.#spawn(endpoint);
    }
    for (const worker of this.registry.list()) if (worker.recycle && worker.state !== 'draining') void this.#stopWorker(worker.workerId);
  }

  #spawn(endpoint: string): void {
    const settings = this.config.endpoints[endpoint]!;
    const workerId = `${endpoint}-${randomBytes(4).toString('hex')}`;
    const token = randomBytes(24).toString('base64url');
    this.registry.register({ workerId, endpoint, token });
    const base = `${this.#url}/v2/${endpoint}`;
    const gpu = encodeURIComponent(settings.gpu?.types?.[0] ?? 'local').replaceAll('%20', '+');
    const env: Record<string, string> = {
      ...workerBaseEnv(this.config, settings),
      RUNPOD_WEBHOOK_GET_JOB: `${base}/job-take/${workerId}?gpu=${gpu}`,
      RUNPOD_WEBHOOK_POST_OUTPUT: `${base}/job-done/${workerId}/$ID?gpu=${gpu}`,
      RUNPOD_WEBHOOK_POST_STREAM: `${base}/job-stream/${workerId}/$ID?gpu=${gpu}`,
      RUNPOD_WEBHOOK_PING: `${base}/ping/${workerId}`,
      RUNPOD_AI_API_KEY: token,
      RUNPOD_POD_ID: workerId,
      RUNPOD_POD_HOSTNAME: workerId,
      RUNPOD_ENDPOINT_ID: endpoint,
      RUNPOD_PING_INTERVAL: String(this.config.gateway.pingIntervalMs),
      // runpod-python's fitness checks dial 8.8.8.8, which a local machine may not reach.
      RUNPOD_SKIP_AUTO_SYSTEM_CHECKS: 'true',
    };
    this.#startBackoff.started(endpoint, workerId);
    this.#log.info(`starting worker ${workerId} for endpoint ${endpoint}: ${settings.worker.command}`);
    const proc = this.#driver.start({ endpoint, workerId, command: settings.worker.command, cwd: settings.worker.cwd, env });
    this.#processes.set(workerId, proc);
    void proc.exited.then(async (exit) => {
      this.#processes.delete(workerId);
      const info = this.registry.get(workerId);
      if (info?.readyAt !== null && info?.readyAt !== undefined) this.#startBackoff.ready(endpoint, workerId);
      else if (info?.state !== 'draining' && !this.#stopping.signal.aborted) {
        const { failures, delayMs } = this.#startBackoff.failed(endpoint, this.#clock.now());
        this.#log.warn(
          `worker ${workerId} of endpoint ${endpoint} exited before it was ready (${failures} in a row); next start in ${delayMs} ms: see its stderr above`,
          { endpoint, workerId, ...exit, failures, delayMs },
        );
      }
      this.#log.info(`worker ${workerId} exited`, exit);
      await this.#supervisor!.workerExited(workerId, exit);
      this.#requestScale();
    });
  }

  async #stopWorker(workerId: string): Promise<void> {
    const proc = this.#processes.get(workerId);
    if (!proc) return;
    this.registry.markDraining(workerId);
    this.#log.info(`stopping worker ${workerId}`);
    await proc.stop(this.config.gateway.stopGraceMs);
  }

  #kill(workerId: string, reason: string): void {
    this.#log.warn(`killing worker ${workerId}: ${reason}`);
    this.#processes.get(workerId)?.kill();
  }

  async #flushLogs(): Promise<void> {
    if (this.#pendingLogs.length === 0 || !this.#store) return;
    const lines = this.#pendingLogs.splice(0);
    await this.#store.appendLogs(lines);
  }
}

/** Default logger: one JSON line per message on stderr. */
const consoleLogger: GatewayLogger = {
  info: (message, fields) => void process.stderr.write(JSON.stringify({ level: 'info', time: Date.now(), message, ...fields }) + '\n'),
  warn: (message, fields) => void process.stderr.write(JSON.stringify({ level: 'warn', time: Date.now(), message, ...fields }) + '\n'),
  error: (message, fields) => void process.stderr.write(JSON.stringify({ level: 'error', time: Date.now(), message, ...fields }) + '\n'),
};

