/** Time as the worker runtime sees it: injected so tests never sleep. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or early (never rejects) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The wall clock, backed by `setTimeout`. */
export const realClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
  },
};

interface PendingSleep {
  requested: number;
  due: number;
  resolve: () => void;
}

/**
 * A clock that only moves when told to: `advance(ms)` wakes every sleeper whose time has come.
 *
 * @example
 * const clock = new ManualClock();
 * const slept = clock.sleep(5000);
 * await clock.advance(5000); // `slept` resolves now
 */
export class ManualClock implements Clock {
  #now: number;
  #sleeps: PendingSleep[] = [];
  #waiters: (() => void)[] = [];

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const entry: PendingSleep = { requested: ms, due: this.#now + Math.max(0, ms), resolve: () => {} };
      entry.resolve = () => {
        this.#sleeps = this.#sleeps.filter((s) => s !== entry);
        signal?.removeEventListener('abort', entry.resolve);
        resolve();
      };
      signal?.addEventListener('abort', entry.resolve, { once: true });
      this.#sleeps.push(entry);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** Durations (from now) of the sleeps currently pending, shortest first. */
  pending(): number[] {
    return this.#sleeps.map((s) => s.due - this.#now).sort((a, b) => a - b);
  }

  /** Resolves once a sleep of exactly `requestedMs` is pending (checks at once, then on every new sleep). */
  async waitForSleep(requestedMs: number): Promise<void> {
    while (!this.#sleeps.some((s) => s.requested === requestedMs)) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Moves time forward and resolves the sleeps that became due, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      const next = this.#sleeps.filter((s) => s.due <= target).sort((a, b) => a.due - b.due)[0];
      if (!next) break;
      this.#now = Math.max(this.#now, next.due);
      next.resolve();
      // Let the woken code run (and perhaps schedule new sleeps) before the next one fires.
      await new Promise((r) => setImmediate(r));
    }
    this.#now = target;
  }
}
