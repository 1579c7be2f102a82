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
} from './client-api.ts';
export { ManualClock, realClock } from './clock.ts';
export type { Clock } from './clock.ts';
