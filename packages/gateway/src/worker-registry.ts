import { timingSafeEqual } from 'node:crypto';
import type { Clock, HealthWorkers } from '@kiln/protocol';

/** A worker's state, as the gateway tracks it (DESIGN.md: initializing → idle ⇄ running → draining → stopped, plus unhealthy). */
export type WorkerState = 'initializing' | 'idle' | 'running' | 'draining' | 'stopped' | 'unhealthy';

/** What the worker API needs to know about workers; implemented by the gateway's worker registry. */
export interface WorkerAccess {
  /**
   * True when `authorization` (the raw `Authorization` header: RunPod workers send the key raw,
   * without `Bearer`) is the token of worker `workerId`, and that worker belongs to `endpoint`.
   */
  authenticate(endpoint: string, workerId: string, authorization: string | undefined): boolean;
  /** A ping arrived: the ids of jobs the worker says it holds, and its health report if any. */
  recordPing(workerId: string, report: { jobIds: string[]; unhealthy?: { check: string; reason: string } }): void;
  /** The worker asked for jobs (it is up and idle or has free slots). */
  recordTake(workerId: string): void;
  /** Asks worker `workerId` to stop job `jobId` (cancelled or timed out) through its job-stop long-poll. */
  requestStop(workerId: string, jobId: string): void;
  /** Job ids the gateway wants this worker to stop (cancelled or timed out), taken once. */
  takeStops(workerId: string): string[];
  /** Resolves when `takeStops(workerId)` has something, or when `signal` aborts. */
  waitForStops(workerId: string, signal: AbortSignal): Promise<void>;
  /** The worker reported stopPod: recycle it once its results are in. */
  requestRecycle(workerId: string): void;
}

/** What the gateway knows about one worker process. */
export interface WorkerInfo {
  readonly workerId: string;
  readonly endpoint: string;
  state: WorkerState;
  /** When the process was spawned. */
  readonly startedAt: number;
  /** First job-take: the worker finished its cold start (spawn → ready). */
  readyAt: number | null;
  lastPingAt: number | null;
  lastTakeAt: number | null;
  /** Since when it has held no job (for idleTimeout), or null while busy / not ready. */
  idleSince: number | null;
  /** Job ids the worker said it holds in its last ping. */
  reportedJobs: string[];
  /** Set when a ping said `status=unhealthy` (e.g. setup failed). */
  unhealthy: { check: string; reason: string } | null;
  /** The worker asked to be recycled (`stopPod`). */
  recycle: boolean;
  /** Time inside the worker's `setup()`, from its `setup finished` log line; null until it says. */
  setupMs: number | null;
}

interface Entry {
  info: WorkerInfo;
  token: Buffer;
  stops: string[];
  stopWaiters: Set<() => void>;
}

/**
 * The gateway's table of live workers: per-worker tokens (a worker can act only as itself and only
 * on its endpoint), ping and take bookkeeping, pending job-stop requests, and state for scaling.
 */
export class WorkerRegistry implements WorkerAccess {
  readonly #clock: Clock;
  readonly #workers = new Map<string, Entry>();

  constructor(options: { clock: Clock }) {
    this.#clock = options.clock;
  }

  /** Adds a worker that is being spawned (state `initializing`). */
  register(worker: { workerId: string; endpoint: string; token: string }): WorkerInfo {
    const info: WorkerInfo = {
      workerId: worker.workerId,
      endpoint: worker.endpoint,
      state: 'initializing',
      startedAt: this.#clock.now(),
      readyAt: null,
      lastPingAt: null,
      lastTakeAt: null,
      idleSince: null,
      reportedJobs: [],
      unhealthy: null,
      recycle: false,
      setupMs: null,
    };
    this.#workers.set(worker.workerId, { info, token: Buffer.from(worker.token), stops: [], stopWaiters: new Set() });
    return info;
  }

  /** Forgets a worker (its process exited). Wakes its job-stop long-poll so it ends. */
  unregister(workerId: string): void {
    const entry = this.#workers.get(workerId);
    if (!entry) return;
    entry.info.state = 'stopped';
    this.#workers.delete(workerId);
    for (const wake of entry.stopWaiters) wake();
  }

  /** One worker, if registered. */
  get(workerId: string): WorkerInfo | undefined {
    return this.#workers.get(workerId)?.info;
  }

  /** Registered workers, optionally of one endpoint. */
  list(endpoint?: string): WorkerInfo[] {
    const all = [...this.#workers.values()].map((e) => e.info);
    return endpoint === undefined ? all : all.filter((w) => w.endpoint === endpoint);
  }

  authenticate(endpoint: string, workerId: string, authorization: string | undefined): boolean {
    const entry = this.#workers.get(workerId);
    if (!entry || entry.info.endpoint !== endpoint || authorization === undefined) return false;
    const given = Buffer.from(authorization.replace(/^Bearer\s+/i, ''));
    return given.length === entry.token.length && timingSafeEqual(given, entry.token);
  }

  recordPing(workerId: string, report: { jobIds: string[]; unhealthy?: { check: string; reason: string } }): void {
    const info = this.#workers.get(workerId)?.info;
    if (!info) return;
    info.lastPingAt = this.#clock.now();
    info.reportedJobs = report.jobIds;
    if (report.unhealthy) {
      info.unhealthy = report.unhealthy;
      info.state = 'unhealthy';
    }
  }

  recordTake(workerId: string): void {
    const info = this.#workers.get(workerId)?.info;
    if (!info) return;
    const now = this.#clock.now();
    info.lastTakeAt = now;
    if (info.readyAt === null) info.readyAt = now;
    if (info.state === 'initializing') {
      info.state = 'idle';
      info.idleSince = now;
    }
  }

  /**
   * Updates `running`/`idle` from how many jobs the store says the worker holds. Unhealthy,
   * draining and initializing workers keep their state.
   */
  setHeldCount(workerId: string, held: number): void {
    const info = this.#workers.get(workerId)?.info;
    if (!info || (info.state !== 'idle' && info.state !== 'running')) return;
    if (held > 0) {
      info.state = 'running';
      info.idleSince = null;
    } else if (info.state === 'running') {
      info.state = 'idle';
      info.idleSince = this.#clock.now();
    }
  }

  /** Marks a worker as going away (SIGTERM sent): no more scaling decisions count it. */
  markDraining(workerId: string): void {
    const info = this.#workers.get(workerId)?.info;
    if (info && info.state !== 'stopped') info.state = 'draining';
  }

  requestStop(workerId: string, jobId: string): void {
    const entry = this.#workers.get(workerId);
    if (!entry) return;
    if (!entry.stops.includes(jobId)) entry.stops.push(jobId);
    for (const wake of entry.stopWaiters) wake();
  }

  takeStops(workerId: string): string[] {
    const entry = this.#workers.get(workerId);
    return entry ? entry.stops.splice(0) : [];
  }

  waitForStops(workerId: string, signal: AbortSignal): Promise<void> {
    const entry = this.#workers.get(workerId);
    if (!entry || entry.stops.length > 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        entry.stopWaiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      entry.stopWaiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** The worker logged how long its `setup()` took. */
  recordSetup(workerId: string, setupMs: number): void {
    const info = this.#workers.get(workerId)?.info;
    if (info) info.setupMs = setupMs;
  }

  requestRecycle(workerId: string): void {
    const info = this.#workers.get(workerId)?.info;
    if (info) info.recycle = true;
  }

  /** Worker counts in `/health`'s shape. */
  counts(endpoint: string): HealthWorkers {
    const list = this.list(endpoint);
    const count = (state: WorkerState) => list.filter((w) => w.state === state).length;
    return {
      idle: count('idle'),
      running: count('running'),
      initializing: count('initializing'),
      ready: count('idle'),
      throttled: 0,
      unhealthy: count('unhealthy'),
    };
  }
}
