import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from './log.ts';
import type { InferOutput, StandardSchemaV1 } from './standard-schema.ts';

/** How `setup()` is scheduled: before the first job-take (`eager`), or on the first job (`lazy`). */
export type SetupLoad = 'eager' | 'lazy';

/** What `setup()` receives. */
export interface SetupContext {
  /** This worker's id (`RUNPOD_POD_ID`). */
  workerId: string;
  /** JSON-lines logger. */
  log: Logger;
  /** Aborts when the worker shuts down. */
  signal: AbortSignal;
}

/** A job as the handler receives it: RunPod's job object with `input` validated by the schema. */
export interface WorkerJob<Input> {
  id: string;
  input: Input;
  /** Extra keys the platform sends (`s3Config`, `batchId`, …) pass through unchanged. */
  [key: string]: unknown;
}

/** What the handler receives besides the job. */
export interface HandlerContext<State> {
  /** This worker's id. */
  workerId: string;
  /** The value `setup()` returned. */
  state: State;
  /**
   * Aborts when the job is cancelled (job-stop), when it runs past its execution timeout, or when
   * the worker is forced to shut down. `signal.reason` is a {@link JobAbortedError}.
   */
  signal: AbortSignal;
  /** A folder for this job only, created on first use and removed when the job ends, whatever the outcome. */
  readonly tmpDir: string;
  /** Logger whose lines carry this job's id. */
  log: Logger;
  /**
   * Reports progress (RunPod's `progress_update`): `/status` shows `value` as the output while the job runs.
   * Updates are sent in order; when several pile up only the latest is sent.
   */
  progress(value: unknown): Promise<void>;
  /** Asks the platform to recycle this worker after this job (RunPod's `refresh_worker`). */
  refreshWorker(): void;
}

/** Why a job's signal aborted. */
export type JobAbortCause = 'job-stop' | 'execution-timeout' | 'shutdown';

/** The `reason` of an aborted job signal. */
export class JobAbortedError extends Error {
  override name = 'JobAbortedError' as const;
  /** What aborted the job. */
  readonly kind: JobAbortCause;
  constructor(kind: JobAbortCause, message: string) {
    super(message);
    this.kind = kind;
  }
}

/** A handler's return: a value (the output), or an async iterable whose items are stream chunks. */
export type HandlerResult<Output, Chunk> = Output | Promise<Output> | AsyncIterable<Chunk> | Iterable<Chunk>;

/** Everything a worker is made of. */
export interface WorkerDefinition<Schema extends StandardSchemaV1 | undefined = undefined, State = undefined, Output = unknown, Chunk = unknown> {
  /** Loads models once per process. Its return value is `ctx.state` in every job. */
  setup?(ctx: SetupContext): State | Promise<State>;
  /** Runs one job. Return the output, or be an `async function*` whose yields are stream chunks. */
  handler(
    job: WorkerJob<Schema extends StandardSchemaV1 ? InferOutput<Schema> : unknown>,
    ctx: HandlerContext<State>,
  ): HandlerResult<Output, Chunk> | Promise<AsyncIterable<Chunk>>;
  /** A Standard Schema (zod 4, valibot, arktype) for `job.input`; invalid input fails the job before the handler runs. */
  input?: Schema;
  /** Jobs run at once: a number, or a function of the current number (RunPod's `concurrency_modifier`). Default 1. */
  concurrency?: number | ((current: number) => number);
  /** When `setup()` runs. Default `eager`. */
  load?: SetupLoad;
  /** For streaming handlers: make the list of all chunks the final output (RunPod's `return_aggregate_stream`). */
  aggregateStream?: boolean;
  /** Recycle the worker after every job (RunPod's `refresh_worker`): results carry `stopPod: true`. */
  refreshWorker?: boolean;
  /** Fail setup if it has not finished by then. Default: no limit. */
  setupTimeoutMs?: number;
  /** Abort a job's signal after this long, unless the platform gives the job its own `policy.executionTimeout`. */
  executionTimeoutMs?: number;
  /** How long a handler may take to settle after its signal aborted before the job is ended without it. Default 5000. */
  abortGraceMs?: number;
  /** After SIGTERM, how long in-flight jobs may run before their signals abort. Default 60000. */
  drainTimeoutMs?: number;
}

const WORKER_BRAND: unique symbol = Symbol.for('kiln.worker');

/** A defined worker: its definition, and whether it starts itself as the main module. */
export interface KilnWorker<Schema extends StandardSchemaV1 | undefined = any, State = any, Output = any, Chunk = any> {
  readonly [WORKER_BRAND]: true;
  readonly definition: Readonly<WorkerDefinition<Schema, State, Output, Chunk>>;
}

const STARTED = new WeakSet<object>();

/** Records that `worker` was started explicitly, so it does not also start itself as the main module. */
export function markStarted(worker: KilnWorker): void {
  STARTED.add(worker);
}

/** True for the value `defineWorker()` returns. */
export function isKilnWorker(value: unknown): value is KilnWorker {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[WORKER_BRAND] === true;
}

/**
 * Defines a worker. When the file that calls it is the process's main module (`node worker.js`),
 * the worker starts by itself: production mode when `RUNPOD_WEBHOOK_GET_JOB` is set, else a local
 * mode (`--test-input`, `--serve-api`). `kiln worker <file>` runs it too.
 *
 * @example
 * import { defineWorker } from '@kiln/worker';
 * import { z } from 'zod';
 *
 * export default defineWorker({
 *   input: z.object({ text: z.string() }),
 *   async setup() { return { model: await loadModel() }; },
 *   async handler(job, ctx) { return ctx.state.model.run(job.input.text, { signal: ctx.signal }); },
 * });
 */
export function defineWorker<Schema extends StandardSchemaV1 | undefined = undefined, State = undefined, Output = unknown, Chunk = unknown>(
  definition: WorkerDefinition<Schema, State, Output, Chunk>,
): KilnWorker<Schema, State, Output, Chunk> {
  checkDefinition(definition);
  const worker = Object.freeze({ [WORKER_BRAND]: true as const, definition: Object.freeze({ ...definition }) });
  const caller = callerFile();
  if (caller && isMainModule(caller)) {
    // After the module's synchronous evaluation; not if the module started it itself.
    process.nextTick(() => {
      if (STARTED.has(worker)) return;
      void import('./run-worker.ts').then(({ runWorkerAsMain }) => runWorkerAsMain(worker));
    });
  }
  return worker;
}

function checkDefinition(d: WorkerDefinition<any, any, any, any>): void {
  const fail = (field: string, rule: string) => {
    throw new TypeError(`defineWorker: ${field} ${rule}`);
  };
  if (typeof d !== 'object' || d === null) fail('definition', 'must be an object');
  if (typeof d.handler !== 'function') fail('handler', 'must be a function');
  if (d.setup !== undefined && typeof d.setup !== 'function') fail('setup', 'must be a function');
  if (d.input !== undefined && typeof (d.input as StandardSchemaV1)?.['~standard']?.validate !== 'function') {
    fail('input', 'must be a Standard Schema (zod 4, valibot, arktype …)');
  }
  if (typeof d.concurrency === 'number' && (!Number.isInteger(d.concurrency) || d.concurrency < 1)) {
    fail('concurrency', `must be an integer ≥ 1 or a function, got ${d.concurrency}`);
  }
  if (d.load !== undefined && d.load !== 'eager' && d.load !== 'lazy') fail('load', `must be 'eager' or 'lazy', got ${String(d.load)}`);
  for (const key of ['setupTimeoutMs', 'executionTimeoutMs', 'abortGraceMs', 'drainTimeoutMs'] as const) {
    const v = d[key];
    if (v !== undefined && (!Number.isFinite(v) || v <= 0)) fail(key, `must be a positive number of milliseconds, got ${v}`);
  }
}

function callerFile(): string | undefined {
  const saved = Error.prepareStackTrace;
  try {
    Error.prepareStackTrace = (_err, frames) => frames;
    const holder: { stack?: NodeJS.CallSite[] } = {};
    Error.captureStackTrace(holder, defineWorker);
    const name = holder.stack?.[0]?.getFileName();
    if (!name) return undefined;
    return name.startsWith('file:') ? fileURLToPath(name) : name;
  } catch {
    return undefined;
  } finally {
    Error.prepareStackTrace = saved;
  }
}

function isMainModule(file: string): boolean {
  const main = process.argv[1];
  // A test file that defines workers is the main module too, but must not start them.
  if (!main || /\.test\.[cm]?[jt]s$/.test(main)) return false;
  const resolved = path.resolve(main);
  return resolved === file || resolved.replace(/\.[cm]?[jt]s$/, '') === file.replace(/\.[cm]?[jt]s$/, '');
}
