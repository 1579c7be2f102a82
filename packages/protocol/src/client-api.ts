import { JOB_STATES, isJobState } from './job-states.ts';
import type { JobState } from './job-states.ts';
import { ProtocolParseError } from './parse-error.ts';
import {
  fieldPath,
  hasKey,
  requireBoolean,
  requireCount,
  requireIntegerInRange,
  requireNonEmptyString,
  requireNonNegativeNumber,
  requireObject,
  requirePresent,
  requireString,
} from './parse-helpers.ts';

const SEVEN_DAYS_MS = 7 * 24 * 60 * 60 * 1000;

/** Limits of RunPod's endpoint API, per its docs; durations in milliseconds, sizes in bytes. */
export const CLIENT_LIMITS = {
  /** Largest `/run` request body (10 MB). */
  runBodyBytes: 10 * 1024 * 1024,
  /** Largest `/runsync` request body (20 MB). */
  runsyncBodyBytes: 20 * 1024 * 1024,
  /** `?wait=` of `/runsync` and `/status-sync`. */
  runsyncWait: { min: 1000, max: 300_000, default: 90_000 },
  /** `policy.executionTimeout`; without it the endpoint's own setting applies. */
  executionTimeout: { min: 5000, max: SEVEN_DAYS_MS },
  /** `policy.ttl`: a hard delete, even while the job runs. */
  ttl: { min: 10_000, max: SEVEN_DAYS_MS, default: 24 * 60 * 60 * 1000 },
} as const;

/** Per-job `policy` of a run request. */
export interface RunPolicy {
  /** ms; the job is TIMED_OUT when it runs longer. */
  executionTimeout?: number;
  /** ms from submission after which the job is deleted. */
  ttl?: number;
  /** Low-priority jobs do not trigger scale-up. */
  lowPriority?: boolean;
}

/** S3 credentials a run request hands through to the worker (the job carries them as `s3Config`). */
export interface S3Config {
  accessId: string;
  accessSecret: string;
  bucketName: string;
  endpointUrl: string;
  objectPath?: string;
}

/**
 * What a job's webhook may be sent for (a kiln extension, after Cog's webhook event filter):
 * `start` (a worker took the job), `progress` (a progress update), `output` (a stream chunk),
 * `completed` (the job ended: COMPLETED, FAILED, CANCELLED or TIMED_OUT).
 */
export const WEBHOOK_EVENTS = ['start', 'progress', 'output', 'completed'] as const;
/** One of {@link WEBHOOK_EVENTS}. */
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
/** The events of a request that names none: RunPod's behaviour, one call when the job ends. */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEvent[] = ['completed'];

/** Body of `POST /run` and `POST /runsync`. */
export interface RunRequest {
  input: unknown;
  /** http(s) URL that receives the terminal status object. */
  webhook?: string;
  /** kiln extension: which events the webhook is sent for (default {@link DEFAULT_WEBHOOK_EVENTS}); listed once each, in {@link WEBHOOK_EVENTS} order. */
  webhookEvents?: WebhookEvent[];
  policy?: RunPolicy;
  s3Config?: S3Config;
}

/**
 * Reads a `/run` or `/runsync` body. `input` is required (any JSON value, `null` included);
 * unknown keys such as `webhookV2` are tolerated and dropped, as RunPod tolerates them.
 *
 * @example
 * parseRunRequest({ input: { a: 1 }, policy: { executionTimeout: 5000, ttl: 60000, lowPriority: false } });
 */
export function parseRunRequest(value: unknown): RunRequest {
  const obj = requireObject(value, 'body');
  const request: RunRequest = { input: requirePresent(obj, 'input', '') };
  if (hasKey(obj, 'webhook')) request.webhook = parseWebhookUrl(obj.webhook);
  if (hasKey(obj, 'webhookEvents')) request.webhookEvents = parseWebhookEvents(obj.webhookEvents);
  if (hasKey(obj, 'policy')) request.policy = parseRunPolicy(obj.policy);
  if (hasKey(obj, 's3Config')) request.s3Config = parseS3Config(obj.s3Config);
  return request;
}

function parseWebhookUrl(value: unknown): string {
  const rule = 'must be an http(s) URL';
  if (typeof value !== 'string') throw new ProtocolParseError('webhook', rule);
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new ProtocolParseError('webhook', rule, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ProtocolParseError('webhook', rule);
  return value;
}

function parseWebhookEvents(value: unknown): WebhookEvent[] {
  const allowed = `must be one of ${WEBHOOK_EVENTS.join(', ')}`;
  if (!Array.isArray(value) || value.length === 0) {
    throw new ProtocolParseError('webhookEvents', `must be a non-empty array of event names, each ${allowed.slice('must be '.length)}`);
  }
  value.forEach((item: unknown, index) => {
    if (!WEBHOOK_EVENTS.some((event) => event === item)) throw new ProtocolParseError(fieldPath('webhookEvents', index), allowed);
  });
  return WEBHOOK_EVENTS.filter((event) => value.includes(event));
}

function parseRunPolicy(value: unknown): RunPolicy {
  const obj = requireObject(value, 'policy');
  const policy: RunPolicy = {};
  const { executionTimeout, ttl } = CLIENT_LIMITS;
  if (hasKey(obj, 'executionTimeout')) {
    policy.executionTimeout = requireIntegerInRange(
      obj.executionTimeout,
      'policy.executionTimeout',
      executionTimeout.min,
      executionTimeout.max,
      'ms',
    );
  }
  if (hasKey(obj, 'ttl')) policy.ttl = requireIntegerInRange(obj.ttl, 'policy.ttl', ttl.min, ttl.max, 'ms');
  if (hasKey(obj, 'lowPriority')) policy.lowPriority = requireBoolean(obj.lowPriority, 'policy.lowPriority');
  return policy;
}

function parseS3Config(value: unknown): S3Config {
  const obj = requireObject(value, 's3Config');
  const field = (key: string) => requireString(requirePresent(obj, key, 's3Config'), fieldPath('s3Config', key));
  const config: S3Config = {
    accessId: field('accessId'),
    accessSecret: field('accessSecret'),
    bucketName: field('bucketName'),
    endpointUrl: field('endpointUrl'),
  };
  if (hasKey(obj, 'objectPath')) config.objectPath = requireString(obj.objectPath, 's3Config.objectPath');
  return config;
}

/**
 * Reads `/runsync`'s `?wait=` (ms): absent or empty ⇒ 90000; an integer is clamped to [1000, 300000]
 * as the JS SDK does client-side; anything else throws.
 *
 * @example
 * parseRunsyncWait(new URL(req.url).searchParams.get('wait')); // 90000 when absent
 */
export function parseRunsyncWait(raw: string | null | undefined): number {
  const { min, max, default: fallback } = CLIENT_LIMITS.runsyncWait;
  if (raw === null || raw === undefined || raw === '') return fallback;
  if (!/^[+-]?\d+$/.test(raw)) throw new ProtocolParseError('wait', 'must be an integer number of milliseconds');
  return Math.min(max, Math.max(min, Number(raw)));
}

/** Answer of `POST /run` (status IN_QUEUE), and of `/runsync` when the job did not finish in time. */
export interface RunResponse {
  id: string;
  status: JobState;
}

/** A job's status object, as `/status`, `/status-sync`, `/runsync` and webhooks return it. */
export interface StatusObject {
  id: string;
  status: JobState;
  /** ms from submission to pickup by a worker. */
  delayTime?: number;
  /** ms from pickup to completion. */
  executionTime?: number;
  /** The result; while IN_PROGRESS, the last progress update. */
  output?: unknown;
  error?: string;
  workerId?: string;
  retries?: number;
}

/** One chunk of a `/stream` answer; RunPod may add keys such as `metrics`. */
export interface StreamItem {
  output: unknown;
  [key: string]: unknown;
}

/** Answer of `GET /stream/{id}`: chunks not delivered before. */
export interface StreamResponse {
  id?: string;
  status: JobState;
  stream: StreamItem[];
}

/** Answer of `POST /cancel/{id}`. */
export interface CancelResponse {
  id: string;
  status: JobState;
}

/** Answer of `POST /purge-queue`; only queued jobs are removed. */
export interface PurgeQueueResponse {
  removed: number;
  status: 'completed';
}

/** Job counters of `GET /health`. */
export interface HealthJobs {
  completed: number;
  failed: number;
  inProgress: number;
  inQueue: number;
  retried: number;
}

/** Worker counters of `GET /health`. */
export interface HealthWorkers {
  idle: number;
  running: number;
  initializing: number;
  ready: number;
  throttled: number;
  unhealthy: number;
}

/** Answer of `GET /health`. */
export interface HealthResponse {
  jobs: HealthJobs;
  workers: HealthWorkers;
}

function requireJobState(value: unknown, field: string): JobState {
  if (!isJobState(value)) throw new ProtocolParseError(field, `must be one of ${JOB_STATES.join(', ')}`);
  return value;
}

/** Reads a `/run` answer (`{"id","status"}`), ignoring extra keys. */
export function parseRunResponse(value: unknown): RunResponse {
  const obj = requireObject(value, 'body');
  return {
    id: requireNonEmptyString(requirePresent(obj, 'id', ''), 'id'),
    status: requireJobState(requirePresent(obj, 'status', ''), 'status'),
  };
}

/**
 * Reads a status object, ignoring keys it does not know (webhooks add `input` and `webhook`).
 *
 * @example
 * const job = parseStatusObject(await res.json());
 * if (isTerminalState(job.status)) console.log(job.output ?? job.error);
 */
export function parseStatusObject(value: unknown): StatusObject {
  const obj = requireObject(value, 'body');
  const status: StatusObject = {
    id: requireNonEmptyString(requirePresent(obj, 'id', ''), 'id'),
    status: requireJobState(requirePresent(obj, 'status', ''), 'status'),
  };
  if (hasKey(obj, 'delayTime')) status.delayTime = requireNonNegativeNumber(obj.delayTime, 'delayTime');
  if (hasKey(obj, 'executionTime')) status.executionTime = requireNonNegativeNumber(obj.executionTime, 'executionTime');
  if (Object.hasOwn(obj, 'output') && obj.output !== undefined) status.output = obj.output;
  if (hasKey(obj, 'error')) status.error = requireString(obj.error, 'error');
  if (hasKey(obj, 'workerId')) status.workerId = requireString(obj.workerId, 'workerId');
  if (hasKey(obj, 'retries')) status.retries = requireCount(obj.retries, 'retries');
  return status;
}

/**
 * Reads a `/stream` answer. A missing `stream` reads as `[]` because runpod-python's client tolerates it;
 * each item must be an object with an `output` key.
 */
export function parseStreamResponse(value: unknown): StreamResponse {
  const obj = requireObject(value, 'body');
  const response: StreamResponse = {
    status: requireJobState(requirePresent(obj, 'status', ''), 'status'),
    stream: [],
  };
  if (hasKey(obj, 'id')) response.id = requireNonEmptyString(obj.id, 'id');
  if (hasKey(obj, 'stream')) {
    if (!Array.isArray(obj.stream)) throw new ProtocolParseError('stream', 'must be an array');
    response.stream = obj.stream.map((item: unknown, index) => {
      const field = fieldPath('stream', index);
      const chunk = requireObject(item, field);
      return { ...chunk, output: requirePresent(chunk, 'output', field) };
    });
  }
  return response;
}

const HEALTH_JOB_KEYS = ['completed', 'failed', 'inProgress', 'inQueue', 'retried'] as const;
const HEALTH_WORKER_KEYS = ['idle', 'running'] as const;
// Only the JS/Go SDK types and the worker-states doc name these; a real endpoint may omit them.
const OPTIONAL_HEALTH_WORKER_KEYS = ['initializing', 'ready', 'throttled', 'unhealthy'] as const;

/**
 * Reads a `/health` answer. All job counters and `workers.idle`/`workers.running` are required;
 * the other worker counters read as 0 when absent.
 */
export function parseHealthResponse(value: unknown): HealthResponse {
  const obj = requireObject(value, 'body');
  const jobsObj = requireObject(requirePresent(obj, 'jobs', ''), 'jobs');
  const workersObj = requireObject(requirePresent(obj, 'workers', ''), 'workers');
  const jobs = {} as HealthJobs;
  for (const key of HEALTH_JOB_KEYS) {
    jobs[key] = requireCount(requirePresent(jobsObj, key, 'jobs'), fieldPath('jobs', key));
  }
  const workers = {} as HealthWorkers;
  for (const key of HEALTH_WORKER_KEYS) {
    workers[key] = requireCount(requirePresent(workersObj, key, 'workers'), fieldPath('workers', key));
  }
  for (const key of OPTIONAL_HEALTH_WORKER_KEYS) {
    workers[key] = hasKey(workersObj, key) ? requireCount(workersObj[key], fieldPath('workers', key)) : 0;
  }
  return { jobs, workers };
}
