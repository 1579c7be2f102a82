/** A worker's state, as the gateway tracks it (DESIGN.md: initializing → idle ⇄ running → draining → stopped, plus unhealthy). */
export type WorkerState = 'initializing' | 'idle' | 'running' | 'draining' | 'stopped' | 'unhealthy';

/** What the worker API needs to know about workers; implemented by the gateway's worker registry. */
export interface WorkerAccess {
  /**
   * True when `authorization` (the raw `Authorization` header: RunPod workers send the key raw,
   * without `Bearer`) is the token of worker `workerId`, and that worker belongs to `endpoint`.
   */
  authenticate(endpoint: string, workerId: string, authorization: string | undefined): boolean;
  /** A ping arrived: the ids of jobs the worker says it holds, and its health report if any. */
  recordPing(workerId: string, report: { jobIds: string[]; unhealthy?: { check: string; reason: string } }): void;
  /** The worker asked for jobs (it is up and idle or has free slots). */
  recordTake(workerId: string): void;
  /** Job ids the gateway wants this worker to stop (cancelled or timed out), taken once. */
  takeStops(workerId: string): string[];
  /** Resolves when `takeStops(workerId)` has something, or when `signal` aborts. */
  waitForStops(workerId: string, signal: AbortSignal): Promise<void>;
  /** The worker reported stopPod: recycle it once its results are in. */
  requestRecycle(workerId: string): void;
}
