import type { WebhookEvent } from './client-api.ts';
import type { JobState } from './job-states.ts';

// kiln's own admin API under `/kiln/v1` (same auth as the client API). These are its response
// shapes, shared by the gateway that sends them and the dashboard that reads them. RunPod has
// no such API: the names follow RunPod's vocabulary where one exists (inQueue, delayTime …).

/** A worker's state as the gateway tracks it. */
export type AdminWorkerState = 'initializing' | 'idle' | 'running' | 'draining' | 'stopped' | 'unhealthy';

/** The worker states in display order. */
export const ADMIN_WORKER_STATES: readonly AdminWorkerState[] = ['initializing', 'idle', 'running', 'draining', 'unhealthy'];

/** p50/p95 of a duration in ms over a window; null when no job finished in it. */
export interface Percentiles {
  p50: number;
  p95: number;
}

/** `GET /kiln/v1/endpoints` → `{ endpoints: EndpointOverview[] }`. */
export interface EndpointOverview {
  name: string;
  workersMin: number;
  workersMax: number;
  idleTimeout: number;
  executionTimeoutMs: number;
  gpu: { types: string[]; count: number } | null;
  models: string[];
  jobs: { inQueue: number; inProgress: number; completed: number; failed: number; cancelled: number; timedOut: number };
  /** Live workers by state (every key of {@link ADMIN_WORKER_STATES}, 0 when none). */
  workers: Record<AdminWorkerState, number>;
  /**
   * Jobs that ended in the last hour: counts and p50/p95 of delayTime and executionTime (ms).
   * `finished` counts every terminal state, `failed` FAILED and TIMED_OUT; jobs that never started
   * (cancelled or timed out in the queue) have no times. Read from the newest 10,000 ended jobs.
   */
  lastHour: { finished: number; failed: number; delayTime: Percentiles | null; executionTime: Percentiles | null };
}

/** One sample of an endpoint's load, taken every `intervalMs`. */
export interface MetricsSample {
  /** Epoch ms. */
  t: number;
  inQueue: number;
  inProgress: number;
  /** Live workers (any state but stopped). */
  workers: number;
  /** Of those, running a job. */
  running: number;
}

/** `GET /kiln/v1/endpoints/:ep/metrics` → the last hour of samples, oldest first. */
export interface MetricsResponse {
  intervalMs: number;
  samples: MetricsSample[];
}

/** One worker in `GET /kiln/v1/endpoints/:ep/workers` → `{ workers: WorkerView[] }`. */
export interface WorkerView {
  workerId: string;
  state: AdminWorkerState;
  startedAt: number;
  uptimeMs: number;
  /** Spawn → first job-take (the whole cold start), null until ready. */
  coldStartMs: number | null;
  /** Time inside the worker's `setup()` (from its `setup finished` log line), null when unknown. */
  setupMs: number | null;
  lastPingAt: number | null;
  /** Jobs the store says this worker holds (IN_PROGRESS). */
  currentJobs: string[];
  /** Jobs the worker's last ping said it holds. */
  jobs?: string[];
  unhealthy: { check: string; reason: string } | null;
}

/** One row of `GET /kiln/v1/endpoints/:ep/jobs` → `{ jobs: ListedJob[], next: string | null }`. */
export interface ListedJob {
  id: string;
  /** Set in listings that span endpoints and in live events. */
  endpoint?: string;
  status: JobState;
  createdAt: number;
  queuedAt: number;
  takenAt: number | null;
  finishedAt: number | null;
  workerId: string | null;
  attempts: number;
  retries: number;
  delayTime: number | null;
  executionTime: number | null;
  error: string | null;
}

/** `GET /kiln/v1/endpoints/:ep/jobs/:id/stream?after=N` → chunks after seq N, without consuming them. */
export interface JobStreamResponse {
  chunks: { seq: number; output: unknown }[];
  /** Pass as `after` for the chunks that come later. */
  next: number;
}

/** `GET /kiln/v1/endpoints/:ep/schema` → what the Run form is built from. */
export interface EndpointSchemaResponse {
  /** JSON Schema of `job.input` exported by the worker's `input` schema; null when the worker has none or cannot describe itself. */
  input: Record<string, unknown> | null;
  /** The endpoint's `test_input.json` input (RunPod's local-test file), if any: the form's first values. */
  testInput: unknown;
  /** Why `input` is null, in words (e.g. "python workers do not describe their input"). */
  note: string | null;
}

/** Status of one model of the manifest on the models volume. */
export type ModelStatus = 'missing' | 'partial' | 'verified' | 'modified';

/** One model in `GET /kiln/v1/models` → `{ volume, models: ModelView[] }`. */
export interface ModelView {
  name: string;
  source: string;
  status: ModelStatus;
  files: number;
  /** Bytes present on the volume. */
  bytes: number;
  /** Bytes the lock file records (null before the first pull). */
  totalBytes: number | null;
  /** Set while a pull runs. */
  pull: { doneBytes: number; totalBytes: number | null } | null;
  /** The last pull's failure, if it failed. */
  error: string | null;
}

/** `GET /kiln/v1/models` */
export interface ModelsResponse {
  volume: string;
  models: ModelView[];
}

/**
 * Events of `GET /kiln/v1/events[?endpoint=ep]` (Server-Sent Events; send `Authorization`, so
 * browsers read it with fetch, not EventSource). Each event's `data` is one JSON object:
 * - `jobs`: `{ endpoint, jobs: ListedJob[] }` jobs that changed (created, taken, progressed, ended, deleted rows are absent);
 * - `workers`: `{ endpoint, workers: WorkerView[] }` when an endpoint's workers change;
 * - `metrics`: `{ endpoint, sample: MetricsSample }` every sample interval;
 * - `model`: `{ model: ModelView }` while a model is pulled or when its status changes.
 * Comment lines (`: ping`) keep the connection open every 15 s.
 */
export type AdminEvent =
  | { event: 'jobs'; data: { endpoint: string; jobs: ListedJob[] } }
  | { event: 'workers'; data: { endpoint: string; workers: WorkerView[] } }
  | { event: 'metrics'; data: { endpoint: string; sample: MetricsSample } }
  | { event: 'model'; data: { model: ModelView } };

/** `GET /kiln/v1/endpoints/:ep/jobs/:id` (and `GET /kiln/v1/jobs/:id`, which finds the endpoint): a job's whole record. */
export interface JobDetail extends ListedJob {
  endpoint: string;
  input: unknown;
  /** The result once COMPLETED, the last progress update while IN_PROGRESS; absent when none. */
  output?: unknown;
  webhook: string | null;
  webhookEvents: WebhookEvent[];
  policy: Record<string, unknown>;
  s3Config: Record<string, unknown> | null;
  lowPriority: boolean;
  expiresAt: number;
  executionDeadline: number | null;
  executionTimeoutMs: number;
  retainUntil: number | null;
  idempotencyKey: string | null;
  /** How many stream chunks the current run stored (read them from `…/jobs/:id/stream`). */
  streamChunks: number;
  /** How many progress updates the current run reported. */
  progressUpdates: number;
}

/**
 * Where a webhook delivery stands: `pending` (due at `nextAttemptAt`), `delivered` (a 2xx answer),
 * `failed` (every attempt used up).
 */
export const WEBHOOK_DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const;
/** One of {@link WEBHOOK_DELIVERY_STATES}. */
export type WebhookDeliveryState = (typeof WEBHOOK_DELIVERY_STATES)[number];

/**
 * One webhook call in `GET /kiln/v1/endpoints/:ep/webhooks[?jobId=&state=]` → `{ deliveries: WebhookDeliveryView[] }`:
 * a delivery of the gateway's outbox without its payload. Times are epoch milliseconds.
 */
export interface WebhookDeliveryView {
  /** Sent as `webhook-id`: the same on every attempt. */
  id: string;
  jobId: string;
  /** The job's `retries` when the event happened (each run of a job is owed its own `completed` call). */
  jobRun: number;
  endpoint: string;
  event: WebhookEvent;
  url: string;
  state: WebhookDeliveryState;
  /** Attempts started so far (raised when an attempt is claimed). */
  attempts: number;
  /** When a pending delivery is next due (while an attempt runs: when that attempt's lease ends). */
  nextAttemptAt: number;
  lastError: string | null;
  /** HTTP status of the last answer, null when there was none (timeout, refused connection). */
  lastStatus: number | null;
  createdAt: number;
  deliveredAt: number | null;
}

/** One captured worker log line in `GET /kiln/v1/endpoints/:ep/logs[?jobId=&workerId=&after=]` → `{ lines, next }`. */
export interface LogLineView {
  seq: number;
  endpoint: string;
  workerId: string;
  jobId: string | null;
  stream: 'stdout' | 'stderr';
  line: string;
  time: number;
}
