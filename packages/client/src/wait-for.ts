import { CLIENT_LIMITS } from '@kiln/protocol';
import { NotFoundError } from './errors.ts';
import type { Transport } from './http.ts';
import { isFinished, progressReporter } from './job-status.ts';
import type { FinishedJob, JobStatus } from './job-status.ts';

/** Options of `waitFor()` (and of `runSync()` once its first answer was not final). */
export interface WaitForOptions {
  /** Stops waiting: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called with each new progress update (the `output` of an IN_PROGRESS job), each distinct value once. */
  onProgress?: (progress: unknown) => void;
  /**
   * How often to look at the job when the server cannot hold a request until it ends (default
   * 1000 ms; doubles while nothing changes, up to 10 s). With `onProgress`, also the longest a
   * progress update waits to be seen (at least 1 s, `status-sync`'s shortest wait).
   */
  pollMs?: number;
}

/** What waiting needs from its endpoint. */
export interface WaitContext {
  readonly transport: Transport;
  status(jobId: string, signal?: AbortSignal): Promise<JobStatus<unknown>>;
  statusSync(jobId: string, waitMs: number, signal?: AbortSignal): Promise<JobStatus<unknown>>;
}

/** Default of {@link WaitForOptions.pollMs}. */
export const WAIT_POLL_MS = 1000;
const WAIT_POLL_MAX_MS = 10_000;

/**
 * Waits until the job is final and returns its status object. Long-polls `status-sync`, which the
 * server holds until the job ends (up to 90 s a request; with `onProgress`, `pollMs` so that
 * progress shows). When a server answers at once anyway, or has no `status-sync` (404 there while
 * `/status` knows the job), it polls with a pause that doubles while nothing changes.
 */
export async function waitForJob<Output>(ctx: WaitContext, jobId: string, options: WaitForOptions = {}): Promise<FinishedJob<Output>> {
  const { signal, onProgress } = options;
  const { clock } = ctx.transport;
  const pollMs = options.pollMs ?? WAIT_POLL_MS;
  const { min, default: longest } = CLIENT_LIMITS.runsyncWait;
  const holdMs = onProgress ? Math.max(min, pollMs) : longest;
  let useStatusSync = true;
  const reportProgress = progressReporter(onProgress);
  let pause = pollMs;
  for (;;) {
    signal?.throwIfAborted();
    const askedAt = clock.now();
    let job: JobStatus<unknown>;
    if (useStatusSync) {
      try {
        job = await ctx.statusSync(jobId, holdMs, signal);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        // A 404 from /status too means the job is gone: that error is the answer.
        job = await ctx.status(jobId, signal);
        useStatusSync = false;
      }
    } else {
      job = await ctx.status(jobId, signal);
    }
    if (isFinished(job)) return job as FinishedJob<Output>;
    const changed = reportProgress(job);
    const held = clock.now() - askedAt >= holdMs / 2;
    if (useStatusSync && held) {
      pause = pollMs;
      continue;
    }
    if (changed) pause = pollMs;
    await clock.sleep(pause, signal);
    pause = Math.min(pause * 2, WAIT_POLL_MAX_MS);
  }
}
