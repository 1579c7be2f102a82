import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { JobState } from '@kiln/protocol';
import type {
  EndpointCounts,
  FinishedJobsQuery,
  FinishedTiming,
  JobListQuery,
  JobRecord,
  JobResult,
  JobStore,
  JobSummary,
  LogLine,
  NewJob,
  RequeueOutcome,
  StreamChunk,
} from './job-store.ts';
import {
  byQueueOrder,
  JOB_SUMMARY_COLUMNS,
  JOBS_AVAILABLE,
  jsonOrNull,
  toRecord,
  toSummary,
  type JobRow,
  type JobSummaryRow,
  type LogRow,
} from './job-rows.ts';
import { checkKnownVersions, loadMigrations } from './migrations.ts';
import type { NewWebhookDelivery, WebhookAttemptFailure, WebhookDelivery, WebhookDeliveryQuery, WebhookDeliverySummary } from './job-store.ts';
import { DELIVERY_SUMMARY_COLUMNS, toDelivery, toDeliverySummary, type DeliveryRow, type DeliverySummaryRow } from './webhook-rows.ts';

/** Where the SQLite store keeps its data. */
export interface SqliteStoreOptions {
  /** Database file (its folder is created), or `':memory:'`. */
  path: string;
}

/**
 * The release transition (IN_PROGRESS → IN_QUEUE, or FAILED once attempts reach @maxAttempts) for
 * the jobs `where` selects. SET expressions all read the row as it was, so `attempts < @maxAttempts`
 * decides every column alike.
 */
function releaseJobsSql(errorExpr: string, where: string): string {
  return `
      UPDATE jobs
         SET status             = CASE WHEN attempts < @maxAttempts THEN 'IN_QUEUE' ELSE 'FAILED' END,
             worker_id          = CASE WHEN attempts < @maxAttempts THEN NULL ELSE worker_id END,
             queued_at          = CASE WHEN attempts < @maxAttempts THEN @now ELSE queued_at END,
             taken_at           = CASE WHEN attempts < @maxAttempts THEN NULL ELSE taken_at END,
             execution_deadline = CASE WHEN attempts < @maxAttempts THEN NULL ELSE execution_deadline END,
             error              = CASE WHEN attempts < @maxAttempts THEN NULL ELSE ${errorExpr} END,
             finished_at        = CASE WHEN attempts < @maxAttempts THEN NULL ELSE @now END,
             retain_until       = CASE WHEN attempts < @maxAttempts THEN NULL ELSE @retainUntil END,
             output             = NULL
       WHERE status = 'IN_PROGRESS' AND ${where}
      RETURNING *`;
}

/** How long a statement waits for another process's write lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;

/**
 * A finished job (row `jobs`) whose webhook wants `completed` and that has no `completed` delivery
 * for its current run in the outbox yet. Such a job is not deleted until it has one.
 */
const OWES_COMPLETED_WEBHOOK = `
      jobs.finished_at IS NOT NULL AND jobs.webhook IS NOT NULL
      AND jobs.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT')
      AND (jobs.webhook_events IS NULL OR EXISTS (SELECT 1 FROM json_each(jobs.webhook_events) AS e WHERE e.value = 'completed'))
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS d WHERE d.job_id = jobs.id AND d.job_run = jobs.retries AND d.event = 'completed')`;

function prepareWebhookStatements(db: Database.Database) {
  return {
    owing: db.prepare<[number, number], JobRow>(`SELECT * FROM jobs WHERE finished_at >= ? AND ${OWES_COMPLETED_WEBHOOK} ORDER BY finished_at LIMIT ?`),
    add: db.prepare<Record<string, unknown>>(`
      INSERT INTO webhook_deliveries (id, job_id, job_run, endpoint, event, url, payload, state, attempts, next_attempt_at, created_at)
      VALUES (@id, @jobId, @jobRun, @endpoint, @event, @url, @payload, 'pending', 0, @createdAt, @createdAt)
      ON CONFLICT (job_id, job_run) WHERE event = 'completed' DO NOTHING`),
    claim: db.prepare<{ now: number; limit: number; leaseUntil: number }, DeliveryRow>(`
      UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = @leaseUntil
       WHERE id IN (SELECT id FROM webhook_deliveries
                     WHERE state = 'pending' AND next_attempt_at <= @now
                     ORDER BY next_attempt_at, created_at
                     LIMIT @limit)
         AND state = 'pending'
      RETURNING *`),
    delivered: db.prepare<{ id: string; attempt: number; now: number; httpStatus: number }>(`
      UPDATE webhook_deliveries SET state = 'delivered', delivered_at = @now, last_status = @httpStatus, last_error = NULL
       WHERE id = @id AND state = 'pending' AND attempts = @attempt`),
    attemptFailed: db.prepare<Record<string, unknown>, DeliveryRow>(`
      UPDATE webhook_deliveries
         SET state           = CASE WHEN attempts >= @maxAttempts THEN 'failed' ELSE 'pending' END,
             next_attempt_at = CASE WHEN attempts >= @maxAttempts THEN next_attempt_at ELSE @retryAt END,
             last_error = @error, last_status = @httpStatus
       WHERE id = @id AND state = 'pending' AND attempts = @attempt
      RETURNING *`),
    release: db.prepare<{ id: string; attempt: number; now: number }>(`
      UPDATE webhook_deliveries SET attempts = attempts - 1, next_attempt_at = @now
       WHERE id = @id AND state = 'pending' AND attempts = @attempt`),
    redeliver: db.prepare<{ id: string; now: number }, DeliveryRow>(`
      UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = @now, delivered_at = NULL
       WHERE id = @id
      RETURNING *`),
    list: db.prepare<{ endpoint: string; limit: number }, DeliverySummaryRow>(`
      SELECT ${DELIVERY_SUMMARY_COLUMNS} FROM webhook_deliveries
       WHERE endpoint = @endpoint ORDER BY created_at DESC, id DESC LIMIT @limit`),
    listInState: db.prepare<{ endpoint: string; state: string; limit: number }, DeliverySummaryRow>(`
      SELECT ${DELIVERY_SUMMARY_COLUMNS} FROM webhook_deliveries
       WHERE endpoint = @endpoint AND state = @state ORDER BY created_at DESC, id DESC LIMIT @limit`),
    listOfJob: db.prepare<{ endpoint: string; jobId: string; state: string | null; limit: number }, DeliverySummaryRow>(`
      SELECT ${DELIVERY_SUMMARY_COLUMNS} FROM webhook_deliveries
       WHERE job_id = @jobId AND endpoint = @endpoint AND (@state IS NULL OR state = @state)
       ORDER BY created_at DESC, id DESC LIMIT @limit`),
    prune: db.prepare<[number]>(`DELETE FROM webhook_deliveries WHERE state = 'delivered' AND delivered_at < ?`),
  };
}



interface CountsRow {
  in_queue: number;
  in_progress: number;
  completed: number;
  failed: number;
  cancelled: number;
  timed_out: number;
  retried: number;
  oldest_queued_at: number | null;
  in_queue_scalable: number;
}


/** Before every job in listing order: a cursor no job's (created_at, id) reaches. */
const LISTING_START = { createdAt: Number.MAX_SAFE_INTEGER, id: '' } as const;

/**
 * A page of an endpoint's jobs, newest first, after the cursor (@afterCreatedAt, @afterId). With a
 * status filter, one index range scan per status (`jobs_listing_status`), each stopped at @limit,
 * merged: a single scan with `status IN (…)` would read every job of those states before sorting.
 */
function listJobsSql(statusCount: number): string {
  const page = (status: string) => `
        SELECT * FROM (SELECT ${JOB_SUMMARY_COLUMNS} FROM jobs
                        WHERE endpoint = @endpoint${status} AND (created_at, id) < (@afterCreatedAt, @afterId)
                        ORDER BY created_at DESC, id DESC LIMIT @limit)`;
  if (statusCount === 0) return page('');
  const pages = Array.from({ length: statusCount }, (_, i) => page(` AND status = @status${i}`));
  return `${pages.join('\n        UNION ALL')}
         ORDER BY created_at DESC, id DESC LIMIT @limit`;
}

function byId(a: JobRecord, b: JobRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

async function applyMigrations(db: Database.Database): Promise<void> {
  const migrations = await loadMigrations('sqlite');
  db.exec('CREATE TABLE IF NOT EXISTS kiln_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
  const appliedVersions = db.prepare<[], { version: number }>('SELECT version FROM kiln_migrations');
  checkKnownVersions(appliedVersions.all().map((r) => r.version), migrations);
  const isApplied = db.prepare<[number], { version: number }>('SELECT version FROM kiln_migrations WHERE version = ?');
  const record = db.prepare<[number, string, number]>('INSERT INTO kiln_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const migration of migrations) {
    // IMMEDIATE takes the write lock before the check, so two processes opening the same file
    // cannot both apply a migration.
    db.transaction(() => {
      if (isApplied.get(migration.version)) return;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, Date.now());
    }).immediate();
  }
}

function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare<Record<string, unknown>, JobRow>(`
      INSERT INTO jobs (id, endpoint, status, input, webhook, policy, s3_config, low_priority, created_at, queued_at,
                        expires_at, execution_timeout_ms, idempotency_key, webhook_events)
      VALUES (@id, @endpoint, 'IN_QUEUE', @input, @webhook, @policy, @s3Config, @lowPriority, @createdAt, @createdAt,
              @expiresAt, @executionTimeoutMs, @idempotencyKey, @webhookEvents)
      ON CONFLICT (endpoint, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING *`),
    byIdempotencyKey: db.prepare<[string, string], JobRow>('SELECT * FROM jobs WHERE endpoint = ? AND idempotency_key = ?'),
    get: db.prepare<[string, string], JobRow>('SELECT * FROM jobs WHERE endpoint = ? AND id = ?'),
    claim: db.prepare<{ endpoint: string; workerId: string; limit: number; now: number }, JobRow>(`
      UPDATE jobs
         SET status = 'IN_PROGRESS', worker_id = @workerId, taken_at = @now, heartbeat_at = @now,
             execution_deadline = @now + execution_timeout_ms, attempts = attempts + 1
       WHERE id IN (SELECT id FROM jobs
                     WHERE endpoint = @endpoint AND status = 'IN_QUEUE' AND expires_at >= @now
                     ORDER BY low_priority, queued_at, rowid
                     LIMIT @limit)
         AND status = 'IN_QUEUE'
      RETURNING *`),
    unclaim: db.prepare<{ ids: string; workerId: string }, { endpoint: string }>(`
      UPDATE jobs
         SET status = 'IN_QUEUE', worker_id = NULL, taken_at = NULL, execution_deadline = NULL, attempts = attempts - 1
       WHERE id IN (SELECT value FROM json_each(@ids)) AND status = 'IN_PROGRESS' AND worker_id = @workerId
      RETURNING endpoint`),
    progress: db.prepare<[string | null, string, string]>(`
      UPDATE jobs SET output = ?, progress_seq = progress_seq + 1 WHERE id = ? AND status = 'IN_PROGRESS' AND worker_id = ?`),
    reserveStreamSeq: db.prepare<[number, string, string], { stream_seq: number }>(`
      UPDATE jobs SET stream_seq = stream_seq + ? WHERE id = ? AND status = 'IN_PROGRESS' AND worker_id = ?
      RETURNING stream_seq`),
    insertChunk: db.prepare<[string, number, string]>('INSERT INTO job_stream (job_id, seq, output) VALUES (?, ?, ?)'),
    streamChunks: db.prepare<[string, number], { seq: number; output: string }>(
      'SELECT seq, output FROM job_stream WHERE job_id = ? AND seq > ? ORDER BY seq',
    ),
    finish: db.prepare<Record<string, unknown>, JobRow>(`
      UPDATE jobs
         SET status = CASE WHEN @error IS NULL THEN 'COMPLETED' ELSE 'FAILED' END,
             output = @output, error = @error, finished_at = @now, retain_until = @retainUntil
       WHERE id = @id AND status = 'IN_PROGRESS' AND worker_id = @workerId
      RETURNING *`),
    cancel: db.prepare<[number, number, string, string], JobRow>(`
      UPDATE jobs SET status = 'CANCELLED', finished_at = ?, retain_until = ?
       WHERE endpoint = ? AND id = ? AND status IN ('IN_QUEUE', 'IN_PROGRESS')
      RETURNING *`),
    // attempts restarts with the new run so that releaseWorkerJobs gives it the full maxAttempts again.
    retry: db.prepare<[number, number, string, string], JobRow>(`
      UPDATE jobs
         SET status = 'IN_QUEUE', queued_at = ?, expires_at = ?, retries = retries + 1, attempts = 0,
             output = NULL, error = NULL, worker_id = NULL, taken_at = NULL, finished_at = NULL,
             execution_deadline = NULL, retain_until = NULL, stream_seq = 0, progress_seq = 0
       WHERE endpoint = ? AND id = ? AND status IN ('FAILED', 'TIMED_OUT')
      RETURNING *`),
    clearStream: db.prepare<[string]>('DELETE FROM job_stream WHERE job_id = ?'),
    purgeQueue: db.prepare<[number, number, string], { id: string }>(`
      UPDATE jobs SET status = 'CANCELLED', finished_at = ?, retain_until = ? WHERE endpoint = ? AND status = 'IN_QUEUE'
      RETURNING id`),
    timeOutExecutions: db.prepare<[number, number, number], JobRow>(`
      UPDATE jobs SET status = 'TIMED_OUT', finished_at = ?, retain_until = ?
       WHERE status = 'IN_PROGRESS' AND execution_deadline < ?
      RETURNING *`),
    expireQueued: db.prepare<[number, number, number], JobRow>(`
      UPDATE jobs SET status = 'TIMED_OUT', finished_at = ?, retain_until = ?
       WHERE status = 'IN_QUEUE' AND expires_at < ?
      RETURNING *`),
    releaseWorkerJobs: db.prepare<Record<string, unknown>, JobRow>(releaseJobsSql('@reason', 'worker_id = @workerId')),
    heldBy: db.prepare<[string], JobRow>(`SELECT * FROM jobs WHERE worker_id = ? AND status = 'IN_PROGRESS' ORDER BY id`),
    markWorkerAlive: db.prepare<[number, string], JobRow>(`
      UPDATE jobs SET heartbeat_at = ? WHERE worker_id = ? AND status = 'IN_PROGRESS' RETURNING *`),
    // Every holder nobody vouched for since @silentSince (taken_at on rows older than heartbeat_at).
    releaseAbandonedJobs: db.prepare<Record<string, unknown>, JobRow>(
      releaseJobsSql("'worker ' || worker_id || ' ' || @reason", 'coalesce(heartbeat_at, taken_at) < @silentSince'),
    ),
    deleteExpired: db.prepare<{ now: number }>(`
      DELETE FROM jobs
       WHERE ((status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT') AND retain_until < @now)
          OR (status IN ('IN_QUEUE', 'IN_PROGRESS') AND expires_at < @now))
         AND NOT (${OWES_COMPLETED_WEBHOOK})`),
    // Only columns of the jobs_finished index: an index-only scan, no table row read.
    finished: db.prepare<{ endpoint: string; since: number; limit: number }, unknown[]>(`
      SELECT id, status, queued_at, taken_at, finished_at FROM jobs
       WHERE endpoint = @endpoint AND finished_at IS NOT NULL AND finished_at >= @since
       ORDER BY finished_at DESC, id DESC LIMIT @limit`),
    counts: db.prepare<[string], CountsRow>(`
      SELECT count(*) FILTER (WHERE status = 'IN_QUEUE')    AS in_queue,
             count(*) FILTER (WHERE status = 'IN_PROGRESS') AS in_progress,
             count(*) FILTER (WHERE status = 'COMPLETED')   AS completed,
             count(*) FILTER (WHERE status = 'FAILED')      AS failed,
             count(*) FILTER (WHERE status = 'CANCELLED')   AS cancelled,
             count(*) FILTER (WHERE status = 'TIMED_OUT')   AS timed_out,
             count(*) FILTER (WHERE retries > 0)            AS retried,
             min(queued_at) FILTER (WHERE status = 'IN_QUEUE' AND low_priority = 0) AS oldest_queued_at,
             count(*) FILTER (WHERE status = 'IN_QUEUE' AND low_priority = 0)       AS in_queue_scalable
        FROM jobs WHERE endpoint = ?`),
    queueStats: db.prepare<{ endpoint: string }, { in_queue_scalable: number; oldest_queued_at: number | null; in_progress: number }>(`
      SELECT (SELECT count(*) FROM jobs WHERE endpoint = @endpoint AND status = 'IN_QUEUE' AND low_priority = 0) AS in_queue_scalable,
             (SELECT min(queued_at) FROM jobs WHERE endpoint = @endpoint AND status = 'IN_QUEUE' AND low_priority = 0) AS oldest_queued_at,
             (SELECT count(*) FROM jobs WHERE endpoint = @endpoint AND status = 'IN_PROGRESS') AS in_progress`),
    anyClaimable: db.prepare<{ endpoint: string; now: number }, { one: number }>(`
      SELECT 1 AS one FROM jobs WHERE endpoint = @endpoint AND status = 'IN_QUEUE' AND expires_at >= @now LIMIT 1`),
    appendLog: db.prepare<[string, string, string | null, string, number, string]>(`
      INSERT INTO worker_logs (endpoint, worker_id, job_id, stream, time, line) VALUES (?, ?, ?, ?, ?, ?)`),
    // One statement per filter combination, so each can use its own index.
    readLogs: {
      endpoint: db.prepare<Record<string, unknown>, LogRow>(`
        SELECT * FROM worker_logs WHERE endpoint = @endpoint AND seq > @afterSeq ORDER BY seq LIMIT @limit`),
      worker: db.prepare<Record<string, unknown>, LogRow>(`
        SELECT * FROM worker_logs WHERE worker_id = @workerId AND endpoint = @endpoint AND seq > @afterSeq ORDER BY seq LIMIT @limit`),
      job: db.prepare<Record<string, unknown>, LogRow>(`
        SELECT * FROM worker_logs WHERE job_id = @jobId AND endpoint = @endpoint AND seq > @afterSeq ORDER BY seq LIMIT @limit`),
      workerAndJob: db.prepare<Record<string, unknown>, LogRow>(`
        SELECT * FROM worker_logs
         WHERE job_id = @jobId AND worker_id = @workerId AND endpoint = @endpoint AND seq > @afterSeq ORDER BY seq LIMIT @limit`),
    },
  };
}

/**
 * The job store on one SQLite file (better-sqlite3, WAL): the default for a single gateway.
 * Create it with {@link openSqliteStore}, which migrates the file first.
 */
class SqliteJobStore implements JobStore {
  readonly #db: Database.Database;
  readonly #sql: ReturnType<typeof prepareStatements>;
  readonly #events = new EventEmitter();
  /** listJobs statements by the number of statuses filtered on (0 to 6). */
  readonly #listJobs = new Map<number, Database.Statement<Record<string, unknown>, JobSummaryRow>>();
  readonly #webhooks: ReturnType<typeof prepareWebhookStatements>;

  /** Wraps an open, migrated database. */
  constructor(db: Database.Database) {
    this.#db = db;
    this.#sql = prepareStatements(db);
    this.#webhooks = prepareWebhookStatements(db);
    this.#events.setMaxListeners(0);
  }

  async migrate(): Promise<void> {
    await applyMigrations(this.#db);
  }

  async close(): Promise<void> {
    this.#events.removeAllListeners();
    if (this.#db.open) this.#db.close();
  }

  async enqueue(job: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const idempotencyKey = job.idempotencyKey ?? null;
    const inserted = this.#sql.insert.get({
      id: job.id,
      endpoint: job.endpoint,
      input: JSON.stringify(job.input ?? null),
      webhook: job.webhook ?? null,
      webhookEvents: job.webhookEvents ? JSON.stringify(job.webhookEvents) : null,
      policy: JSON.stringify(job.policy ?? {}),
      s3Config: job.s3Config ? JSON.stringify(job.s3Config) : null,
      lowPriority: job.policy?.lowPriority === true ? 1 : 0,
      createdAt: job.createdAt,
      expiresAt: job.expiresAt,
      executionTimeoutMs: job.executionTimeoutMs,
      idempotencyKey,
    });
    if (inserted) {
      this.#events.emit(JOBS_AVAILABLE, job.endpoint);
      return { job: toRecord(inserted), created: true };
    }
    const existing = this.#sql.byIdempotencyKey.get(job.endpoint, idempotencyKey ?? '');
    if (!existing) throw new Error(`job ${job.id} was not inserted and no job holds its idempotency key`);
    return { job: toRecord(existing), created: false };
  }

  async get(endpoint: string, id: string): Promise<JobRecord | undefined> {
    const row = this.#sql.get.get(endpoint, id);
    return row && toRecord(row);
  }

  async claim(endpoint: string, workerId: string, limit: number, now: number): Promise<JobRecord[]> {
    if (limit <= 0) return [];
    // Most takes find an empty queue: a read answers that without taking the write lock. A job
    // enqueued right after is not missed: takers subscribe to onJobsAvailable before claiming.
    if (!this.#sql.anyClaimable.get({ endpoint, now })) return [];
    const rows = this.#db.transaction(() => this.#sql.claim.all({ endpoint, workerId, limit, now })).immediate();
    return rows.map(toRecord).sort(byQueueOrder);
  }

  async unclaim(ids: string[], workerId: string): Promise<number> {
    if (ids.length === 0) return 0;
    const rows = this.#sql.unclaim.all({ ids: JSON.stringify(ids), workerId });
    for (const endpoint of new Set(rows.map((r) => r.endpoint))) this.#events.emit(JOBS_AVAILABLE, endpoint);
    return rows.length;
  }

  async progress(id: string, workerId: string, output: unknown): Promise<boolean> {
    return this.#sql.progress.run(jsonOrNull(output), id, workerId).changes > 0;
  }

  async appendStream(id: string, workerId: string, outputs: unknown[]): Promise<boolean> {
    return this.#db
      .transaction(() => {
        const reserved = this.#sql.reserveStreamSeq.get(outputs.length, id, workerId);
        if (!reserved) return false;
        const first = reserved.stream_seq - outputs.length + 1;
        outputs.forEach((output, i) => this.#sql.insertChunk.run(id, first + i, JSON.stringify(output ?? null)));
        return true;
      })
      .immediate();
  }

  async streamChunks(id: string, afterSeq: number): Promise<StreamChunk[]> {
    return this.#sql.streamChunks.all(id, afterSeq).map((r) => ({ seq: r.seq, output: JSON.parse(r.output) }));
  }

  async finish(id: string, workerId: string, result: JobResult, now: number, retainUntil: number): Promise<JobRecord | undefined> {
    const row = this.#sql.finish.get({
      id,
      workerId,
      output: jsonOrNull(result.output),
      error: result.error ?? null,
      now,
      retainUntil,
    });
    return row && toRecord(row);
  }

  async cancel(endpoint: string, id: string, now: number, retainUntil: number): Promise<{ job: JobRecord; changed: boolean } | undefined> {
    const cancelled = this.#sql.cancel.get(now, retainUntil, endpoint, id);
    if (cancelled) return { job: toRecord(cancelled), changed: true };
    const row = this.#sql.get.get(endpoint, id);
    return row && { job: toRecord(row), changed: false };
  }

  async retry(endpoint: string, id: string, now: number, expiresAt: number): Promise<JobRecord | undefined> {
    const row = this.#db
      .transaction(() => {
        const retried = this.#sql.retry.get(now, expiresAt, endpoint, id);
        if (retried) this.#sql.clearStream.run(id);
        return retried;
      })
      .immediate();
    if (!row) return undefined;
    this.#events.emit(JOBS_AVAILABLE, endpoint);
    return toRecord(row);
  }

  async purgeQueue(endpoint: string, now: number, retainUntil: number): Promise<string[]> {
    return this.#sql.purgeQueue.all(now, retainUntil, endpoint).map((row) => row.id);
  }

  async timeOutExecutions(now: number, retainUntil: number): Promise<JobRecord[]> {
    return this.#sql.timeOutExecutions.all(now, retainUntil, now).map(toRecord);
  }

  async expireQueued(now: number, retainUntil: number): Promise<JobRecord[]> {
    return this.#sql.expireQueued.all(now, retainUntil, now).map(toRecord);
  }

  async releaseWorkerJobs(workerId: string, reason: string, maxAttempts: number, now: number, retainUntil: number): Promise<RequeueOutcome> {
    const jobs = this.#sql.releaseWorkerJobs.all({ workerId, reason, maxAttempts, now, retainUntil }).map(toRecord).sort(byQueueOrder);
    const requeued = jobs.filter((j) => j.status === 'IN_QUEUE');
    for (const endpoint of new Set(requeued.map((j) => j.endpoint))) this.#events.emit(JOBS_AVAILABLE, endpoint);
    return { requeued, failed: jobs.filter((j) => j.status === 'FAILED') };
  }

  async heldBy(workerId: string): Promise<JobRecord[]> {
    return this.#sql.heldBy.all(workerId).map(toRecord);
  }

  async markWorkerAlive(workerId: string, now: number): Promise<JobRecord[]> {
    return this.#sql.markWorkerAlive.all(now, workerId).map(toRecord).sort(byId);
  }

  async releaseAbandonedJobs(silentSince: number, reason: string, maxAttempts: number, now: number, retainUntil: number): Promise<RequeueOutcome> {
    const jobs = this.#sql.releaseAbandonedJobs.all({ silentSince, reason, maxAttempts, now, retainUntil }).map(toRecord).sort(byQueueOrder);
    const requeued = jobs.filter((j) => j.status === 'IN_QUEUE');
    for (const endpoint of new Set(requeued.map((j) => j.endpoint))) this.#events.emit(JOBS_AVAILABLE, endpoint);
    return { requeued, failed: jobs.filter((j) => j.status === 'FAILED') };
  }

  async deleteExpired(now: number): Promise<number> {
    return this.#sql.deleteExpired.run({ now }).changes;
  }

  async listJobs(query: JobListQuery): Promise<JobSummary[]> {
    const statuses = [...new Set(query.statuses ?? [])];
    let statement = this.#listJobs.get(statuses.length);
    if (!statement) {
      statement = this.#db.prepare<Record<string, unknown>, JobSummaryRow>(listJobsSql(statuses.length));
      this.#listJobs.set(statuses.length, statement);
    }
    const params: Record<string, unknown> = {
      endpoint: query.endpoint,
      afterCreatedAt: query.after?.createdAt ?? LISTING_START.createdAt,
      afterId: query.after?.id ?? LISTING_START.id,
      limit: query.limit,
    };
    statuses.forEach((status, i) => (params[`status${i}`] = status));
    return statement.all(params).map(toSummary);
  }

  async finishedTimings(query: FinishedJobsQuery): Promise<FinishedTiming[]> {
    // Rows as arrays: 10,000 of them come back, and arrays cost half what objects do to build.
    const rows = this.#sql.finished.raw(true).all(query) as [string, JobState, number, number | null, number][];
    return rows.map(([id, status, queuedAt, takenAt, finishedAt]) => ({ id, status, queuedAt, takenAt, finishedAt }));
  }

  onJobsAvailable(listener: (endpoint: string) => void): () => void {
    this.#events.on(JOBS_AVAILABLE, listener);
    return () => this.#events.off(JOBS_AVAILABLE, listener);
  }

  async queueStats(endpoint: string): Promise<{ inQueueScalable: number; oldestQueuedAt: number | null; inProgress: number }> {
    const row = this.#sql.queueStats.get({ endpoint })!;
    return { inQueueScalable: row.in_queue_scalable, oldestQueuedAt: row.oldest_queued_at, inProgress: row.in_progress };
  }

  async counts(endpoint: string): Promise<EndpointCounts> {
    const row = this.#sql.counts.get(endpoint);
    if (!row) throw new Error('an aggregate query returned no row');
    return {
      inQueue: row.in_queue,
      inProgress: row.in_progress,
      completed: row.completed,
      failed: row.failed,
      cancelled: row.cancelled,
      timedOut: row.timed_out,
      retried: row.retried,
      oldestQueuedAt: row.oldest_queued_at,
      inQueueScalable: row.in_queue_scalable,
    };
  }

  async appendLogs(lines: LogLine[]): Promise<void> {
    this.#db
      .transaction(() => {
        for (const l of lines) this.#sql.appendLog.run(l.endpoint, l.workerId, l.jobId, l.stream, l.time, l.line);
      })
      .immediate();
  }

  async readLogs(query: { endpoint: string; workerId?: string; jobId?: string; afterSeq?: number; limit?: number }): Promise<LogLine[]> {
    const { readLogs } = this.#sql;
    const statement =
      query.workerId !== undefined && query.jobId !== undefined
        ? readLogs.workerAndJob
        : query.workerId !== undefined
          ? readLogs.worker
          : query.jobId !== undefined
            ? readLogs.job
            : readLogs.endpoint;
    const rows = statement.all({
      endpoint: query.endpoint,
      workerId: query.workerId,
      jobId: query.jobId,
      afterSeq: query.afterSeq ?? 0,
      // SQLite reads a negative LIMIT as "no limit".
      limit: query.limit ?? -1,
    });
    return rows.map((r) => ({ seq: r.seq, endpoint: r.endpoint, workerId: r.worker_id, jobId: r.job_id, stream: r.stream, time: r.time, line: r.line }));
  }

  async jobsOwingWebhook(finishedSince: number, limit: number): Promise<JobRecord[]> {
    return this.#webhooks.owing.all(finishedSince, limit).map(toRecord);
  }

  async addWebhookDelivery(delivery: NewWebhookDelivery): Promise<boolean> {
    return this.#webhooks.add.run({ ...delivery }).changes > 0;
  }

  async claimWebhookDeliveries(now: number, limit: number, leaseUntil: number): Promise<WebhookDelivery[]> {
    if (limit <= 0) return [];
    const rows = this.#db.transaction(() => this.#webhooks.claim.all({ now, limit, leaseUntil })).immediate();
    return rows.map(toDelivery).sort((a, b) => a.createdAt - b.createdAt);
  }

  async markWebhookDelivered(id: string, attempt: number, now: number, httpStatus: number): Promise<boolean> {
    return this.#webhooks.delivered.run({ id, attempt, now, httpStatus }).changes > 0;
  }

  async markWebhookAttemptFailed(id: string, attempt: number, failure: WebhookAttemptFailure): Promise<WebhookDelivery | undefined> {
    const row = this.#webhooks.attemptFailed.get({ id, attempt, ...failure });
    return row && toDelivery(row);
  }

  async releaseWebhookDelivery(id: string, attempt: number, now: number): Promise<boolean> {
    return this.#webhooks.release.run({ id, attempt, now }).changes > 0;
  }

  async redeliverWebhook(id: string, now: number): Promise<WebhookDelivery | undefined> {
    const row = this.#webhooks.redeliver.get({ id, now });
    return row && toDelivery(row);
  }

  async listWebhookDeliveries(query: WebhookDeliveryQuery): Promise<WebhookDeliverySummary[]> {
    const rows =
      query.jobId !== undefined
        ? this.#webhooks.listOfJob.all({ endpoint: query.endpoint, jobId: query.jobId, state: query.state ?? null, limit: query.limit })
        : query.state === undefined
        ? this.#webhooks.list.all({ endpoint: query.endpoint, limit: query.limit })
        : this.#webhooks.listInState.all({ endpoint: query.endpoint, state: query.state, limit: query.limit });
    return rows.map(toDeliverySummary);
  }

  async pruneWebhookDeliveries(deliveredBefore: number): Promise<number> {
    return this.#webhooks.prune.run(deliveredBefore).changes;
  }
}

/**
 * Opens (creating it if needed) and migrates the SQLite job store at `options.path`.
 *
 * @example
 * const store = await openSqliteStore({ path: '.kiln/jobs.db' });
 * const { job } = await store.enqueue({ id, endpoint: 'tts', input, createdAt: now, expiresAt: now + ttl, executionTimeoutMs: 600_000 });
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<JobStore> {
  if (options.path !== ':memory:') mkdirSync(path.dirname(path.resolve(options.path)), { recursive: true });
  const db = new Database(options.path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('foreign_keys = ON');
    await applyMigrations(db);
    return new SqliteJobStore(db);
  } catch (error) {
    db.close();
    throw error;
  }
}
