import { EventEmitter } from 'node:events';
import postgres from 'postgres';
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
  toFinishedTiming,
  type FinishedTimingRow,
} from './job-rows.ts';
import { checkKnownVersions, loadMigrations } from './migrations.ts';
import type { NewWebhookDelivery, WebhookAttemptFailure, WebhookDelivery, WebhookDeliveryQuery, WebhookDeliverySummary } from './job-store.ts';
import { DELIVERY_SUMMARY_COLUMNS, toDelivery, toDeliverySummary, type DeliveryRow, type DeliverySummaryRow } from './webhook-rows.ts';

/** Where the PostgreSQL store keeps its data. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` */
  url: string;
  /** Schema holding the tables, created if missing. Lower-case letters, digits and `_`. Default `kiln`. */
  schema?: string;
}

const DEFAULT_SCHEMA = 'kiln';
const CHANNEL_PREFIX = 'kiln_jobs_available_';
/** PostgreSQL truncates identifiers (channel names included) to 63 bytes. */
const MAX_IDENTIFIER_LENGTH = 63;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]*$/;

// bigint epoch-ms columns and counts come back as numbers (postgres.js gives strings by default);
// json/jsonb stay text both ways so that SQL NULL (no output) and JSON null stay apart.
const TYPES = {
  epochMs: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
  jsonText: { to: 3802, from: [114, 3802], serialize: (x: string) => x, parse: (x: string) => x },
};

type Sql = postgres.Sql<{ epochMs: number; jsonText: string }>;

/**
 * A finished job (row `jobs`) whose webhook wants `completed` and that has no `completed` delivery
 * for its current run in the outbox yet. Such a job is not deleted until it has one.
 */
const OWES_COMPLETED_WEBHOOK = `
      jobs.finished_at IS NOT NULL AND jobs.webhook IS NOT NULL
      AND jobs.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT')
      AND (jobs.webhook_events IS NULL OR jobs.webhook_events @> '["completed"]'::jsonb)
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS d WHERE d.job_id = jobs.id AND d.job_run = jobs.retries AND d.event = 'completed')`;




function byId(a: JobRecord, b: JobRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

async function applyMigrations(sql: Sql, schema: string): Promise<void> {
  const migrations = await loadMigrations('postgres');
  // Gateways starting together serialise on this lock; concurrent CREATE ... IF NOT EXISTS
  // can otherwise fail with a unique violation in the catalogs.
  const lockKey = `kiln_migrations:${schema}`;
  const applied = await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`;
    // Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the schema exists.
    const [found] = await tx`SELECT 1 FROM pg_namespace WHERE nspname = ${schema}`;
    if (!found) await tx`CREATE SCHEMA ${tx(schema)}`;
    await tx`
      CREATE TABLE IF NOT EXISTS ${tx(schema)}.kiln_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    return tx<{ version: number }[]>`SELECT version FROM ${tx(schema)}.kiln_migrations`;
  });
  checkKnownVersions(applied.map((r) => r.version), migrations);
  for (const migration of migrations) {
    if (applied.some((r) => r.version === migration.version)) continue;
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`;
      const [done] = await tx`SELECT 1 FROM ${tx(schema)}.kiln_migrations WHERE version = ${migration.version}`;
      if (done) return;
      await tx.unsafe(`SET LOCAL search_path TO ${schema}`);
      await tx.unsafe(migration.sql);
      await tx`INSERT INTO ${tx(schema)}.kiln_migrations (version, name) VALUES (${migration.version}, ${migration.name})`;
    });
  }
}

/**
 * The job store on PostgreSQL, for several gateways sharing one database. Connections run with
 * `search_path` set to the schema, so statements name tables unqualified. Wake-ups go through
 * NOTIFY on a channel named after the schema, sent by the statement that makes jobs claimable,
 * so they reach every gateway only once that change is committed.
 */
class PostgresJobStore implements JobStore {
  readonly #sql: Sql;
  readonly #schema: string;
  readonly #channel: string;
  readonly #events: EventEmitter;

  constructor(sql: Sql, schema: string, channel: string, events: EventEmitter) {
    this.#sql = sql;
    this.#schema = schema;
    this.#channel = channel;
    this.#events = events;
  }

  async migrate(): Promise<void> {
    await applyMigrations(this.#sql, this.#schema);
  }

  async close(): Promise<void> {
    this.#events.removeAllListeners();
    await this.#sql.end({ timeout: 5 });
  }

  async enqueue(job: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const sql = this.#sql;
    const idempotencyKey = job.idempotencyKey ?? null;
    // Twice at most: the job holding the key may be deleted between the conflict and the read.
    for (let attempt = 0; attempt < 2; attempt++) {
      const [inserted] = await sql<JobRow[]>`
        INSERT INTO jobs (id, endpoint, status, input, webhook, policy, s3_config, low_priority, created_at, queued_at,
                          expires_at, execution_timeout_ms, idempotency_key, webhook_events)
        VALUES (${job.id}, ${job.endpoint}, 'IN_QUEUE', ${JSON.stringify(job.input ?? null)}::jsonb, ${job.webhook ?? null},
                ${JSON.stringify(job.policy ?? {})}::jsonb, ${job.s3Config ? JSON.stringify(job.s3Config) : null}::jsonb,
                ${job.policy?.lowPriority === true}, ${job.createdAt}, ${job.createdAt}, ${job.expiresAt},
                ${job.executionTimeoutMs}, ${idempotencyKey}, ${job.webhookEvents ? JSON.stringify(job.webhookEvents) : null}::jsonb)
        ON CONFLICT (endpoint, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING *, pg_notify(${this.#channel}, endpoint)`;
      if (inserted) return { job: toRecord(inserted), created: true };
      const [existing] = await sql<JobRow[]>`SELECT * FROM jobs WHERE endpoint = ${job.endpoint} AND idempotency_key = ${idempotencyKey}`;
      if (existing) return { job: toRecord(existing), created: false };
    }
    throw new Error(`job ${job.id} was not inserted and no job holds its idempotency key`);
  }

  async get(endpoint: string, id: string): Promise<JobRecord | undefined> {
    const [row] = await this.#sql<JobRow[]>`SELECT * FROM jobs WHERE endpoint = ${endpoint} AND id = ${id}`;
    return row && toRecord(row);
  }

  async claim(endpoint: string, workerId: string, limit: number, now: number): Promise<JobRecord[]> {
    if (limit <= 0) return [];
    // SKIP LOCKED: concurrent claimers each lock different rows instead of queueing behind one another.
    const rows = await this.#sql<JobRow[]>`
      WITH next AS (
        SELECT id FROM jobs
         WHERE endpoint = ${endpoint} AND status = 'IN_QUEUE' AND expires_at >= ${now}
         ORDER BY low_priority, queued_at, seq
         LIMIT ${limit}
           FOR UPDATE SKIP LOCKED
      )
      UPDATE jobs
         SET status = 'IN_PROGRESS', worker_id = ${workerId}, taken_at = ${now}, heartbeat_at = ${now},
             execution_deadline = ${now} + execution_timeout_ms, attempts = attempts + 1
        FROM next
       WHERE jobs.id = next.id AND jobs.status = 'IN_QUEUE'
      RETURNING jobs.*`;
    return rows.map(toRecord).sort(byQueueOrder);
  }

  async unclaim(ids: string[], workerId: string): Promise<number> {
    if (ids.length === 0) return 0;
    const rows = await this.#sql`
      UPDATE jobs
         SET status = 'IN_QUEUE', worker_id = NULL, taken_at = NULL, execution_deadline = NULL, attempts = attempts - 1
       WHERE id = ANY(${ids}::text[]) AND status = 'IN_PROGRESS' AND worker_id = ${workerId}
      RETURNING id, pg_notify(${this.#channel}, endpoint)`;
    return rows.length;
  }

  async progress(id: string, workerId: string, output: unknown): Promise<boolean> {
    const result = await this.#sql`
      UPDATE jobs SET output = ${jsonOrNull(output)}::jsonb, progress_seq = progress_seq + 1
       WHERE id = ${id} AND status = 'IN_PROGRESS' AND worker_id = ${workerId}`;
    return result.count > 0;
  }

  async appendStream(id: string, workerId: string, outputs: unknown[]): Promise<boolean> {
    // Bumping stream_seq locks the job row, so concurrent appends to one job number their chunks
    // one after the other; the guard makes it a no-op for a job the worker does not hold.
    const [row] = await this.#sql<{ held: number }[]>`
      WITH job AS (
        UPDATE jobs SET stream_seq = stream_seq + ${outputs.length}
         WHERE id = ${id} AND status = 'IN_PROGRESS' AND worker_id = ${workerId}
        RETURNING id, stream_seq
      ), chunks AS (
        INSERT INTO job_stream (job_id, seq, output)
        SELECT job.id, job.stream_seq - ${outputs.length} + chunk.ord, chunk.value
          FROM job, jsonb_array_elements(${JSON.stringify(outputs)}::jsonb) WITH ORDINALITY AS chunk (value, ord)
      )
      SELECT count(*)::int AS held FROM job`;
    return (row?.held ?? 0) > 0;
  }

  async streamChunks(id: string, afterSeq: number): Promise<StreamChunk[]> {
    const rows = await this.#sql<{ seq: number; output: string }[]>`
      SELECT seq, output FROM job_stream WHERE job_id = ${id} AND seq > ${afterSeq} ORDER BY seq`;
    return rows.map((r) => ({ seq: r.seq, output: JSON.parse(r.output) }));
  }

  async finish(id: string, workerId: string, result: JobResult, now: number, retainUntil: number): Promise<JobRecord | undefined> {
    const error = result.error ?? null;
    const [row] = await this.#sql<JobRow[]>`
      UPDATE jobs
         SET status = ${error === null ? 'COMPLETED' : 'FAILED'}, output = ${jsonOrNull(result.output)}::jsonb,
             error = ${error}, finished_at = ${now}, retain_until = ${retainUntil}
       WHERE id = ${id} AND status = 'IN_PROGRESS' AND worker_id = ${workerId}
      RETURNING *`;
    return row && toRecord(row);
  }

  async cancel(endpoint: string, id: string, now: number, retainUntil: number): Promise<{ job: JobRecord; changed: boolean } | undefined> {
    const [cancelled] = await this.#sql<JobRow[]>`
      UPDATE jobs SET status = 'CANCELLED', finished_at = ${now}, retain_until = ${retainUntil}
       WHERE endpoint = ${endpoint} AND id = ${id} AND status IN ('IN_QUEUE', 'IN_PROGRESS')
      RETURNING *`;
    if (cancelled) return { job: toRecord(cancelled), changed: true };
    const current = await this.get(endpoint, id);
    return current && { job: current, changed: false };
  }

  async retry(endpoint: string, id: string, now: number, expiresAt: number): Promise<JobRecord | undefined> {
    // attempts restarts with the new run so that releaseWorkerJobs gives it the full maxAttempts again.
    const [row] = await this.#sql<JobRow[]>`
      WITH retried AS (
        UPDATE jobs
           SET status = 'IN_QUEUE', queued_at = ${now}, expires_at = ${expiresAt}, retries = retries + 1, attempts = 0,
               output = NULL, error = NULL, worker_id = NULL, taken_at = NULL, finished_at = NULL,
               execution_deadline = NULL, retain_until = NULL, stream_seq = 0, progress_seq = 0
         WHERE endpoint = ${endpoint} AND id = ${id} AND status IN ('FAILED', 'TIMED_OUT')
        RETURNING *
      ), cleared AS (
        DELETE FROM job_stream WHERE job_id IN (SELECT id FROM retried)
      )
      SELECT retried.*, pg_notify(${this.#channel}, retried.endpoint) FROM retried`;
    return row && toRecord(row);
  }

  async purgeQueue(endpoint: string, now: number, retainUntil: number): Promise<string[]> {
    const rows = await this.#sql<{ id: string }[]>`
      UPDATE jobs SET status = 'CANCELLED', finished_at = ${now}, retain_until = ${retainUntil}
       WHERE endpoint = ${endpoint} AND status = 'IN_QUEUE'
      RETURNING id`;
    return rows.map((row) => row.id);
  }

  async timeOutExecutions(now: number, retainUntil: number): Promise<JobRecord[]> {
    const rows = await this.#sql<JobRow[]>`
      UPDATE jobs SET status = 'TIMED_OUT', finished_at = ${now}, retain_until = ${retainUntil}
       WHERE status = 'IN_PROGRESS' AND execution_deadline < ${now}
      RETURNING *`;
    return rows.map(toRecord);
  }

  async expireQueued(now: number, retainUntil: number): Promise<JobRecord[]> {
    const rows = await this.#sql<JobRow[]>`
      UPDATE jobs SET status = 'TIMED_OUT', finished_at = ${now}, retain_until = ${retainUntil}
       WHERE status = 'IN_QUEUE' AND expires_at < ${now}
      RETURNING *`;
    return rows.map(toRecord);
  }

  async releaseWorkerJobs(workerId: string, reason: string, maxAttempts: number, now: number, retainUntil: number): Promise<RequeueOutcome> {
    const sql = this.#sql;
    return this.#release(sql`${reason}::text`, sql`worker_id = ${workerId}`, maxAttempts, now, retainUntil);
  }

  async heldBy(workerId: string): Promise<JobRecord[]> {
    const rows = await this.#sql<JobRow[]>`SELECT * FROM jobs WHERE worker_id = ${workerId} AND status = 'IN_PROGRESS' ORDER BY id`;
    return rows.map(toRecord);
  }

  async markWorkerAlive(workerId: string, now: number): Promise<JobRecord[]> {
    const rows = await this.#sql<JobRow[]>`
      UPDATE jobs SET heartbeat_at = ${now} WHERE worker_id = ${workerId} AND status = 'IN_PROGRESS' RETURNING *`;
    return rows.map(toRecord).sort(byId);
  }

  async releaseAbandonedJobs(silentSince: number, reason: string, maxAttempts: number, now: number, retainUntil: number): Promise<RequeueOutcome> {
    // Every holder nobody vouched for since silentSince (taken_at on rows older than heartbeat_at).
    // Gateways sweeping together are serialised by the row locks, and the re-checked WHERE lets only
    // the first one release a job.
    const sql = this.#sql;
    return this.#release(sql`'worker ' || worker_id || ' ' || ${reason}::text`, sql`coalesce(heartbeat_at, taken_at) < ${silentSince}`, maxAttempts, now, retainUntil);
  }

  /**
   * The release transition (IN_PROGRESS → IN_QUEUE, or FAILED once attempts reach maxAttempts) for
   * the jobs `where` selects. SET expressions all read the row as it was, so `attempts < maxAttempts`
   * decides every column alike. Parameters inside CASE get no type from their column, hence the casts.
   */
  async #release(error: postgres.Fragment, where: postgres.Fragment, maxAttempts: number, now: number, retainUntil: number): Promise<RequeueOutcome> {
    const rows = await this.#sql<JobRow[]>`
      UPDATE jobs
         SET status             = CASE WHEN attempts < ${maxAttempts}::int THEN 'IN_QUEUE' ELSE 'FAILED' END,
             worker_id          = CASE WHEN attempts < ${maxAttempts}::int THEN NULL ELSE worker_id END,
             queued_at          = CASE WHEN attempts < ${maxAttempts}::int THEN ${now}::bigint ELSE queued_at END,
             taken_at           = CASE WHEN attempts < ${maxAttempts}::int THEN NULL ELSE taken_at END,
             execution_deadline = CASE WHEN attempts < ${maxAttempts}::int THEN NULL ELSE execution_deadline END,
             error              = CASE WHEN attempts < ${maxAttempts}::int THEN NULL ELSE ${error} END,
             finished_at        = CASE WHEN attempts < ${maxAttempts}::int THEN NULL ELSE ${now}::bigint END,
             retain_until       = CASE WHEN attempts < ${maxAttempts}::int THEN NULL ELSE ${retainUntil}::bigint END,
             output             = NULL
       WHERE status = 'IN_PROGRESS' AND ${where}
      RETURNING *, CASE WHEN status = 'IN_QUEUE' THEN pg_notify(${this.#channel}, endpoint) END`;
    const jobs = rows.map(toRecord).sort(byQueueOrder);
    return { requeued: jobs.filter((j) => j.status === 'IN_QUEUE'), failed: jobs.filter((j) => j.status === 'FAILED') };
  }

  async deleteExpired(now: number): Promise<number> {
    const result = await this.#sql`
      DELETE FROM jobs
       WHERE ((status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT') AND retain_until < ${now})
          OR (status IN ('IN_QUEUE', 'IN_PROGRESS') AND expires_at < ${now}))
         AND NOT (${this.#sql.unsafe(OWES_COMPLETED_WEBHOOK)})`;
    return result.count;
  }

  onJobsAvailable(listener: (endpoint: string) => void): () => void {
    this.#events.on(JOBS_AVAILABLE, listener);
    return () => this.#events.off(JOBS_AVAILABLE, listener);
  }

  async listJobs(query: JobListQuery): Promise<JobSummary[]> {
    // With a status filter, one index range scan per status (jobs_listing_status), each stopped at
    // the limit, merged: a single scan with `status = ANY(…)` would read every job of those states
    // before sorting. Ids compare bytewise (COLLATE "C"), as the listing indexes order them.
    const sql = this.#sql;
    const after = query.after ?? { createdAt: Number.MAX_SAFE_INTEGER, id: '' };
    const page = (status: postgres.Fragment) => sql`
      (SELECT ${sql.unsafe(JOB_SUMMARY_COLUMNS)} FROM jobs
        WHERE endpoint = ${query.endpoint} ${status}
          AND (created_at, id COLLATE "C") < (${after.createdAt}::bigint, ${after.id}::text COLLATE "C")
        ORDER BY created_at DESC, id COLLATE "C" DESC
        LIMIT ${query.limit})`;
    const statuses = [...new Set(query.statuses ?? [])];
    const pages = statuses.length === 0 ? [page(sql``)] : statuses.map((status) => page(sql`AND status = ${status}`));
    const union = pages.reduce((all, next) => sql`${all} UNION ALL ${next}`);
    const rows = await sql<JobSummaryRow[]>`
      SELECT * FROM (${union}) AS listing
       ORDER BY created_at DESC, id COLLATE "C" DESC
       LIMIT ${query.limit}`;
    return rows.map(toSummary);
  }

  async finishedTimings(query: FinishedJobsQuery): Promise<FinishedTiming[]> {
    const sql = this.#sql;
    // Only columns of the jobs_finished index (the rest INCLUDEd): an index-only scan once vacuumed.
    const rows = await sql<FinishedTimingRow[]>`
      SELECT id, status, queued_at, taken_at, finished_at FROM jobs
       WHERE endpoint = ${query.endpoint} AND finished_at IS NOT NULL AND finished_at >= ${query.since}
       ORDER BY finished_at DESC, id COLLATE "C" DESC
       LIMIT ${query.limit}`;
    return rows.map(toFinishedTiming);
  }

  async queueStats(endpoint: string): Promise<{ inQueueScalable: number; oldestQueuedAt: number | null; inProgress: number }> {
    const [row] = await this.#sql<{ in_queue_scalable: number; oldest_queued_at: number | null; in_progress: number }[]>`
      SELECT (SELECT count(*)::int FROM jobs WHERE endpoint = ${endpoint} AND status = 'IN_QUEUE' AND NOT low_priority) AS in_queue_scalable,
             (SELECT min(queued_at) FROM jobs WHERE endpoint = ${endpoint} AND status = 'IN_QUEUE' AND NOT low_priority) AS oldest_queued_at,
             (SELECT count(*)::int FROM jobs WHERE endpoint = ${endpoint} AND status = 'IN_PROGRESS') AS in_progress`;
    return { inQueueScalable: row!.in_queue_scalable, oldestQueuedAt: row!.oldest_queued_at === null ? null : Number(row!.oldest_queued_at), inProgress: row!.in_progress };
  }

  async counts(endpoint: string): Promise<EndpointCounts> {
    const [row] = await this.#sql<EndpointCounts[]>`
      SELECT count(*) FILTER (WHERE status = 'IN_QUEUE')::int    AS "inQueue",
             count(*) FILTER (WHERE status = 'IN_PROGRESS')::int AS "inProgress",
             count(*) FILTER (WHERE status = 'COMPLETED')::int   AS completed,
             count(*) FILTER (WHERE status = 'FAILED')::int      AS failed,
             count(*) FILTER (WHERE status = 'CANCELLED')::int   AS cancelled,
             count(*) FILTER (WHERE status = 'TIMED_OUT')::int   AS "timedOut",
             count(*) FILTER (WHERE retries > 0)::int            AS retried,
             min(queued_at) FILTER (WHERE status = 'IN_QUEUE' AND NOT low_priority)    AS "oldestQueuedAt",
             count(*) FILTER (WHERE status = 'IN_QUEUE' AND NOT low_priority)::int     AS "inQueueScalable"
        FROM jobs WHERE endpoint = ${endpoint}`;
    if (!row) throw new Error('an aggregate query returned no row');
    return row;
  }

  async appendLogs(lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    // Arrays rather than one VALUES tuple per line: no bind-parameter limit, one prepared statement.
    await this.#sql`
      INSERT INTO worker_logs (endpoint, worker_id, job_id, stream, time, line)
      SELECT endpoint, worker_id, job_id, stream, time, line
        FROM unnest(${lines.map((l) => l.endpoint)}::text[], ${lines.map((l) => l.workerId)}::text[],
                    ${lines.map((l) => l.jobId)}::text[], ${lines.map((l) => l.stream)}::text[],
                    ${lines.map((l) => l.time)}::bigint[], ${lines.map((l) => l.line)}::text[])
             WITH ORDINALITY AS l (endpoint, worker_id, job_id, stream, time, line, ord)
       ORDER BY ord`;
  }

  async readLogs(query: { endpoint: string; workerId?: string; jobId?: string; afterSeq?: number; limit?: number }): Promise<LogLine[]> {
    const sql = this.#sql;
    const rows = await sql<LogRow[]>`
      SELECT * FROM worker_logs
       WHERE endpoint = ${query.endpoint} AND seq > ${query.afterSeq ?? 0}
             ${query.workerId === undefined ? sql`` : sql`AND worker_id = ${query.workerId}`}
             ${query.jobId === undefined ? sql`` : sql`AND job_id = ${query.jobId}`}
       ORDER BY seq
       LIMIT ${query.limit ?? null}`;
    return rows.map((r) => ({ seq: r.seq, endpoint: r.endpoint, workerId: r.worker_id, jobId: r.job_id, stream: r.stream, time: r.time, line: r.line }));
  }

  async jobsOwingWebhook(finishedSince: number, limit: number): Promise<JobRecord[]> {
    const rows = await this.#sql<JobRow[]>`
      SELECT * FROM jobs
       WHERE finished_at >= ${finishedSince} AND ${this.#sql.unsafe(OWES_COMPLETED_WEBHOOK)}
       ORDER BY finished_at
       LIMIT ${limit}`;
    return rows.map(toRecord);
  }

  async addWebhookDelivery(d: NewWebhookDelivery): Promise<boolean> {
    // Two gateways catching up on the same finished job: the unique index lets one row in.
    const result = await this.#sql`
      INSERT INTO webhook_deliveries (id, job_id, job_run, endpoint, event, url, payload, state, attempts, next_attempt_at, created_at)
      VALUES (${d.id}, ${d.jobId}, ${d.jobRun}, ${d.endpoint}, ${d.event}, ${d.url}, ${d.payload}, 'pending', 0, ${d.createdAt}, ${d.createdAt})
      ON CONFLICT (job_id, job_run) WHERE event = 'completed' DO NOTHING`;
    return result.count > 0;
  }

  async claimWebhookDeliveries(now: number, limit: number, leaseUntil: number): Promise<WebhookDelivery[]> {
    if (limit <= 0) return [];
    // SKIP LOCKED: gateways claiming together take different rows; the lease (next_attempt_at moved
    // past the attempt) keeps the others away from a claimed row once this statement commits.
    const rows = await this.#sql<DeliveryRow[]>`
      WITH due AS (
        SELECT id FROM webhook_deliveries
         WHERE state = 'pending' AND next_attempt_at <= ${now}
         ORDER BY next_attempt_at, created_at
         LIMIT ${limit}
           FOR UPDATE SKIP LOCKED
      )
      UPDATE webhook_deliveries AS d SET attempts = d.attempts + 1, next_attempt_at = ${leaseUntil}
        FROM due
       WHERE d.id = due.id AND d.state = 'pending'
      RETURNING d.*`;
    return rows.map(toDelivery).sort((a, b) => a.createdAt - b.createdAt);
  }

  async markWebhookDelivered(id: string, attempt: number, now: number, httpStatus: number): Promise<boolean> {
    const result = await this.#sql`
      UPDATE webhook_deliveries SET state = 'delivered', delivered_at = ${now}, last_status = ${httpStatus}, last_error = NULL
       WHERE id = ${id} AND state = 'pending' AND attempts = ${attempt}`;
    return result.count > 0;
  }

  async markWebhookAttemptFailed(id: string, attempt: number, failure: WebhookAttemptFailure): Promise<WebhookDelivery | undefined> {
    const { maxAttempts, retryAt, error, httpStatus } = failure;
    const [row] = await this.#sql<DeliveryRow[]>`
      UPDATE webhook_deliveries
         SET state           = CASE WHEN attempts >= ${maxAttempts}::int THEN 'failed' ELSE 'pending' END,
             next_attempt_at = CASE WHEN attempts >= ${maxAttempts}::int THEN next_attempt_at ELSE ${retryAt}::bigint END,
             last_error = ${error}, last_status = ${httpStatus}
       WHERE id = ${id} AND state = 'pending' AND attempts = ${attempt}
      RETURNING *`;
    return row && toDelivery(row);
  }

  async releaseWebhookDelivery(id: string, attempt: number, now: number): Promise<boolean> {
    const result = await this.#sql`
      UPDATE webhook_deliveries SET attempts = attempts - 1, next_attempt_at = ${now}
       WHERE id = ${id} AND state = 'pending' AND attempts = ${attempt}`;
    return result.count > 0;
  }

  async redeliverWebhook(id: string, now: number): Promise<WebhookDelivery | undefined> {
    const [row] = await this.#sql<DeliveryRow[]>`
      UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ${now}, delivered_at = NULL
       WHERE id = ${id}
      RETURNING *`;
    return row && toDelivery(row);
  }

  async listWebhookDeliveries(query: WebhookDeliveryQuery): Promise<WebhookDeliverySummary[]> {
    const sql = this.#sql;
    const rows = await sql<DeliverySummaryRow[]>`
      SELECT ${sql.unsafe(DELIVERY_SUMMARY_COLUMNS)} FROM webhook_deliveries
       WHERE endpoint = ${query.endpoint} ${query.state === undefined ? sql`` : sql`AND state = ${query.state}`}
             ${query.jobId === undefined ? sql`` : sql`AND job_id = ${query.jobId}`}
       ORDER BY created_at DESC, id DESC
       LIMIT ${query.limit}`;
    return rows.map(toDeliverySummary);
  }

  async pruneWebhookDeliveries(deliveredBefore: number): Promise<number> {
    const result = await this.#sql`DELETE FROM webhook_deliveries WHERE state = 'delivered' AND delivered_at < ${deliveredBefore}`;
    return result.count;
  }
}

/**
 * Opens the PostgreSQL job store: creates the schema if missing, applies pending migrations
 * (under an advisory lock, so gateways may start together) and starts listening for wake-ups
 * from every gateway on the same schema.
 *
 * @example
 * const store = await openPostgresStore({ url: 'postgres://kiln@db:5432/kiln', schema: 'kiln' });
 * store.onJobsAvailable((endpoint) => wakeTakers(endpoint));
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<JobStore> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const channel = CHANNEL_PREFIX + schema;
  if (!SCHEMA_NAME.test(schema) || channel.length > MAX_IDENTIFIER_LENGTH) {
    throw new Error(
      `schema ${JSON.stringify(schema)}: use lower-case letters, digits and _, at most ${MAX_IDENTIFIER_LENGTH - CHANNEL_PREFIX.length} characters`,
    );
  }
  const sql: Sql = postgres(options.url, {
    connection: { search_path: schema },
    types: TYPES,
    // Notices such as "relation already exists, skipping" are expected, not worth a console line.
    onnotice: () => {},
  });
  try {
    await applyMigrations(sql, schema);
    const events = new EventEmitter();
    events.setMaxListeners(0);
    await sql.listen(channel, (endpoint) => events.emit(JOBS_AVAILABLE, endpoint));
    return new PostgresJobStore(sql, schema, channel, events);
  } catch (error) {
    await sql.end({ timeout: 0 });
    throw error;
  }
}
