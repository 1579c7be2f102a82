import type { Clock } from '@kiln/protocol';
import type { JobStore, RequeueOutcome } from './job-store.ts';
import type { WorkerRegistry } from './worker-registry.ts';

/** Limits the supervisor enforces; parsed from the gateway config. */
export interface SupervisionSettings {
  /** A job claimed this many times by workers that died is FAILED instead of requeued. */
  maxAttempts: number;
  /** A worker holding jobs that has not pinged for this long is considered dead. */
  pingTimeoutMs: number;
  /** After a job's execution timeout, how long its worker may go on holding it before it is killed. */
  stopGraceMs: number;
  /** How long finished results are kept. */
  retentionMs: number;
}

/** What the supervisor acts on. */
export interface SupervisorDeps {
  store: JobStore;
  registry: WorkerRegistry;
  clock: Clock;
  settings: SupervisionSettings;
  /** Tells long-polls (runsync, status-sync, stream) that a job changed. */
  notify(jobId: string, endpoint: string): void;
  /** Kills a worker process (SIGKILL); its exit then goes through `workerExited`. */
  killWorker(workerId: string, reason: string): void;
  log: { info(message: string, fields?: object): void; warn(message: string, fields?: object): void };
}

/**
 * Enforces time on jobs and workers, one `tick()` at a time: execution timeouts (TIMED_OUT, the
 * worker told through job-stop, killed if it still holds the job after a grace period), TTL expiry
 * of queued jobs, workers that stop pinging while holding jobs, jobs abandoned by a gateway that
 * died (its workers' jobs, which no gateway vouches for any more), and result retention. Worker exits
 * go through `workerExited`, which puts their jobs back in the queue (or fails them after
 * `maxAttempts`) with an error that names the worker and the cause.
 */
export class Supervisor {
  readonly #d: SupervisorDeps;
  /** Jobs timed out on a worker: kill the worker if it still reports them after the deadline. */
  readonly #pendingKills = new Map<string, { workerId: string; deadline: number }>();

  constructor(deps: SupervisorDeps) {
    this.#d = deps;
  }

  /** One pass over every rule. Safe to call at any rate; each rule is a guarded store statement. */
  async tick(): Promise<void> {
    const { store, registry, clock, settings, log } = this.#d;
    const now = clock.now();
    const retainUntil = now + settings.retentionMs;

    for (const job of await store.timeOutExecutions(now, retainUntil)) {
      this.#d.notify(job.id, job.endpoint);
      log.warn(`job ${job.id} exceeded its execution timeout of ${job.executionTimeoutMs} ms: TIMED_OUT`, { jobId: job.id, workerId: job.workerId });
      if (job.workerId) {
        registry.requestStop(job.workerId, job.id);
        this.#pendingKills.set(job.id, { workerId: job.workerId, deadline: now + settings.stopGraceMs });
      }
    }
    for (const job of await store.expireQueued(now, retainUntil)) {
      this.#d.notify(job.id, job.endpoint);
      log.info(`job ${job.id} waited past its TTL in the queue: TIMED_OUT`, { jobId: job.id });
    }

    for (const [jobId, { workerId, deadline }] of this.#pendingKills) {
      const worker = registry.get(workerId);
      if (!worker) {
        this.#pendingKills.delete(jobId);
        continue;
      }
      if (now < deadline) continue;
      this.#pendingKills.delete(jobId);
      // The worker's own pings say whether it is still busy with the job (v1.7 workers ignore job-stop).
      if (worker.reportedJobs.includes(jobId) && (worker.lastPingAt ?? 0) >= deadline - settings.stopGraceMs) {
        this.#d.killWorker(workerId, `worker ${workerId} still ran job ${jobId} ${settings.stopGraceMs} ms after its execution timeout`);
      }
    }

    for (const worker of registry.list()) {
      if (worker.state === 'stopped') continue;
      // Vouching (until the worker is found dead just below) keeps releaseAbandonedJobs, run by this
      // gateway or another one on the same database, away from the jobs of live workers.
      const held = await store.markWorkerAlive(worker.workerId, now);
      registry.setHeldCount(worker.workerId, held.length);
      if (held.length === 0) continue;
      const lastSign = Math.max(worker.lastPingAt ?? 0, worker.lastTakeAt ?? 0, worker.startedAt);
      if (now - lastSign > settings.pingTimeoutMs) {
        const reason = `worker ${worker.workerId} stopped pinging (last sign of life ${now - lastSign} ms ago) while running the job`;
        await this.#release(worker.workerId, reason);
        this.#d.killWorker(worker.workerId, reason);
        continue;
      }
      // A take answer can be lost on a socket that died just after the claim: the worker then never
      // had the job. Its pings list the jobs it holds; one it has not listed for pingTimeoutMs after
      // the claim goes back to the queue (unclaimed: the attempt did not happen).
      const lastPing = worker.lastPingAt;
      if (lastPing === null) continue;
      const lost = held.filter((job) => job.takenAt !== null && lastPing - job.takenAt > settings.pingTimeoutMs && !worker.reportedJobs.includes(job.id));
      if (lost.length > 0) {
        const back = await store.unclaim(lost.map((j) => j.id), worker.workerId);
        for (const job of lost) this.#d.notify(job.id, job.endpoint);
        if (back > 0) log.warn(`worker ${worker.workerId} never reported ${back} job(s) it was handed (the take answer was lost): back in the queue`, { jobIds: lost.map((j) => j.id) });
      }
    }

    // Jobs held by workers of a gateway that died: a restarted gateway does not know them (they
    // cannot even reach it with their old tokens), so only this brings their jobs back.
    const abandoned = await store.releaseAbandonedJobs(
      now - settings.pingTimeoutMs,
      `was not heard from by any gateway for more than ${settings.pingTimeoutMs} ms (its gateway stopped or crashed) while running the job`,
      settings.maxAttempts,
      now,
      retainUntil,
    );
    this.#report(`jobs of workers no gateway has heard from for more than ${settings.pingTimeoutMs} ms (their gateway stopped or crashed)`, abandoned);

    const deleted = await store.deleteExpired(now);
    if (deleted > 0) log.info(`deleted ${deleted} job(s) past their retention or TTL`);
  }

  /** A worker process ended: its jobs go back to the queue (or fail after maxAttempts), and it is forgotten. */
  async workerExited(workerId: string, exit: { code: number | null; signal: string | null }): Promise<void> {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    const held = await this.#d.store.heldBy(workerId);
    if (held.length > 0) await this.#release(workerId, `worker ${workerId} ${how} while running the job`);
    this.#d.registry.unregister(workerId);
  }

  async #release(workerId: string, reason: string): Promise<void> {
    const { store, clock, settings } = this.#d;
    const now = clock.now();
    this.#report(reason, await store.releaseWorkerJobs(workerId, reason, settings.maxAttempts, now, now + settings.retentionMs));
  }

  #report(reason: string, { requeued, failed }: RequeueOutcome): void {
    const { settings, log } = this.#d;
    for (const job of [...requeued, ...failed]) this.#d.notify(job.id, job.endpoint);
    if (requeued.length > 0) log.warn(`${reason}: ${requeued.length} job(s) back in the queue`, { jobIds: requeued.map((j) => j.id) });
    if (failed.length > 0) log.warn(`${reason}: ${failed.length} job(s) FAILED after ${settings.maxAttempts} attempts`, { jobIds: failed.map((j) => j.id) });
  }
}
