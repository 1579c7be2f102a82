export { defineWorker, isKilnWorker, JobAbortedError } from './define-worker.ts';
export type {
  HandlerContext,
  HandlerResult,
  JobAbortCause,
  KilnWorker,
  SetupContext,
  SetupLoad,
  WorkerDefinition,
  WorkerJob,
} from './define-worker.ts';
export { runWorker, runWorkerAsMain } from './run-worker.ts';
export type { RunWorkerOptions } from './run-worker.ts';
export { describeInput, DESCRIBE_ENV } from './describe-input.ts';
export type { InputDescription } from './describe-input.ts';
export { readWorkerEnvironment, WORKER_USAGE, DEFAULT_PING_INTERVAL_MS } from './worker-env.ts';
export type { WorkerEnvironment, WorkerMode } from './worker-env.ts';
export { ManualClock, realClock } from '@kiln/protocol';
export type { Clock } from '@kiln/protocol';
export { createLogger, LOG_LEVELS } from './log.ts';
export type { Logger, LogLevel, LogSink } from './log.ts';
export { isValidOverlap, overlapRuleMessage, overlapWeight, planChunks } from './chunk-plan.ts';
export type { ChunkPlanOptions, ChunkSpan } from './chunk-plan.ts';
export { resolveJobUrls, appendQuery } from './job-urls.ts';
export type { JobUrls, JobUrlTemplates } from './job-urls.ts';
export { LOOP_TIMINGS } from './job-loop.ts';
export { POST_RETRY_WAITS_MS } from './job-poster.ts';
export { RUNTIME_VERSION } from './error-body.ts';
export type { StandardSchemaV1, StandardIssue, InputIssue } from './standard-schema.ts';
