import type { JobState, RunPolicy, S3Config, WebhookDeliveryState, WebhookDeliveryView, WebhookEvent } from '@kiln/protocol';

/**
 * A job as the store keeps it. Times are epoch milliseconds from the gateway's clock.
 * `output` is the final output once COMPLETED (or FAILED with an output), else the last progress
 * value while IN_PROGRESS (RunPod shows progress as `output`).
 */
export interface JobRecord {
  id: string;
  endpoint: string;
  status: JobState;
  input: unknown;
  webhook: string | null;
  /** What the webhook is sent for (`['completed']` unless the request said otherwise). */
  webhookEvents: WebhookEvent[];
  policy: RunPolicy;
  s3Config: S3Config | null;
  /** Undefined when the job has no output (and no progress) yet. */
  output?: unknown;
  error: string | null;
  /** The worker holding the job (IN_PROGRESS), or the one that last held it. */
  workerId: string | null;
  /** How many times a worker has claimed the job (raised when a dead worker's job is requeued). */
  attempts: number;
  /** How many times `/retry` put it back in the queue. */
  retries: number;
  lowPriority: boolean;
  createdAt: number;
  /** When it was last put in the queue (creation, requeue or retry): `delayTime` counts from here. */
  queuedAt: number;
  takenAt: number | null;
  finishedAt: number | null;
  /** TTL deadline: the job is TIMED_OUT (queued) or deleted (finished) after this. */
  expiresAt: number;
  /** Execution deadline while IN_PROGRESS. */
  executionDeadline: number | null;
  /** Milliseconds this job may run once claimed (policy.executionTimeout or the endpoint default). */
  executionTimeoutMs: number;
  /** Finished results are deleted after this (RunPod: 30 min for /run, 1 min for /runsync). */
  retainUntil: number | null;
  /** A client-chosen idempotency key, unique per endpoint. */
  idempotencyKey: string | null;
  /** Stream chunks stored for the current run: the seq of the last one (0 before any; reset by retry). */
  streamSeq: number;
  /** Progress updates stored for the current run (`output` keeps only the last; reset by retry). */
  progressSeq: number;
}

/** A job as the listing shows it: no input, output or secrets. */
export type JobSummary = Pick<
  JobRecord,
  'id' | 'endpoint' | 'status' | 'error' | 'workerId' | 'attempts' | 'retries' | 'createdAt' | 'queuedAt' | 'takenAt' | 'finishedAt'
>;

/** Where a page of a job listing starts: after the job with this createdAt and id (listing order). */
export interface JobListCursor {
  createdAt: number;
  id: string;
}

/** What `listJobs` lists. */
export interface JobListQuery {
  endpoint: string;
  /** Only jobs in one of these states; all states when absent or empty. */
  statuses?: readonly JobState[];
  /** Jobs strictly after this one in listing order (the last job of the previous page). */
  after?: JobListCursor;
  limit: number;
}

/** What `finishedTimings` reads. */
export interface FinishedJobsQuery {
  endpoint: string;
  /** Jobs that ended at or after this (epoch ms). */
  since: number;
  /** Most jobs read (the newest ends first). */
  limit: number;
}

/** When an ended job was queued, taken and ended: what `delayTime` and `executionTime` are made of. */
export interface FinishedTiming {
  id: string;
  status: JobState;
  queuedAt: number;
  takenAt: number | null;
  finishedAt: number;
}

/** What `enqueue` needs. */
export interface NewJob {
  id: string;
  endpoint: string;
  input: unknown;
  webhook?: string | null;
  /** Default (absent or null): `['completed']`. */
  webhookEvents?: readonly WebhookEvent[] | null;
  policy?: RunPolicy;
  s3Config?: S3Config | null;
  createdAt: number;
  expiresAt: number;
  executionTimeoutMs: number;
  idempotencyKey?: string | null;
}

/** The final result of a job, as a worker reported it. */
export interface JobResult {
  output?: unknown;
  error?: string;
}

/** One stream chunk of a job, numbered from 1 in arrival order. */
export interface StreamChunk {
  seq: number;
  output: unknown;
}

/** Per-endpoint counts for `/health` and scaling. */
export interface EndpointCounts {
  inQueue: number;
  inProgress: number;
  completed: number;
  failed: number;
  cancelled: number;
  timedOut: number;
  retried: number;
  /** `queuedAt` of the oldest IN_QUEUE job that is not lowPriority, or null. */
  oldestQueuedAt: number | null;
  /** IN_QUEUE jobs that are not lowPriority (these alone may cause a scale-up). */
  inQueueScalable: number;
}

/** One captured log line of a worker process. */
export interface LogLine {
  /** Assigned by the store, increasing. */
  seq?: number;
  endpoint: string;
  workerId: string;
  /** The job the line belongs to (`requestId` of a JSON log line), if any. */
  jobId: string | null;
  stream: 'stdout' | 'stderr';
  time: number;
  line: string;
}

/** What jobs came back from a worker that stopped pinging or exited. */
export interface RequeueOutcome {
  requeued: JobRecord[];
  failed: JobRecord[];
}

export type { WebhookDeliveryState } from '@kiln/protocol';

/** One webhook call in the outbox: what the admin API lists, and the body it sends. */
export interface WebhookDelivery extends WebhookDeliverySummary {
  /** The JSON body, sent byte for byte the same on every attempt. */
  payload: string;
}

/** A delivery as the admin listing shows it: without its payload, which may be large. */
export type WebhookDeliverySummary = WebhookDeliveryView;

/** What `addWebhookDelivery` needs: the delivery is pending and due at `createdAt`. */
export type NewWebhookDelivery = Pick<WebhookDelivery, 'id' | 'jobId' | 'jobRun' | 'endpoint' | 'event' | 'url' | 'payload' | 'createdAt'>;

/** How an attempt failed, and what happens next. */
export interface WebhookAttemptFailure {
  /** Why, for people: `HTTP 503: …`, `timed out after 10000 ms`, `connect ECONNREFUSED …`. */
  error: string;
  /** The receiver's HTTP status, null when there was no answer. */
  httpStatus: number | null;
  /** When to try again, unless this was attempt `maxAttempts`. */
  retryAt: number;
  /** Attempts allowed in all: the delivery is `failed` once this many have failed. */
  maxAttempts: number;
}

/** What `listWebhookDeliveries` lists. */
export interface WebhookDeliveryQuery {
  endpoint: string;
  state?: WebhookDeliveryState;
  /** Only the deliveries of this job. */
  jobId?: string;
  limit: number;
}

/**
 * The one place job state lives. Every transition is a single guarded statement: it applies only
 * when the job is in the expected state (and, for worker reports, held by that worker), and
 * returns undefined / false / [] when it did not apply, so late, duplicate or foreign reports
 * change nothing. Adapters: SQLite (one file, embedded) and PostgreSQL (several gateways).
 */
export interface JobStore {
  /** Applies pending numbered migrations. Idempotent. */
  migrate(): Promise<void>;
  /** Closes connections. */
  close(): Promise<void>;

  /** Inserts a new IN_QUEUE job. With an idempotency key already used on the endpoint, returns the existing job and `created: false`. */
  enqueue(job: NewJob): Promise<{ job: JobRecord; created: boolean }>;
  /** A job of an endpoint, or undefined (unknown, or deleted after its retention/TTL). */
  get(endpoint: string, id: string): Promise<JobRecord | undefined>;

  /**
   * IN_QUEUE → IN_PROGRESS for up to `limit` jobs of the endpoint, oldest `queuedAt` first
   * (lowPriority after the others), skipping expired ones: sets workerId, takenAt = now,
   * executionDeadline = now + executionTimeoutMs, attempts + 1. Safe under concurrent claims
   * (no job is claimed twice). May return fewer jobs than asked, or none.
   */
  claim(endpoint: string, workerId: string, limit: number, now: number): Promise<JobRecord[]>;
  /** Puts jobs claimed for a take request that could not be answered (client gone) back: IN_PROGRESS → IN_QUEUE, attempts − 1. Only jobs still held by `workerId`. */
  unclaim(ids: string[], workerId: string): Promise<number>;

  /** Progress while IN_PROGRESS and held by `workerId`: stores `output` and counts it in `progressSeq`. False otherwise (after the end, foreign worker). */
  progress(id: string, workerId: string, output: unknown): Promise<boolean>;
  /** Appends stream chunks while IN_PROGRESS and held by `workerId`. False otherwise. */
  appendStream(id: string, workerId: string, outputs: unknown[]): Promise<boolean>;
  /** Stream chunks with seq > `afterSeq`, in order. */
  streamChunks(id: string, afterSeq: number): Promise<StreamChunk[]>;
  /** IN_PROGRESS (held by `workerId`) → COMPLETED, or FAILED when `result.error` is set. Undefined when it did not apply. */
  finish(id: string, workerId: string, result: JobResult, now: number, retainUntil: number): Promise<JobRecord | undefined>;

  /** IN_QUEUE | IN_PROGRESS → CANCELLED. Returns the job after the call (unchanged if it was already final), undefined if unknown. */
  cancel(endpoint: string, id: string, now: number, retainUntil: number): Promise<{ job: JobRecord; changed: boolean } | undefined>;
  /** FAILED | TIMED_OUT → IN_QUEUE (same id): output, error, worker and stream cleared, retries + 1, queuedAt = now, new expiresAt. Undefined when it did not apply. */
  retry(endpoint: string, id: string, now: number, expiresAt: number): Promise<JobRecord | undefined>;
  /** IN_QUEUE → CANCELLED for every queued job of the endpoint; returns their ids (the caller tells whoever watches them). */
  purgeQueue(endpoint: string, now: number, retainUntil: number): Promise<string[]>;

  /** IN_PROGRESS past executionDeadline → TIMED_OUT. Returns those jobs (the caller tells their workers to stop). */
  timeOutExecutions(now: number, retainUntil: number): Promise<JobRecord[]>;
  /** IN_QUEUE past expiresAt → TIMED_OUT. */
  expireQueued(now: number, retainUntil: number): Promise<JobRecord[]>;
  /**
   * Jobs IN_PROGRESS held by a worker that died or stopped pinging: back to IN_QUEUE (worker
   * cleared, queuedAt = now) while attempts < maxAttempts, else FAILED with `reason` as error.
   */
  releaseWorkerJobs(workerId: string, reason: string, maxAttempts: number, now: number, retainUntil: number): Promise<RequeueOutcome>;
  /** IN_PROGRESS jobs held by a worker, by id (for ping reconciliation and stop requests). */
  heldBy(workerId: string): Promise<JobRecord[]>;
  /**
   * The gateway of worker `workerId` vouches, at `now`, that the worker is alive: its IN_PROGRESS
   * jobs are not abandoned (see `releaseAbandonedJobs`). Returns those jobs, by id, as `heldBy`.
   * A claim vouches for the claimed jobs by itself.
   */
  markWorkerAlive(workerId: string, now: number): Promise<JobRecord[]>;
  /**
   * IN_PROGRESS jobs that no gateway has vouched for since before `silentSince` (their gateway
   * stopped or crashed: nobody will hear from their workers again) are released as by
   * `releaseWorkerJobs`; a FAILED one gets the error `worker <its worker id> <reason>`.
   */
  releaseAbandonedJobs(silentSince: number, reason: string, maxAttempts: number, now: number, retainUntil: number): Promise<RequeueOutcome>;
  /**
   * Deletes finished jobs past retainUntil, and unfinished ones past expiresAt (RunPod's TTL is a
   * hard delete, even while running). A queued job that `expireQueued` turned TIMED_OUT is finished:
   * it stays readable until its retention ends. A finished job that still owes its `completed`
   * webhook (see `jobsOwingWebhook`) is kept until that delivery is in the outbox. Returns how many.
   */
  deleteExpired(now: number): Promise<number>;

  /**
   * A page of an endpoint's jobs, newest first: createdAt descending, then id descending (ids
   * compared bytewise), strictly after `query.after`, at most `query.limit`. Keyset paging over
   * an index, so a deep page costs what the first does; a job created or deleted meanwhile never
   * shifts the others between pages.
   */
  listJobs(query: JobListQuery): Promise<JobSummary[]>;

  /**
   * An endpoint's jobs that ended (any terminal state) at or after `query.since`, newest
   * `finishedAt` first (then id descending), at most `query.limit`: an index range scan over
   * (endpoint, finished_at), so its cost is bounded by the limit, not by the jobs kept. A job put
   * back in the queue by /retry has no `finishedAt` until it ends again.
   */
  finishedTimings(query: FinishedJobsQuery): Promise<FinishedTiming[]>;

  /**
   * Calls `listener` whenever jobs may have become claimable on an endpoint (enqueue, retry,
   * requeue, unclaim), including those made by other gateways on the same PostgreSQL database
   * (LISTEN/NOTIFY). Returns a function that unsubscribes.
   */
  onJobsAvailable(listener: (endpoint: string) => void): () => void;

  /**
   * What the scaler needs, cheaply (index range scans over queued and running jobs only, unlike
   * `counts`, which visits every retained job): queued jobs that may cause a scale-up, the oldest
   * of them, and jobs in progress.
   */
  queueStats(endpoint: string): Promise<{ inQueueScalable: number; oldestQueuedAt: number | null; inProgress: number }>;

  /** Counts for `/health`. */
  counts(endpoint: string): Promise<EndpointCounts>;

  /** Stores captured worker log lines. */
  appendLogs(lines: LogLine[]): Promise<void>;
  /** Log lines, oldest first, filtered by endpoint and optionally worker or job, after `afterSeq`. */
  readLogs(query: { endpoint: string; workerId?: string; jobId?: string; afterSeq?: number; limit?: number }): Promise<LogLine[]>;

  // The webhook outbox. A delivery is pending until a 2xx answer (delivered) or until its last
  // attempt fails (failed); an attempt is claimed before it is made and reported after, each report
  // guarded by the attempt number, so a late report of an attempt that was taken over changes nothing.

  /**
   * Finished jobs (any terminal state) with a webhook that wants `completed` and no `completed`
   * delivery for their current run (`retries`) yet, finished at or after `finishedSince`, oldest
   * `finishedAt` first, at most `limit`. The state a crash right after a terminal transition leaves
   * behind: the outbox catch-up reads it.
   */
  jobsOwingWebhook(finishedSince: number, limit: number): Promise<JobRecord[]>;
  /**
   * Adds a pending delivery, due at `createdAt`. A second `completed` delivery for the same job run
   * is not added (another gateway caught up first): returns false.
   */
  addWebhookDelivery(delivery: NewWebhookDelivery): Promise<boolean>;
  /**
   * Claims up to `limit` pending deliveries due at `now` (oldest due first) for one attempt each:
   * attempts + 1 and `nextAttemptAt = leaseUntil`, so that if this gateway dies mid-attempt the
   * delivery is due again then. Safe with several gateways: no delivery is claimed twice at once.
   */
  claimWebhookDeliveries(now: number, limit: number, leaseUntil: number): Promise<WebhookDelivery[]>;
  /** Attempt `attempt` got a 2xx answer: pending → delivered. False if the delivery moved on meanwhile (redelivered, taken over). */
  markWebhookDelivered(id: string, attempt: number, now: number, httpStatus: number): Promise<boolean>;
  /**
   * Attempt `attempt` failed: due again at `failure.retryAt`, or `failed` (kept) when it was attempt
   * `failure.maxAttempts` or later. Returns the delivery after the change; undefined if it moved on meanwhile.
   */
  markWebhookAttemptFailed(id: string, attempt: number, failure: WebhookAttemptFailure): Promise<WebhookDelivery | undefined>;
  /** Gives back a claimed attempt that was never made to completion (the gateway is stopping): attempts − 1, due at `now`. */
  releaseWebhookDelivery(id: string, attempt: number, now: number): Promise<boolean>;
  /** Any delivery → pending with attempts reset to 0, due at `now`. Undefined for an unknown id. */
  redeliverWebhook(id: string, now: number): Promise<WebhookDelivery | undefined>;
  /** An endpoint's deliveries, newest first, optionally in one state and of one job, at most `limit`, without payloads. */
  listWebhookDeliveries(query: WebhookDeliveryQuery): Promise<WebhookDeliverySummary[]>;
  /** Deletes delivered deliveries delivered before `deliveredBefore` (failed and pending ones stay). Returns how many. */
  pruneWebhookDeliveries(deliveredBefore: number): Promise<number>;
}
