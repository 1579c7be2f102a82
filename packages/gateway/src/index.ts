export { openSqliteStore } from './sqlite-store.ts';
export type { SqliteStoreOptions } from './sqlite-store.ts';
export { openPostgresStore } from './postgres-store.ts';
export type { PostgresStoreOptions } from './postgres-store.ts';
export type { EndpointCounts, JobRecord, JobResult, JobStore, LogLine, NewJob, RequeueOutcome, StreamChunk } from './job-store.ts';
export type { JobListCursor, JobListQuery, JobSummary } from './job-store.ts';
export { CONFIG_LIMITS, ConfigError, DEFAULT_SQLITE_PATH, ENDPOINT_NAME_PATTERN, formatIssue, isLoopbackHost, isPostgresUrl, loadConfig, parseConfig } from './config.ts';
export type { ConfigIssue, EndpointConfig, EnvValue, GatewayConfig, GatewaySettings, GpuConfig, ParseConfigOptions, ScalerConfig, VolumeConfig, WorkerCommandConfig } from './config.ts';
export {
  EndpointNotFoundError,
  IdempotencyConflictError,
  InvalidRequestError,
  InvalidTransitionError,
  JobNotFoundError,
  PayloadTooLargeError,
  UnauthorizedError,
  toHttpResponse,
} from './errors.ts';
export type { ErrorBody, ErrorStatus, GatewayError, HttpErrorResponse } from './errors.ts';
export { JOB_EVENTS_RECHECK_MS, JobEvents } from './job-events.ts';
export { createHttpApp, createNodeRequestListener } from './http-app.ts';
export type { GatewayContext, HttpLogger } from './http-app.ts';
export { STREAM_HOLD_MS, createClientApi } from './client-api.ts';
export { SSE_PING_MS, acceptsEventStream, formatEventId, parseLastEventId, respondWithJobEvents } from './sse-stream.ts';
export type { SsePosition } from './sse-stream.ts';
export { MAX_BATCH_SIZE, WORKER_ROUTES, answerWorkerCall, createWorkerApi } from './worker-api.ts';
export type { TakenJob, WorkerCall, WorkerReply, WorkerRoute } from './worker-api.ts';
export { toStatusObject } from './status-view.ts';
export { Gateway, openConfiguredStore } from './gateway.ts';
export type { GatewayLogger, GatewayOptions } from './gateway.ts';
export { Supervisor } from './supervisor.ts';
export type { SupervisionSettings } from './supervisor.ts';
export { WorkerRegistry } from './worker-registry.ts';
export type { WorkerAccess, WorkerInfo, WorkerState } from './worker-registry.ts';
export { createAdminApi, MAX_LOG_LINES } from './admin-api.ts';
export { DEFAULT_JOB_PAGE, MAX_JOB_PAGE } from './admin-api.ts';
export { DELIVERED_WEBHOOK_RETENTION_MS, WEBHOOK_CONCURRENCY, WEBHOOK_POLL_MS, WebhookDispatcher, webhookBody } from './webhook-dispatcher.ts';
export type { RunningJobEvent, WebhookDispatcherOptions } from './webhook-dispatcher.ts';
export type {
  NewWebhookDelivery,
  WebhookAttemptFailure,
  WebhookDelivery,
  WebhookDeliveryQuery,
  WebhookDeliveryState,
  WebhookDeliverySummary,
} from './job-store.ts';
export { WEBHOOK_SECRET_ENV } from './config.ts';
export type { WebhookSettings } from './config.ts';
export { WebhookDeliveryNotFoundError } from './errors.ts';
export { UnknownModelError } from './errors.ts';
export type { ModelsAccess } from './models-access.ts';
export type { FinishedJobsQuery } from './job-store.ts';
export type { JobChangeListener, JobWatch } from './job-events.ts';
export { NoModelsVolumeError } from './errors.ts';
export { LAST_HOUR_MAX_JOBS, LAST_HOUR_MS, endpointOverview, percentiles, toListedJob, workerViews, workersByState } from './admin-views.ts';
export { AdminFeed, MAX_UNREAD_EVENTS, WORKERS_CHECK_MS } from './admin-events.ts';
export { METRICS_INTERVAL_MS, METRICS_WINDOW_MS, MetricsSampler } from './metrics-sampler.ts';
export type { MetricsListener, MetricsSamplerOptions } from './metrics-sampler.ts';
export { DASHBOARD_CONTENT_TYPES, DASHBOARD_CSP, createDashboardFiles } from './dashboard-files.ts';
export { DESCRIBE_ENV, DESCRIBE_TIMEOUT_MS, TEST_INPUT_FILE, WorkerSchemas, describeWorker, readTestInput, workerBaseEnv } from './worker-schema.ts';
export type { DescribeSpec, WorkerDescription, WorkerSchemasOptions } from './worker-schema.ts';
export { setupMsOf } from './process-driver.ts';
