import type { StatusObject } from '@kiln/protocol';
import type { JobRecord } from './job-store.ts';

/** What the status object is made of: a whole JobRecord, or a listing's JobSummary (which has no output). */
export type StatusFields = Pick<JobRecord, 'id' | 'status' | 'takenAt' | 'queuedAt' | 'finishedAt' | 'output' | 'error' | 'workerId' | 'retries'>;

/**
 * A job as RunPod's `/status` shows it: `delayTime` = pickup − queued, `executionTime` =
 * (finished, or now while running) − pickup; keys that are unknown (not picked up yet, no
 * output, no error) are left out. While IN_PROGRESS, `output` is the last progress update.
 *
 * @example
 * return c.json(toStatusObject(job, ctx.clock.now()));
 */
export function toStatusObject(job: StatusFields, now: number): StatusObject {
  const view: StatusObject = { id: job.id, status: job.status };
  // A requeued or retried job may keep the pickup time of its previous attempt: that one does not count.
  if (job.takenAt !== null && job.takenAt >= job.queuedAt) {
    view.delayTime = job.takenAt - job.queuedAt;
    view.executionTime = Math.max(0, (job.finishedAt ?? now) - job.takenAt);
  }
  if (job.output !== undefined) view.output = job.output;
  if (job.error !== null) view.error = job.error;
  if (job.workerId !== null) view.workerId = job.workerId;
  if (job.retries > 0) view.retries = job.retries;
  return view;
}
