import { isTerminalState, parseStatusObject } from '@kiln/protocol';
import type { JobState } from '@kiln/protocol';
import { JobFailedError } from './errors.ts';

/** Fields every status object may carry, whatever the state. */
export interface JobStatusFields {
  id: string;
  /** ms from submission to pickup by a worker. */
  delayTime?: number;
  /** ms from pickup to the end (or to now, while running). */
  executionTime?: number;
  /** RunPod's error string (runpod-python and kiln send a JSON object as a string). */
  error?: string;
  /** The worker that ran (or runs) the job. */
  workerId?: string;
  /** How many times the job was retried. */
  retries?: number;
  /** Keys a server adds that this client does not know are kept as they came. */
  [key: string]: unknown;
}

/** A job that is waiting or running; while IN_PROGRESS, `output` is the latest progress update. */
export interface PendingJob extends JobStatusFields {
  status: 'IN_QUEUE' | 'IN_PROGRESS';
  output?: unknown;
}

/** A job that finished with a result. */
export interface CompletedJob<Output> extends JobStatusFields {
  status: 'COMPLETED';
  /** Absent when the handler returned nothing RunPod keeps (e.g. `{}` in runpod-python). */
  output?: Output;
}

/** A job that ended without a result: `error` says why when the worker or the server said so. */
export interface UnsuccessfulJob extends JobStatusFields {
  status: 'FAILED' | 'CANCELLED' | 'TIMED_OUT';
  output?: unknown;
}

/** A job in a final state. */
export type FinishedJob<Output> = CompletedJob<Output> | UnsuccessfulJob;

/** A job's status object, as `/status`, `/status-sync` and `/runsync` return it, narrowed by `status`. */
export type JobStatus<Output> = PendingJob | FinishedJob<Output>;

/** Answer of `run`, `cancel` and `retry`. */
export interface JobRef {
  id: string;
  status: JobState;
}

/** Whether the job is in a final state (COMPLETED, FAILED, CANCELLED or TIMED_OUT). */
export function isFinished<Output>(job: JobStatus<Output>): job is FinishedJob<Output> {
  return isTerminalState(job.status);
}

/**
 * The output of a finished job, or {@link JobFailedError} when it ended FAILED, CANCELLED or
 * TIMED_OUT.
 *
 * @example
 * const audio = outputOf(await tts.runSync({ text: 'hi' }));
 */
export function outputOf<Output>(job: FinishedJob<Output>): Output {
  if (job.status === 'COMPLETED') return job.output as Output;
  if (!isTerminalState(job.status)) throw new TypeError(`job ${job.id} is still ${String(job.status)}: it has no output yet`);
  throw new JobFailedError(job);
}

/**
 * Calls `onProgress` with the `output` of an IN_PROGRESS job when it differs from the last one it
 * was called with (status polls see the same update many times); the returned function says
 * whether it called it.
 */
export function progressReporter(onProgress: ((progress: unknown) => void) | undefined): (job: JobStatus<unknown>) => boolean {
  let last: string | undefined;
  return function reportProgress(job) {
    if (!onProgress || job.status !== 'IN_PROGRESS' || job.output === undefined) return false;
    const key = JSON.stringify(job.output);
    if (key === last) return false;
    last = key;
    onProgress(job.output);
    return true;
  };
}

/**
 * Checks a status object's shape (throws `ProtocolParseError` naming the field) and returns it
 * as it came, extra keys included.
 */
export function readJobStatus<Output>(body: unknown): JobStatus<Output> {
  parseStatusObject(body);
  return body as JobStatus<Output>;
}
