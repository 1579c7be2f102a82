/** First pause after a worker of an endpoint exits before it was ever ready; it doubles with each failure in a row. */
export const START_BACKOFF_INITIAL_MS = 1000;
/** Longest pause between two starts of a worker that keeps failing. */
export const START_BACKOFF_MAX_MS = 60_000;

/**
 * Per endpoint: how long to wait before starting another worker after workers exited before they
 * were ever ready (a missing module, a syntax error, a bad command, out of GPU memory while
 * loading). Without it the gateway would restart a broken worker as fast as it dies while a job
 * waits. While an endpoint is failing, one probe worker starts after each pause and no other
 * until that probe fails (the pause doubles) or gets ready (back to normal scaling). Workers that
 * were ready before the failures began do not clear them.
 *
 * @example
 * const backoff = new StartBackoff();
 * backoff.failed('tts', now);          // { failures: 1, delayMs: 1000 }
 * backoff.startsAllowed('tts', now);   // 0 until now + 1000, then 1
 * backoff.started('tts', 'tts-ab12');  // the probe: 0 more until it fails or gets ready
 * backoff.ready('tts', 'tts-ab12');    // back to normal scaling
 */
export class StartBackoff {
  readonly #failing = new Map<string, { failures: number; retryAt: number; probe: string | null }>();

  /** A worker of `endpoint` exited before it was ready, at `now`: returns the failures in a row and the pause before the next start. */
  failed(endpoint: string, now: number): { failures: number; delayMs: number } {
    const failures = (this.#failing.get(endpoint)?.failures ?? 0) + 1;
    const delayMs = Math.min(START_BACKOFF_MAX_MS, START_BACKOFF_INITIAL_MS * 2 ** (failures - 1));
    this.#failing.set(endpoint, { failures, retryAt: now + delayMs, probe: null });
    return { failures, delayMs };
  }

  /** A worker of a failing `endpoint` was started: it is the probe, and no other starts until it fails or gets ready. */
  started(endpoint: string, workerId: string): void {
    const failing = this.#failing.get(endpoint);
    if (failing) failing.probe = workerId;
  }

  /** Worker `workerId` of `endpoint` got ready: when it is the probe, the endpoint's failures are forgotten. */
  ready(endpoint: string, workerId: string): void {
    if (this.#failing.get(endpoint)?.probe === workerId) this.#failing.delete(endpoint);
  }

  /** How many new workers `endpoint` may start at `now`: unlimited when it is not failing, else 1 once the pause is over and no probe runs. */
  startsAllowed(endpoint: string, now: number): number {
    const failing = this.#failing.get(endpoint);
    if (!failing) return Number.POSITIVE_INFINITY;
    return failing.probe === null && now >= failing.retryAt ? 1 : 0;
  }
}
