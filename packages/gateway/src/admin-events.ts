import type { AdminEvent, ListedJob, WorkerView } from '@kiln/protocol';
import { toListedJob, workerViews } from './admin-views.ts';
import type { GatewayContext } from './http-app.ts';
import { SSE_HEADERS, SSE_PING, SSE_PING_MS, formatSseEvent } from './sse-stream.ts';

/** How often each endpoint's workers are compared with what the feed last sent. */
export const WORKERS_CHECK_MS = 1000;
/** Events a client may leave unread before its feed is closed (it reconnects and reloads). */
export const MAX_UNREAD_EVENTS = 1000;

type Send = (event: AdminEvent) => void;

interface Client {
  /** Only events of this endpoint; all when undefined. */
  endpoint: string | undefined;
  send: Send;
}

/**
 * The admin API's live feed, shared by every `GET /kiln/v1/events` client of one app: job changes
 * (from `ctx.events.subscribe`, coalesced and read from the store once per flush, whatever the
 * number of clients), worker changes (compared every {@link WORKERS_CHECK_MS} on the clock),
 * metrics samples and model progress. It listens to nothing while no client is connected.
 *
 * @example
 * const feed = new AdminFeed(ctx);
 * return feed.respond(c.req.raw, c.req.query('endpoint'));
 */
export class AdminFeed {
  readonly #ctx: GatewayContext;
  readonly #clients = new Set<Client>();
  /** Changed job ids by endpoint, waiting for the next flush. */
  readonly #changed = new Map<string, Set<string>>();
  #flushScheduled = false;
  #flushing: Promise<void> = Promise.resolve();
  /** What was last sent of each endpoint's workers (a key without uptime, which always changes). */
  readonly #lastWorkers = new Map<string, string>();
  #release: (() => void) | undefined;

  constructor(ctx: GatewayContext) {
    this.#ctx = ctx;
  }

  /** Connected clients (for tests). */
  get clients(): number {
    return this.#clients.size;
  }

  /**
   * A `text/event-stream` response of the feed for one client, optionally of one endpoint (the
   * caller checked it exists). Ends when the client disconnects (request signal or body cancel),
   * which releases everything it held.
   */
  respond(request: Request, endpoint: string | undefined): Response {
    const encoder = new TextEncoder();
    const stop = new AbortController();
    let client: Client | undefined;
    const release = () => {
      if (stop.signal.aborted) return;
      stop.abort();
      request.signal.removeEventListener('abort', release);
      if (client) this.#remove(client);
    };
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          if (request.signal.aborted) {
            stop.abort();
            controller.close();
            return;
          }
          request.signal.addEventListener('abort', release, { once: true });
          const write = (text: string) => {
            if (stop.signal.aborted) return;
            // A client that stopped reading is let go rather than buffered without end.
            if ((controller.desiredSize ?? 0) < -MAX_UNREAD_EVENTS) {
              release();
              try {
                controller.close();
              } catch {
                // Already closed.
              }
              return;
            }
            controller.enqueue(encoder.encode(text));
          };
          client = { endpoint, send: (event) => write(formatSseEvent(event.event, event.data)) };
          // A first comment gets the headers and the stream going through proxies at once.
          write(': kiln admin events\n\n');
          this.#add(client);
          void this.#ping(write, stop.signal);
        },
        cancel: release,
      },
      { highWaterMark: 1 },
    );
    return new Response(body, { status: 200, headers: SSE_HEADERS });
  }

  async #ping(write: (text: string) => void, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#ctx.clock.sleep(SSE_PING_MS, signal);
      if (!signal.aborted) write(SSE_PING);
    }
  }

  #add(client: Client): void {
    this.#clients.add(client);
    if (this.#clients.size === 1) this.#listen();
    else void this.#sendWorkersTo(client);
  }

  #remove(client: Client): void {
    if (!this.#clients.delete(client)) return;
    if (this.#clients.size === 0) {
      this.#release?.();
      this.#release = undefined;
      this.#changed.clear();
      this.#lastWorkers.clear();
    }
  }

  /** Subscribes to every source; the returned release is kept in `#release`. */
  #listen(): void {
    const ctx = this.#ctx;
    const stop = new AbortController();
    const releases: (() => void)[] = [() => stop.abort()];
    releases.push(
      ctx.events.subscribe((jobId, endpoint) => {
        let ids = this.#changed.get(endpoint);
        if (!ids) {
          ids = new Set();
          this.#changed.set(endpoint, ids);
        }
        ids.add(jobId);
        this.#scheduleFlush();
      }),
    );
    if (ctx.metrics) releases.push(ctx.metrics.subscribe((endpoint, sample) => this.#broadcast(endpoint, { event: 'metrics', data: { endpoint, sample } })));
    if (ctx.models) releases.push(ctx.models.subscribe((model) => this.#broadcast(undefined, { event: 'model', data: { model } })));
    void this.#watchWorkers(stop.signal);
    this.#release = () => {
      for (const release of releases) release();
    };
  }

  /** Jobs are flushed on the next turn of the event loop: a completion reaches browsers within milliseconds. */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      // One flush at a time, so events of one job are never sent out of order.
      this.#flushing = this.#flushing.then(() => this.#flush()).catch((err: unknown) => {
        this.#ctx.log.error(`admin events: reading changed jobs failed: ${err instanceof Error ? err.message : String(err)}`);
      });
    });
  }

  async #flush(): Promise<void> {
    const batches = [...this.#changed];
    this.#changed.clear();
    for (const [endpoint, ids] of batches) {
      if (![...this.#clients].some((c) => c.endpoint === undefined || c.endpoint === endpoint)) continue;
      const jobs = await Promise.all([...ids].map((id) => this.#ctx.store.get(endpoint, id)));
      const now = this.#ctx.clock.now();
      const listed: ListedJob[] = [];
      for (const job of jobs) if (job) listed.push(toListedJob(job, now, true));
      if (listed.length > 0) this.#broadcast(endpoint, { event: 'jobs', data: { endpoint, jobs: listed } });
    }
  }

  async #watchWorkers(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        for (const endpoint of Object.keys(this.#ctx.config.endpoints)) {
          const workers = this.#ctx.listWorkers?.(endpoint) ?? [];
          const key = JSON.stringify(workers.map((w) => [w.workerId, w.state, w.readyAt, w.setupMs, w.unhealthy, w.reportedJobs]));
          if (this.#lastWorkers.get(endpoint) === key) continue;
          const views = await this.#workerViews(endpoint);
          if (signal.aborted) return;
          this.#lastWorkers.set(endpoint, key);
          this.#broadcast(endpoint, { event: 'workers', data: { endpoint, workers: views } });
        }
      } catch (err) {
        this.#ctx.log.error(`admin events: reading workers failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      await this.#ctx.clock.sleep(WORKERS_CHECK_MS, signal);
    }
  }

  /** A client that joins later gets the current workers of its endpoints at once (the first client gets them from the watch). */
  async #sendWorkersTo(client: Client): Promise<void> {
    try {
      for (const endpoint of Object.keys(this.#ctx.config.endpoints)) {
        if (client.endpoint !== undefined && client.endpoint !== endpoint) continue;
        if (!this.#lastWorkers.has(endpoint)) continue;
        client.send({ event: 'workers', data: { endpoint, workers: await this.#workerViews(endpoint) } });
      }
    } catch (err) {
      this.#ctx.log.error(`admin events: reading workers failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async #workerViews(endpoint: string): Promise<WorkerView[]> {
    return workerViews(this.#ctx.store, this.#ctx.listWorkers?.(endpoint) ?? [], this.#ctx.clock.now());
  }

  /** Sends to every client of `endpoint` (all clients when undefined). */
  #broadcast(endpoint: string | undefined, event: AdminEvent): void {
    for (const client of this.#clients) if (endpoint === undefined || client.endpoint === undefined || client.endpoint === endpoint) client.send(event);
  }
}
