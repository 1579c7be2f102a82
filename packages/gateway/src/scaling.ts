/** Everything the scaling policy looks at, for one endpoint at one instant. */
export interface ScalingInput {
  workersMin: number;
  workersMax: number;
  idleTimeoutMs: number;
  /** RunPod's scaler; `value` is seconds for QUEUE_DELAY, requests per worker for REQUEST_COUNT. */
  scaler: { type: 'QUEUE_DELAY' | 'REQUEST_COUNT'; value: number };
  queue: {
    /** IN_QUEUE jobs that are not lowPriority. */
    scalable: number;
    /** `queuedAt` of the oldest scalable job, or null. */
    oldestQueuedAt: number | null;
    inProgress: number;
  };
  workers: {
    id: string;
    state: 'initializing' | 'idle' | 'running' | 'draining' | 'stopped' | 'unhealthy';
    idleSince: number | null;
    startedAt: number;
  }[];
  now: number;
}

/** What to do now: start `start` new workers, stop the workers in `stop`. */
export interface ScalingPlan {
  start: number;
  stop: string[];
}

/**
 * The plain scaling policy, as a pure function of one endpoint's state.
 *
 * Live workers are those not draining or stopped; unhealthy ones are stopped and do not count.
 * At least `workersMin` and never more than `workersMax` healthy live workers. While scalable
 * jobs wait: QUEUE_DELAY adds one worker once the oldest has waited `value` seconds (at once
 * when there is no worker at all), REQUEST_COUNT targets `ceil((scalable + inProgress) / value)`.
 * Initializing workers count as capacity on its way. Idle workers past `idleTimeoutMs` stop,
 * oldest idle first, only while no scalable job waits and never below `workersMin`.
 *
 * @example
 * planScaling({ workersMin: 0, workersMax: 3, idleTimeoutMs: 5000, scaler: { type: 'QUEUE_DELAY', value: 4 },
 *   queue: { scalable: 1, oldestQueuedAt: now, inProgress: 0 }, workers: [], now }); // { start: 1, stop: [] }
 */
export function planScaling(input: ScalingInput): ScalingPlan {
  const { workersMin, workersMax, scaler, queue, now } = input;
  const live = input.workers.filter((w) => w.state !== 'stopped' && w.state !== 'draining');
  const unhealthy = live.filter((w) => w.state === 'unhealthy');
  const healthy = live.filter((w) => w.state !== 'unhealthy');
  const initializing = healthy.filter((w) => w.state === 'initializing').length;

  let target = healthy.length;
  if (queue.scalable > 0) {
    if (scaler.type === 'REQUEST_COUNT') {
      target = Math.max(target, Math.ceil((queue.scalable + queue.inProgress) / Math.max(1, scaler.value)));
    } else if (healthy.length === 0) {
      // Scale from zero at once: with no worker, waiting out the delay would only delay the job.
      target = 1;
    } else {
      const waitedMs = queue.oldestQueuedAt === null ? 0 : now - queue.oldestQueuedAt;
      // Jobs a booting worker will take are already covered: do not start another for them.
      if (waitedMs >= scaler.value * 1000 && queue.scalable > initializing) target = healthy.length + 1;
    }
  }
  target = Math.min(Math.max(target, workersMin), workersMax);
  const start = Math.max(0, target - healthy.length);

  const stop = unhealthy.map((w) => w.id);
  if (queue.scalable === 0 && start === 0) {
    const idleBefore = now - input.idleTimeoutMs;
    const expired = healthy
      .filter((w) => w.state === 'idle' && w.idleSince !== null && w.idleSince <= idleBefore)
      .sort((a, b) => a.idleSince! - b.idleSince! || a.startedAt - b.startedAt);
    const stoppable = Math.max(0, healthy.length - workersMin);
    for (const w of expired.slice(0, stoppable)) stop.push(w.id);
  }
  return { start, stop };
}
