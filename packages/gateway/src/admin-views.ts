import { ADMIN_WORKER_STATES } from '@kiln/protocol';
import type { AdminWorkerState, EndpointOverview, ListedJob, Percentiles, WorkerView } from '@kiln/protocol';
import type { EndpointConfig } from './config.ts';
import type { JobStore, JobSummary } from './job-store.ts';
import { toStatusObject } from './status-view.ts';
import type { WorkerInfo } from './worker-registry.ts';

/** The window of an endpoint overview's `lastHour`. */
export const LAST_HOUR_MS = 3_600_000;
/** Most ended jobs `lastHour` reads: the newest this many of the hour (keeps the overview fast with 100,000 jobs kept). */
export const LAST_HOUR_MAX_JOBS = 10_000;

/**
 * A job as one row of a listing or live event: fixed keys, null where unknown; `endpoint` when
 * asked (listings across endpoints, events).
 *
 * @example
 * toListedJob(summary, clock.now(), true); // { id, endpoint, status, …, delayTime, executionTime, error }
 */
export function toListedJob(job: JobSummary, now: number, withEndpoint = false): ListedJob {
  const { delayTime = null, executionTime = null } = toStatusObject(job, now);
  return {
    id: job.id,
    ...(withEndpoint ? { endpoint: job.endpoint } : {}),
    status: job.status,
    createdAt: job.createdAt,
    queuedAt: job.queuedAt,
    takenAt: job.takenAt,
    finishedAt: job.finishedAt,
    workerId: job.workerId,
    attempts: job.attempts,
    retries: job.retries,
    delayTime,
    executionTime,
    error: job.error,
  };
}

/**
 * The workers of an endpoint as the admin API shows them, with the jobs the store says each holds
 * (IN_PROGRESS). `jobs` (what the worker's last ping listed) is kept beside the contract's fields.
 */
export async function workerViews(store: JobStore, workers: readonly WorkerInfo[], now: number): Promise<WorkerView[]> {
  const held = await Promise.all(workers.map((w) => (w.state === 'stopped' ? [] : store.heldBy(w.workerId))));
  return workers.map((w, i) => ({
    workerId: w.workerId,
    state: w.state,
    startedAt: w.startedAt,
    uptimeMs: now - w.startedAt,
    coldStartMs: w.readyAt === null ? null : w.readyAt - w.startedAt,
    setupMs: w.setupMs,
    lastPingAt: w.lastPingAt,
    currentJobs: held[i]!.map((job) => job.id),
    jobs: w.reportedJobs,
    unhealthy: w.unhealthy,
  }));
}

/** Live workers by state, every state of {@link ADMIN_WORKER_STATES} present (0 when none). */
export function workersByState(workers: readonly WorkerInfo[]): Record<AdminWorkerState, number> {
  // `stopped` is in the type but never counted: a stopped worker has left the registry.
  const counts = { ...Object.fromEntries(ADMIN_WORKER_STATES.map((state) => [state, 0])), stopped: 0 } as Record<AdminWorkerState, number>;
  for (const w of workers) if (w.state !== 'stopped') counts[w.state] += 1;
  return counts;
}

/**
 * p50/p95 (nearest rank) of some durations; null when there are none.
 *
 * @example
 * percentiles([10, 20, 30, 40]); // { p50: 20, p95: 40 }
 */
export function percentiles(values: readonly number[]): Percentiles | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
  return { p50: rank(0.5), p95: rank(0.95) };
}

/**
 * One endpoint's overview: its settings, job counts, live workers by state and the last hour's
 * ended jobs (at most {@link LAST_HOUR_MAX_JOBS}, the newest): how many, how many FAILED or
 * TIMED_OUT, and p50/p95 of their delayTime and executionTime (jobs that never started count in
 * `finished` but not in the times).
 */
export async function endpointOverview(store: JobStore, endpoint: EndpointConfig, workers: readonly WorkerInfo[], now: number): Promise<EndpointOverview> {
  const [counts, ended] = await Promise.all([
    store.counts(endpoint.name),
    store.finishedTimings({ endpoint: endpoint.name, since: now - LAST_HOUR_MS, limit: LAST_HOUR_MAX_JOBS }),
  ]);
  const delays: number[] = [];
  const executions: number[] = [];
  for (const job of ended) {
    // As /status counts them (status-view.ts): a pickup older than the last queueing is a previous attempt's.
    if (job.takenAt === null || job.takenAt < job.queuedAt) continue;
    delays.push(job.takenAt - job.queuedAt);
    executions.push(Math.max(0, job.finishedAt - job.takenAt));
  }
  return {
    name: endpoint.name,
    workersMin: endpoint.workersMin,
    workersMax: endpoint.workersMax,
    idleTimeout: endpoint.idleTimeout,
    executionTimeoutMs: endpoint.executionTimeoutMs,
    gpu: endpoint.gpu ? { types: [...endpoint.gpu.types], count: endpoint.gpu.count } : null,
    models: [...endpoint.models],
    jobs: {
      inQueue: counts.inQueue,
      inProgress: counts.inProgress,
      completed: counts.completed,
      failed: counts.failed,
      cancelled: counts.cancelled,
      timedOut: counts.timedOut,
    },
    workers: workersByState(workers),
    lastHour: {
      finished: ended.length,
      failed: ended.filter((job) => job.status === 'FAILED' || job.status === 'TIMED_OUT').length,
      delayTime: percentiles(delays),
      executionTime: percentiles(executions),
    },
  };
}
