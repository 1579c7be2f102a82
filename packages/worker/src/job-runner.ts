import { mkdirSync, mkdtempSync, rm } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WORKER_LIMITS, type DoneBody, type Job } from '@kiln/protocol';
import type { Clock } from '@kiln/protocol';
import { JobAbortedError, type HandlerContext, type JobAbortCause, type WorkerDefinition } from './define-worker.ts';
import { describe, errorString, thrownErrorString, type ErrorOrigin } from './error-body.ts';
import type { Logger } from './log.ts';
import type { SetupGate } from './setup-gate.ts';
import { validateInput, type StandardSchemaV1 } from './standard-schema.ts';

/** How a job ended, as far as the platform is concerned. */
export type JobOutcome =
  /** Post `body` to job-done with `isStream`. */
  | { kind: 'result'; body: DoneBody; isStream: boolean; failed: boolean; timedOut?: boolean }
  /** Post nothing: the platform stopped the job (job-stop) or the worker is going away (the platform requeues it). */
  | { kind: 'abandoned'; cause: JobAbortCause };

/** Where a running job's intermediate messages go. */
export interface JobChannel {
  /** Sends a progress update; resolves when it was delivered (or given up). */
  progress(value: unknown): Promise<void>;
  /** Sends one stream chunk; resolves when it was delivered. Chunks are sent one at a time, in order. */
  chunk(value: unknown): Promise<void>;
}

/** A job in flight: its abort switch and its eventual outcome. */
export interface RunningJob {
  id: string;
  abort(cause: JobAbortCause): void;
  outcome: Promise<JobOutcome>;
  /** True once `refreshWorker()` was called or the result asked for it. */
  readonly refresh: boolean;
}

/** What running a job needs besides the job. */
export interface JobRunnerDeps {
  definition: WorkerDefinition<StandardSchemaV1 | undefined, unknown, unknown, unknown>;
  setup: SetupGate<unknown>;
  clock: Clock;
  log: Logger;
  origin: ErrorOrigin;
  channel: JobChannel;
  /** Root for per-job temporary folders. */
  tmpRoot?: string;
}

const DEFAULT_ABORT_GRACE_MS = 5000;

/**
 * Starts one job: waits for setup, validates input, calls the handler with its context, follows
 * streams, enforces the execution timeout, and turns whatever happened into RunPod's done body.
 * Never rejects.
 */
export function startJob(job: Job, deps: JobRunnerDeps): RunningJob {
  const controller = new AbortController();
  let refresh = deps.definition.refreshWorker === true;
  const abort = (cause: JobAbortCause) => {
    if (controller.signal.aborted) return;
    controller.abort(new JobAbortedError(cause, abortMessage(cause, executionTimeoutOf(job, deps))));
  };
  const outcome = runJob(job, deps, controller, () => {
    refresh = true;
  }).then((o) => (refresh && o.kind === 'result' ? { ...o, body: { ...o.body, stopPod: true } } : o));
  return {
    id: job.id,
    abort,
    outcome,
    get refresh() {
      return refresh;
    },
  };
}

function executionTimeoutOf(job: Job, deps: JobRunnerDeps): number | undefined {
  const policy = job['policy'];
  if (typeof policy === 'object' && policy !== null) {
    const t = (policy as Record<string, unknown>)['executionTimeout'];
    if (typeof t === 'number' && Number.isFinite(t) && t > 0) return t;
  }
  return deps.definition.executionTimeoutMs;
}

function abortMessage(cause: JobAbortCause, timeoutMs: number | undefined): string {
  switch (cause) {
    case 'job-stop':
      return 'job was cancelled by the platform (job-stop)';
    case 'execution-timeout':
      return `job exceeded its execution timeout of ${timeoutMs} ms`;
    case 'shutdown':
      return 'worker is shutting down';
  }
}

async function runJob(job: Job, deps: JobRunnerDeps, controller: AbortController, markRefresh: () => void): Promise<JobOutcome> {
  const { definition, origin, clock } = deps;
  const log = deps.log.forJob(job.id);
  const signal = controller.signal;
  const fail = (type: string, message: string, traceback = '', extra: Record<string, unknown> = {}): JobOutcome => ({
    kind: 'result',
    body: { error: errorString(origin, type, message, traceback, extra) },
    isStream: false,
    failed: true,
  });

  await deps.setup.run();
  if (deps.setup.state === 'failed') {
    const f = deps.setup.failure!;
    return fail(f.type, f.message, f.traceback);
  }
  if (signal.aborted) return abandonedOrFailed(signal, fail);

  let input: unknown = job.input;
  if (definition.input) {
    const checked = await validateInput(definition.input, job.input);
    if (!checked.ok) {
      const summary = checked.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      log.warn(`input rejected: ${summary}`);
      return fail('InputValidationError', `invalid input: ${summary}`, '', { issues: checked.issues });
    }
    input = checked.value;
  }

  let tmpDir: string | undefined;
  const ctx: HandlerContext<unknown> = {
    workerId: origin.workerId,
    state: deps.setup.value,
    signal,
    get tmpDir() {
      if (tmpDir === undefined) {
        const root = deps.tmpRoot ?? os.tmpdir();
        mkdirSync(root, { recursive: true });
        tmpDir = mkdtempSync(path.join(root, `kiln-job-${job.id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40)}-`));
      }
      return tmpDir;
    },
    log,
    progress: (value) => (signal.aborted ? Promise.resolve() : deps.channel.progress(value)),
    refreshWorker: markRefresh,
  };

  const timeoutMs = executionTimeoutOf(job, deps);
  const timerStop = new AbortController();
  if (timeoutMs !== undefined) {
    void clock.sleep(timeoutMs, timerStop.signal).then(() => {
      if (!timerStop.signal.aborted && !signal.aborted) {
        log.warn(`execution timeout of ${timeoutMs} ms reached; aborting the job`);
        controller.abort(new JobAbortedError('execution-timeout', abortMessage('execution-timeout', timeoutMs)));
      }
    });
  }

  try {
    const work = execute({ ...job, input }, ctx, deps, log, fail, markRefresh);
    const settled = await settleOrGiveUp(work, signal, definition.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS, clock, log);
    if (signal.aborted) return abandonedOrFailed(signal, fail);
    return settled!;
  } finally {
    timerStop.abort();
    if (tmpDir !== undefined) {
      // node:fs's callback form: node:fs/promises would add ≈1 ms to every cold start.
      const dir = tmpDir;
      await new Promise<void>((resolve) =>
        rm(dir, { recursive: true, force: true }, (err) => {
          if (err) log.warn(`could not remove ${dir}: ${describe(err)}`);
          resolve();
        }),
      );
    }
  }
}

function abandonedOrFailed(signal: AbortSignal, fail: (type: string, message: string) => JobOutcome): JobOutcome {
  const reason = signal.reason;
  const cause: JobAbortCause = reason instanceof JobAbortedError ? reason.kind : 'job-stop';
  if (cause === 'execution-timeout') return { ...fail('ExecutionTimeoutError', (reason as Error).message), timedOut: true } as JobOutcome;
  return { kind: 'abandoned', cause };
}

/**
 * Waits for the handler; once the job's signal has aborted, waits at most `graceMs` more and then
 * gives up on it (logging that it never settled) so the job still ends.
 */
async function settleOrGiveUp(
  work: Promise<JobOutcome>,
  signal: AbortSignal,
  graceMs: number,
  clock: Clock,
  log: Logger,
): Promise<JobOutcome | undefined> {
  let settled = false;
  const tracked = work.finally(() => {
    settled = true;
  });
  const aborted = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  const first = await Promise.race([tracked.then((o) => ({ o })), aborted.then(() => undefined)]);
  if (first) return first.o;
  const stopWaiting = new AbortController();
  const graceOver = clock.sleep(graceMs, stopWaiting.signal).then(() => undefined);
  const second = await Promise.race([tracked.then((o) => ({ o })), graceOver]);
  stopWaiting.abort();
  if (!settled) {
    const reason = signal.reason instanceof Error ? signal.reason.message : 'aborted';
    log.error(`handler did not settle within ${graceMs} ms after its signal aborted (${reason}); ending the job without it`);
  }
  return second?.o;
}

async function execute(
  job: Job,
  ctx: HandlerContext<unknown>,
  deps: JobRunnerDeps,
  log: Logger,
  fail: (type: string, message: string, traceback?: string, extra?: Record<string, unknown>) => JobOutcome,
  markRefresh: () => void,
): Promise<JobOutcome> {
  const { origin } = deps;
  let result: unknown;
  try {
    result = deps.definition.handler(job as never, ctx as never);
    if (isPromise(result)) result = await result;
  } catch (err) {
    log.error(`handler threw: ${describe(err)}`);
    return { kind: 'result', body: { error: thrownErrorString(origin, err) }, isStream: false, failed: true };
  }

  if (isGenerator(result)) return followStream(result, ctx.signal, deps, log, fail);

  const body = resultBody(result, markRefresh);
  return sizedResult(body, false, fail);
}

/** Turns a returned value into RunPod's done body, the way runpod-python does (PROTOCOL.md §1.5). */
export function resultBody(value: unknown, markRefresh: () => void = () => {}): DoneBody {
  if (isPlainObject(value)) {
    const rest: Record<string, unknown> = { ...value };
    const body: DoneBody = {};
    if ('refresh_worker' in rest) {
      if (rest['refresh_worker']) markRefresh();
      delete rest['refresh_worker'];
    }
    if ('error' in rest) {
      const error = rest['error'];
      delete rest['error'];
      if (Object.keys(rest).length > 0) body.output = rest;
      body.error = typeof error === 'string' ? error : describe(error);
      return body;
    }
    if (Object.keys(rest).length > 0) body.output = rest;
    return body;
  }
  return { output: value === undefined ? null : value };
}

async function followStream(
  stream: AsyncIterator<unknown> | Iterator<unknown>,
  signal: AbortSignal,
  deps: JobRunnerDeps,
  log: Logger,
  fail: (type: string, message: string, traceback?: string) => JobOutcome,
): Promise<JobOutcome> {
  const chunks: unknown[] = [];
  const aggregate = deps.definition.aggregateStream === true;
  try {
    for (;;) {
      if (signal.aborted) {
        await stream.return?.(undefined);
        break;
      }
      const step = await stream.next();
      if (step.done) break;
      const chunk = step.value;
      if (isPlainObject(chunk) && chunk['error']) {
        // runpod-python stops the stream at a chunk whose `error` is truthy and fails the job with it.
        await stream.return?.(undefined);
        const error = chunk['error'];
        return { kind: 'result', body: { error: typeof error === 'string' ? error : describe(error) }, isStream: true, failed: true };
      }
      const size = jsonBytes(chunk);
      if (size > WORKER_LIMITS.maxStreamChunkBytes) {
        await stream.return?.(undefined);
        return fail(
          'ResultTooLargeError',
          `stream chunk ${chunks.length} is ${size} bytes, over the limit of ${WORKER_LIMITS.maxStreamChunkBytes} bytes per chunk; yield smaller chunks or upload to S3 and yield URLs`,
        );
      }
      await deps.channel.chunk(chunk);
      if (aggregate) chunks.push(chunk);
    }
  } catch (err) {
    log.error(`handler stream threw: ${describe(err)}`);
    return { kind: 'result', body: { error: thrownErrorString(deps.origin, err) }, isStream: true, failed: true };
  }
  return sizedResult({ output: chunks }, true, fail);
}

function sizedResult(body: DoneBody, isStream: boolean, fail: (type: string, message: string) => JobOutcome): JobOutcome {
  let size: number;
  try {
    size = jsonBytes(body);
  } catch (err) {
    return fail('ResultNotSerializableError', `the handler's result cannot be sent as JSON: ${describe(err)}`);
  }
  if (size > WORKER_LIMITS.maxResultBytes) {
    // runpod-python posts it anyway, gets 400 and drops it (runpod-python#309): fail loudly instead.
    return fail(
      'ResultTooLargeError',
      `result is ${size} bytes, over the limit of ${WORKER_LIMITS.maxResultBytes} bytes (20 MB) for a job result; upload large outputs to S3 (s3Config) and return a URL`,
    );
  }
  return { kind: 'result', body, isStream, failed: body.error !== undefined };
}

function jsonBytes(value: unknown): number {
  const text = JSON.stringify(value);
  return text === undefined ? 4 : Buffer.byteLength(text);
}

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function isGenerator(value: unknown): value is AsyncIterator<unknown> | Iterator<unknown> {
  const tag = Object.prototype.toString.call(value);
  return tag === '[object AsyncGenerator]' || tag === '[object Generator]';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
