export { ProtocolParseError } from './parse-error.ts';
export { JOB_STATES, TERMINAL_STATES, isJobState, isTerminalState } from './job-states.ts';
export type { JobState, TerminalState } from './job-states.ts';
export {
  WORKER_LIMITS,
  formatErrorString,
  formatPingQuery,
  parseDonePost,
  parseDonePostText,
  parseErrorString,
  parseJob,
  parsePingQuery,
  parseStopResponse,
  parseStreamBody,
  parseTakeResponse,
} from './worker-api.ts';
export type {
  DoneBody,
  ErrorObject,
  Job,
  ParsedDonePost,
  ParsedTakeResponse,
  PingQuery,
  ProgressBody,
  RejectedJob,
  StopResponse,
  StreamBody,
} from './worker-api.ts';
export {
  CLIENT_LIMITS,
  DEFAULT_WEBHOOK_EVENTS,
  WEBHOOK_EVENTS,
  parseHealthResponse,
  parseRunRequest,
  parseRunResponse,
  parseRunsyncWait,
  parseStatusObject,
  parseStreamResponse,
} from './client-api.ts';
export type {
  CancelResponse,
  HealthJobs,
  HealthResponse,
  HealthWorkers,
  PurgeQueueResponse,
  RunPolicy,
  RunRequest,
  RunResponse,
  S3Config,
  StatusObject,
  StreamItem,
  StreamResponse,
  WebhookEvent,
} from './client-api.ts';
export { ManualClock, realClock } from './clock.ts';
export type { Clock } from './clock.ts';
export { WEBHOOK_SECRET_PREFIX, WEBHOOK_TOLERANCE_SECONDS, WebhookVerificationError, signWebhook, verifyWebhook } from './webhook-signature.ts';
export type { HeaderSource, VerifyWebhookOptions, WebhookHeaders, WebhookMessage, WebhookVerificationReason } from './webhook-signature.ts';
export { ADMIN_WORKER_STATES, WEBHOOK_DELIVERY_STATES } from './admin-api.ts';
export type {
  AdminEvent,
  AdminWorkerState,
  EndpointOverview,
  EndpointSchemaResponse,
  JobDetail,
  JobStreamResponse,
  ListedJob,
  LogLineView,
  MetricsResponse,
  MetricsSample,
  ModelStatus,
  ModelView,
  ModelsResponse,
  Percentiles,
  WebhookDeliveryState,
  WebhookDeliveryView,
  WorkerView,
} from './admin-api.ts';
