import { DEFAULT_WEBHOOK_EVENTS, type JobState } from '@kiln/protocol';
import type { FinishedTiming, JobRecord, JobSummary } from './job-store.ts';

/** A `jobs` row as both adapters read it: JSON columns as text; `low_priority` is 0/1 in SQLite, a boolean in PostgreSQL. */
export interface JobRow {
  id: string;
  endpoint: string;
  status: JobState;
  input: string;
  webhook: string | null;
  /** JSON array of event names; NULL: `completed` only. */
  webhook_events: string | null;
  policy: string;
  s3_config: string | null;
  output: string | null;
  error: string | null;
  worker_id: string | null;
  attempts: number;
  retries: number;
  low_priority: number | boolean;
  created_at: number;
  queued_at: number;
  taken_at: number | null;
  finished_at: number | null;
  expires_at: number;
  execution_deadline: number | null;
  execution_timeout_ms: number;
  retain_until: number | null;
  idempotency_key: string | null;
  stream_seq: number;
  progress_seq: number;
}

/** A `worker_logs` row. */
export interface LogRow {
  seq: number;
  endpoint: string;
  worker_id: string;
  job_id: string | null;
  stream: 'stdout' | 'stderr';
  time: number;
  line: string;
}

/** The in-process event both adapters emit when jobs may have become claimable. */
export const JOBS_AVAILABLE = 'jobsAvailable';

/** JSON text for a value, or NULL for `undefined` (no output). */
export function jsonOrNull(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/** A row as the store's JobRecord. */
export function toRecord(row: JobRow): JobRecord {
  const record: JobRecord = {
    id: row.id,
    endpoint: row.endpoint,
    status: row.status,
    input: JSON.parse(row.input),
    webhook: row.webhook,
    webhookEvents: row.webhook_events === null ? [...DEFAULT_WEBHOOK_EVENTS] : JSON.parse(row.webhook_events),
    policy: JSON.parse(row.policy),
    s3Config: row.s3_config === null ? null : JSON.parse(row.s3_config),
    error: row.error,
    workerId: row.worker_id,
    attempts: row.attempts,
    retries: row.retries,
    lowPriority: row.low_priority === true || row.low_priority === 1,
    createdAt: row.created_at,
    queuedAt: row.queued_at,
    takenAt: row.taken_at,
    finishedAt: row.finished_at,
    expiresAt: row.expires_at,
    executionDeadline: row.execution_deadline,
    executionTimeoutMs: row.execution_timeout_ms,
    retainUntil: row.retain_until,
    idempotencyKey: row.idempotency_key,
    streamSeq: row.stream_seq,
    progressSeq: row.progress_seq,
  };
  if (row.output !== null) record.output = JSON.parse(row.output);
  return record;
}

/** The columns of a job listing (no input, output or secrets: a page of them stays small). */
export type JobSummaryRow = Pick<
  JobRow,
  'id' | 'endpoint' | 'status' | 'error' | 'worker_id' | 'attempts' | 'retries' | 'created_at' | 'queued_at' | 'taken_at' | 'finished_at'
>;

/** The column list of {@link JobSummaryRow}, for SELECTs. */
export const JOB_SUMMARY_COLUMNS = 'id, endpoint, status, error, worker_id, attempts, retries, created_at, queued_at, taken_at, finished_at';

/** A listing row as a JobSummary. */
export function toSummary(row: JobSummaryRow): JobSummary {
  return {
    id: row.id,
    endpoint: row.endpoint,
    status: row.status,
    error: row.error,
    workerId: row.worker_id,
    attempts: row.attempts,
    retries: row.retries,
    createdAt: row.created_at,
    queuedAt: row.queued_at,
    takenAt: row.taken_at,
    finishedAt: row.finished_at,
  };
}

/** A `finishedTimings` row. */
export interface FinishedTimingRow {
  id: string;
  status: JobState;
  queued_at: number;
  taken_at: number | null;
  finished_at: number;
}

/** A `finishedTimings` row as a FinishedTiming. */
export function toFinishedTiming(row: FinishedTimingRow): FinishedTiming {
  return { id: row.id, status: row.status, queuedAt: row.queued_at, takenAt: row.taken_at, finishedAt: row.finished_at };
}

/** Queue order: normal before lowPriority, then oldest queuedAt, then id (RETURNING has no order). */
export function byQueueOrder(a: JobRecord, b: JobRecord): number {
  return Number(a.lowPriority) - Number(b.lowPriority) || a.queuedAt - b.queuedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
