import type { DoneBody } from '@kiln/protocol';
import type { Clock } from '@kiln/protocol';
import type { HttpClient } from './http-client.ts';
import type { JobChannel } from './job-runner.ts';
import type { JobUrls } from './job-urls.ts';
import type { Logger } from './log.ts';

/** Waits before the 2nd and 3rd try of a job-done or job-stream post that got a 5xx (runpod-python's Fibonacci retry). */
export const POST_RETRY_WAITS_MS = [2000, 3000] as const;

/** What posting needs. */
export interface PosterDeps {
  http: HttpClient;
  urls: JobUrls;
  headers: Record<string, string>;
  clock: Clock;
  log: Logger;
}

/**
 * Sends one job's progress updates, stream chunks and final result to the platform, strictly in
 * order, so a progress post can never land after the result (runpod-python#250). Progress updates
 * that pile up while one is in flight are coalesced into the latest.
 */
export class JobPoster implements JobChannel {
  readonly #jobId: string;
  readonly #deps: PosterDeps;
  readonly #log: Logger;
  #chain: Promise<void> = Promise.resolve();
  #queuedProgress: { value: unknown; sent: Promise<void> } | undefined;

  constructor(jobId: string, deps: PosterDeps) {
    this.#jobId = jobId;
    this.#deps = deps;
    this.#log = deps.log.forJob(jobId);
  }

  progress(value: unknown): Promise<void> {
    if (this.#queuedProgress) {
      this.#queuedProgress.value = value;
      return this.#queuedProgress.sent;
    }
    const entry: { value: unknown; sent: Promise<void> } = { value, sent: Promise.resolve() };
    entry.sent = this.#enqueue(async () => {
      if (this.#queuedProgress === entry) this.#queuedProgress = undefined;
      await this.#post(this.#deps.urls.done(this.#jobId, false), { status: 'IN_PROGRESS', output: entry.value }, 'progress', 1);
    });
    this.#queuedProgress = entry;
    return entry.sent;
  }

  chunk(value: unknown): Promise<void> {
    return this.#enqueue(() => this.#post(this.#deps.urls.stream(this.#jobId), { output: value }, 'stream chunk', 3));
  }

  /** Posts the final result after everything queued before it. */
  finish(body: DoneBody, isStream: boolean): Promise<void> {
    return this.#enqueue(() => this.#post(this.#deps.urls.done(this.#jobId, isStream), body, 'result', 3));
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(task);
    this.#chain = next.catch(() => {});
    return next;
  }

  async #post(url: string, body: unknown, what: string, attempts: number): Promise<void> {
    const text = JSON.stringify(body);
    for (let attempt = 1; ; attempt++) {
      let status = 0;
      let failure = '';
      try {
        const res = await this.#deps.http.request(url, { method: 'POST', headers: this.#deps.headers, body: text, timeoutMs: 60_000 });
        status = res.status;
        if (status >= 200 && status < 300) return;
        failure = `${status} ${res.body.slice(0, 200)}`;
      } catch (err) {
        failure = err instanceof Error ? err.message : String(err);
      }
      // 4xx means the platform refused this body: sending it again cannot help.
      const retryable = status === 0 || status >= 500;
      const wait = POST_RETRY_WAITS_MS[attempt - 1];
      if (!retryable || attempt >= attempts || wait === undefined) {
        this.#log.error(`Failed to return job ${what} | ${failure}`, { bytes: Buffer.byteLength(text) });
        return;
      }
      this.#log.warn(`posting job ${what} failed (${failure}); retrying in ${wait} ms`);
      await this.#deps.clock.sleep(wait);
    }
  }
}
