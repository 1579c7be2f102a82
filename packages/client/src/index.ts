export { kiln, KilnClient, KilnEndpoint } from './client.ts';
export type { CallOptions, KilnOptions, RunOptions, RunSyncOptions } from './client.ts';
export type { FetchFunction } from './http.ts';
export {
  ConflictError,
  JobFailedError,
  KilnHttpError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  UnauthorizedError,
  UnexpectedResponseError,
  httpErrorFrom,
  summarizeJobError,
} from './errors.ts';
export type { ClientErrorOptions, HttpErrorInit, KilnClientError } from './errors.ts';
export { isFinished, outputOf } from './job-status.ts';
export type { CompletedJob, FinishedJob, JobRef, JobStatus, JobStatusFields, PendingJob, UnsuccessfulJob } from './job-status.ts';
export type { StreamOptions } from './job-stream.ts';
export { SseParser } from './sse.ts';
export type { SseEvent } from './sse.ts';
export type { WaitForOptions } from './wait-for.ts';
export { WebhookVerificationError, verifyWebhook } from '@kiln/protocol';
export type {
  Clock,
  HeaderSource,
  HealthResponse,
  JobState,
  PurgeQueueResponse,
  RunPolicy,
  S3Config,
  VerifyWebhookOptions,
  WebhookEvent,
  WebhookVerificationReason,
} from '@kiln/protocol';
