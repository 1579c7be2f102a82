import { realClock, type Clock } from '@kiln/protocol';
import { Listeners } from './listeners.ts';

/** Longest a waiter sleeps before re-reading the store: other gateways on PostgreSQL change jobs without telling us. */
export const JOB_EVENTS_RECHECK_MS = 1000;

/** Told that job `jobId` of `endpoint` changed (see `JobEvents.subscribe`). */
export type JobChangeListener = (jobId: string, endpoint: string) => void;

/** A watch on one job's changes, started before reading the store (see `JobEvents.watch`). */
export interface JobWatch {
  /** Resolves on a change since the watch began, after `ms`, after the re-check interval, or when `signal` aborts. */
  wait(ms: number, signal?: AbortSignal): Promise<void>;
  /** Stops watching. */
  close(): void;
}

/**
 * In-process notifications that a job changed, for long-polls (runsync, status-sync, stream).
 * A notification is only a hint to re-read the store; the store stays the truth. Waits time
 * out on `clock`, so a manual clock drives them in tests.
 *
 * @example
 * const events = new JobEvents({ clock });
 * // a long-poll:
 * for (;;) {
 *   const change = events.watch(jobId);
 *   try {
 *     const job = await store.get(endpoint, jobId);
 *     if (isTerminalState(job.status) || clock.now() >= deadline) return job;
 *     await change.wait(deadline - clock.now(), signal);
 *   } finally {
 *     change.close();
 *   }
 * }
 * // whoever changed the job:
 * events.notify(job.id, job.endpoint);
 * // the admin feed, for every job:
 * const unsubscribe = events.subscribe((jobId, endpoint) => changed.add(`${endpoint}/${jobId}`));
 */
export class JobEvents {
  readonly #clock: Clock;
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #listeners = new Listeners<Parameters<JobChangeListener>>();

  constructor(options: { clock?: Clock } = {}) {
    this.#clock = options.clock ?? realClock;
  }

  /** Wakes everyone waiting on `jobId` of `endpoint`, and tells every {@link JobEvents.subscribe} listener. */
  notify(jobId: string, endpoint: string): void {
    const set = this.#waiters.get(jobId);
    if (set) {
      this.#waiters.delete(jobId);
      for (const wake of set) wake();
    }
    this.#listeners.emit(jobId, endpoint);
  }

  /**
   * Calls `listener` on every `notify` (any job, any endpoint), synchronously: listeners should
   * only record the id and read the store later. Returns the unsubscribe.
   */
  subscribe(listener: JobChangeListener): () => void {
    return this.#listeners.add(listener);
  }

  /** How many `subscribe` listeners are registered (for tests). */
  get subscribers(): number {
    return this.#listeners.size;
  }

  /**
   * Starts watching `jobId` now. `wait()` resolves at once if a `notify(jobId)` came after this
   * call, so a change that lands between reading the store and waiting is never missed: watch,
   * then read, then wait. `close()` when done.
   */
  watch(jobId: string): JobWatch {
    const woken = new AbortController();
    const wake = () => woken.abort();
    let set = this.#waiters.get(jobId);
    if (!set) {
      set = new Set();
      this.#waiters.set(jobId, set);
    }
    set.add(wake);
    return {
      wait: async (ms: number, signal?: AbortSignal) => {
        if (woken.signal.aborted || signal?.aborted) return;
        signal?.addEventListener('abort', wake, { once: true });
        try {
          await this.#clock.sleep(Math.max(0, Math.min(ms, JOB_EVENTS_RECHECK_MS)), woken.signal);
        } finally {
          signal?.removeEventListener('abort', wake);
        }
      },
      close: () => {
        const current = this.#waiters.get(jobId);
        current?.delete(wake);
        if (current?.size === 0) this.#waiters.delete(jobId);
      },
    };
  }

  /** How many waits are pending (for tests and metrics). */
  get waiting(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }
}
