import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planScaling, type ScalingInput, type ScalingPlan } from './scaling.ts';

const NOW = 1_700_000_000_000;
const IDLE_TIMEOUT_MS = 5000;

type Worker = ScalingInput['workers'][number];
const worker = (id: string, state: Worker['state'], idleSince: number | null = null): Worker => ({ id, state, idleSince, startedAt: NOW - 60_000 });
const idle = (id: string, idleForMs: number) => worker(id, 'idle', NOW - idleForMs);
const running = (id: string) => worker(id, 'running');
const booting = (id: string) => worker(id, 'initializing');

interface Case {
  name: string;
  input: {
    workersMin?: number;
    workersMax?: number;
    scaler?: ScalingInput['scaler'];
    /** Scalable jobs waiting, and how long the oldest has waited. */
    queued?: number;
    waitedMs?: number;
    inProgress?: number;
    workers?: Worker[];
  };
  expect: ScalingPlan;
}

function inputOf(c: Case['input']): ScalingInput {
  const queued = c.queued ?? 0;
  return {
    workersMin: c.workersMin ?? 0,
    workersMax: c.workersMax ?? 3,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    scaler: c.scaler ?? { type: 'QUEUE_DELAY', value: 4 },
    queue: { scalable: queued, oldestQueuedAt: queued > 0 ? NOW - (c.waitedMs ?? 0) : null, inProgress: c.inProgress ?? 0 },
    workers: c.workers ?? [],
    now: NOW,
  };
}

const QUEUE_DELAY_4S = { type: 'QUEUE_DELAY', value: 4 } as const;
const REQUEST_COUNT_3 = { type: 'REQUEST_COUNT', value: 3 } as const;

const cases: Case[] = [
  // scale from zero
  { name: 'scale from zero: QUEUE_DELAY starts a worker at once when no worker is live', input: { queued: 1, waitedMs: 0 }, expect: { start: 1, stop: [] } },
  { name: 'scale from zero: draining and stopped workers are not live', input: { queued: 1, workers: [worker('d', 'draining'), worker('s', 'stopped')] }, expect: { start: 1, stop: [] } },
  { name: 'scale from zero: REQUEST_COUNT starts what the demand needs', input: { scaler: REQUEST_COUNT_3, queued: 4 }, expect: { start: 2, stop: [] } },
  { name: 'scale from zero: nothing starts when nothing waits', input: {}, expect: { start: 0, stop: [] } },
  { name: 'lowPriority jobs never cause a scale-up: they are not scalable', input: { queued: 0, inProgress: 0 }, expect: { start: 0, stop: [] } },

  // workersMin
  { name: 'workersMin kept: started with nothing queued', input: { workersMin: 2 }, expect: { start: 2, stop: [] } },
  { name: 'workersMin kept: tops up the live workers', input: { workersMin: 2, workers: [idle('a', 0), worker('d', 'draining')] }, expect: { start: 1, stop: [] } },
  { name: 'workersMin kept: idle workers past the timeout are not stopped below it', input: { workersMin: 2, workers: [idle('a', 60_000), idle('b', 60_000)] }, expect: { start: 0, stop: [] } },

  // workersMax
  { name: 'workersMax cap: REQUEST_COUNT demand above the cap', input: { scaler: { type: 'REQUEST_COUNT', value: 1 }, queued: 10 }, expect: { start: 3, stop: [] } },
  { name: 'workersMax cap: REQUEST_COUNT counts workers already live', input: { scaler: { type: 'REQUEST_COUNT', value: 1 }, queued: 10, workers: [running('a'), booting('b')] }, expect: { start: 1, stop: [] } },
  { name: 'workersMax cap: QUEUE_DELAY adds nothing at the cap', input: { queued: 5, waitedMs: 60_000, workers: [running('a'), running('b'), running('c')] }, expect: { start: 0, stop: [] } },
  { name: 'workersMax cap: 0 disables scale from zero', input: { workersMax: 0, queued: 1 }, expect: { start: 0, stop: [] } },
  { name: 'workersMax cap: wins over a larger workersMin', input: { workersMin: 5, workersMax: 2 }, expect: { start: 2, stop: [] } },

  // idle timeout
  { name: 'idle timeout exact boundary: idle for exactly idleTimeout stops', input: { workers: [idle('a', IDLE_TIMEOUT_MS)] }, expect: { start: 0, stop: ['a'] } },
  { name: 'idle timeout exact boundary: idle 1 ms less does not stop', input: { workers: [idle('a', IDLE_TIMEOUT_MS - 1)] }, expect: { start: 0, stop: [] } },
  { name: 'idle timeout: oldest idle first, never below workersMin', input: { workersMin: 2, workers: [idle('newer', 6000), running('r'), idle('oldest', 9000), idle('older', 7000)] }, expect: { start: 0, stop: ['oldest', 'older'] } },
  { name: 'idle timeout: running, initializing and never-idle workers are not stopped', input: { workers: [running('r'), booting('i'), worker('x', 'idle', null)] }, expect: { start: 0, stop: [] } },
  { name: 'idle timeout: in-progress jobs do not keep idle workers', input: { inProgress: 2, workers: [running('r'), idle('a', 60_000)] }, expect: { start: 0, stop: ['a'] } },

  // no stop while jobs wait
  { name: 'no stop while jobs wait: an expired idle worker is kept while a scalable job waits', input: { queued: 1, waitedMs: 100, workers: [idle('a', 60_000)] }, expect: { start: 0, stop: [] } },
  { name: 'no stop while jobs wait: REQUEST_COUNT above the target still keeps idle workers', input: { scaler: REQUEST_COUNT_3, queued: 1, workers: [running('r'), idle('a', 60_000), idle('b', 60_000)] }, expect: { start: 0, stop: [] } },

  // unhealthy
  { name: 'unhealthy replaced: stopped and replaced to keep workersMin', input: { workersMin: 1, workers: [worker('u', 'unhealthy')] }, expect: { start: 1, stop: ['u'] } },
  { name: 'unhealthy replaced: not counted as capacity for a waiting job', input: { queued: 1, workers: [worker('u', 'unhealthy')] }, expect: { start: 1, stop: ['u'] } },
  { name: 'unhealthy replaced: stopped without a replacement when nothing needs one', input: { workers: [worker('u', 'unhealthy'), running('r')] }, expect: { start: 0, stop: ['u'] } },
  { name: 'unhealthy replaced: stopped even while jobs wait (idle workers are kept)', input: { workersMin: 1, queued: 1, workers: [worker('u', 'unhealthy'), idle('a', 60_000)] }, expect: { start: 0, stop: ['u'] } },

  // initializing
  { name: 'initializing counted: REQUEST_COUNT demand already covered by booting workers', input: { scaler: REQUEST_COUNT_3, queued: 6, workers: [booting('a'), booting('b')] }, expect: { start: 0, stop: [] } },
  { name: 'initializing counted: QUEUE_DELAY does not add for a job a booting worker will take', input: { queued: 1, waitedMs: 60_000, workers: [running('r'), booting('i')] }, expect: { start: 0, stop: [] } },
  { name: 'initializing counted: QUEUE_DELAY adds when more jobs wait than workers are booting', input: { queued: 2, waitedMs: 60_000, workers: [running('r'), booting('i')] }, expect: { start: 1, stop: [] } },
  { name: 'initializing counted: toward workersMin', input: { workersMin: 2, workers: [booting('a'), booting('b')] }, expect: { start: 0, stop: [] } },
  { name: 'initializing counted: no scale from zero while one boots', input: { queued: 1, workers: [booting('a')] }, expect: { start: 0, stop: [] } },

  // REQUEST_COUNT
  { name: 'REQUEST_COUNT targets ceil((scalable + inProgress) / value)', input: { scaler: REQUEST_COUNT_3, queued: 4, inProgress: 3, workers: [running('a')] }, expect: { start: 2, stop: [] } },
  { name: 'REQUEST_COUNT targets: an exact multiple needs no extra worker', input: { scaler: REQUEST_COUNT_3, queued: 3, inProgress: 3, workers: [running('a'), running('b')] }, expect: { start: 0, stop: [] } },
  { name: 'REQUEST_COUNT targets: in-progress jobs alone do not scale up', input: { scaler: REQUEST_COUNT_3, queued: 0, inProgress: 9, workers: [running('a')] }, expect: { start: 0, stop: [] } },
  { name: 'REQUEST_COUNT targets: a lower target does not stop busy workers', input: { scaler: REQUEST_COUNT_3, queued: 1, inProgress: 1, workers: [running('a'), running('b'), running('c')] }, expect: { start: 0, stop: [] } },

  // QUEUE_DELAY
  { name: 'QUEUE_DELAY threshold exact boundary: waited exactly value seconds adds one worker', input: { scaler: QUEUE_DELAY_4S, queued: 1, waitedMs: 4000, workers: [running('a')] }, expect: { start: 1, stop: [] } },
  { name: 'QUEUE_DELAY threshold exact boundary: 1 ms less adds none', input: { scaler: QUEUE_DELAY_4S, queued: 1, waitedMs: 3999, workers: [running('a')] }, expect: { start: 0, stop: [] } },
  { name: 'QUEUE_DELAY threshold: one worker per decision, however long the queue', input: { scaler: QUEUE_DELAY_4S, queued: 50, waitedMs: 60_000, workers: [running('a')], workersMax: 10 }, expect: { start: 1, stop: [] } },
];

for (const c of cases) {
  test(c.name, () => {
    const input = inputOf(c.input);
    const before = structuredClone(input);
    assert.deepEqual(planScaling(input), c.expect);
    assert.deepEqual(input, before, 'planScaling does not mutate its input');
  });
}
