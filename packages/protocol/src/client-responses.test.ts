import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ProtocolParseError,
  parseHealthResponse,
  parseRunResponse,
  parseStatusObject,
  parseStreamResponse,
} from './index.ts';

function assertParseError(fn: () => unknown, field: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolParseError, 'throws ProtocolParseError');
    assert.equal(error.field, field);
    assert.equal(error.message, `${field}: ${error.rule}`);
    return true;
  });
}

test('a run answer has an id and a job status', () => {
  assert.deepEqual(parseRunResponse({ id: 'abc-u1', status: 'IN_QUEUE', extra: 1 }), { id: 'abc-u1', status: 'IN_QUEUE' });
  assertParseError(() => parseRunResponse({ status: 'IN_QUEUE' }), 'id');
  assertParseError(() => parseRunResponse({ id: 'a', status: 'RUNNING' }), 'status');
});

test('a webhook status object parses and drops input and webhook', () => {
  const body = {
    delayTime: 4736,
    executionTime: 157,
    id: 'abc-e1',
    input: { x: 1 },
    output: { y: 2 },
    status: 'COMPLETED',
    webhook: 'https://example.com/h',
  };
  assert.deepEqual(parseStatusObject(body), {
    id: 'abc-e1',
    status: 'COMPLETED',
    delayTime: 4736,
    executionTime: 157,
    output: { y: 2 },
  });
});

test('a status object keeps error, workerId and retries', () => {
  assert.deepEqual(parseStatusObject({ id: 'j', status: 'FAILED', error: 'boom', workerId: 'w1', retries: 1 }), {
    id: 'j',
    status: 'FAILED',
    error: 'boom',
    workerId: 'w1',
    retries: 1,
  });
});

test('status object fields of the wrong type are rejected by name', () => {
  assertParseError(() => parseStatusObject({ id: 'j', status: 'DONE' }), 'status');
  assertParseError(() => parseStatusObject({ status: 'COMPLETED' }), 'id');
  assertParseError(() => parseStatusObject({ id: 'j', status: 'COMPLETED', delayTime: '5' }), 'delayTime');
  assertParseError(() => parseStatusObject({ id: 'j', status: 'COMPLETED', executionTime: -1 }), 'executionTime');
  assertParseError(() => parseStatusObject({ id: 'j', status: 'FAILED', error: ['x'] }), 'error');
  assertParseError(() => parseStatusObject({ id: 'j', status: 'FAILED', retries: 1.5 }), 'retries');
  assertParseError(() => parseStatusObject({ id: 'j', status: 'FAILED', workerId: 3 }), 'workerId');
});

test('a stream answer keeps chunk extras such as metrics', () => {
  assert.deepEqual(
    parseStreamResponse({ status: 'IN_PROGRESS', stream: [{ output: 'a' }, { output: 'b', metrics: { t: 1 } }] }),
    { status: 'IN_PROGRESS', stream: [{ output: 'a' }, { output: 'b', metrics: { t: 1 } }] },
  );
  assert.deepEqual(parseStreamResponse({ id: 'j', status: 'COMPLETED', stream: [] }), { id: 'j', status: 'COMPLETED', stream: [] });
});

test('a stream answer without stream reads as no chunks', () => {
  assert.deepEqual(parseStreamResponse({ status: 'COMPLETED' }).stream, []);
});

test('malformed stream chunks are named by index', () => {
  assertParseError(() => parseStreamResponse({ status: 'IN_PROGRESS', stream: [{ output: 1 }, { out: 2 }] }), 'stream[1].output');
  assertParseError(() => parseStreamResponse({ status: 'IN_PROGRESS', stream: ['x'] }), 'stream[0]');
  assertParseError(() => parseStreamResponse({ status: 'IN_PROGRESS', stream: {} }), 'stream');
});

const health = {
  jobs: { completed: 3, failed: 1, inProgress: 0, inQueue: 2, retried: 0 },
  workers: { idle: 1, running: 1, initializing: 0, ready: 1, throttled: 0, unhealthy: 0 },
};

test('a health answer parses its job and worker counters', () => {
  assert.deepEqual(parseHealthResponse(health), health);
});

test('a health answer without the optional worker counters reads them as 0', () => {
  assert.deepEqual(parseHealthResponse({ jobs: health.jobs, workers: { idle: 2, running: 1 } }).workers, {
    idle: 2,
    running: 1,
    initializing: 0,
    ready: 0,
    throttled: 0,
    unhealthy: 0,
  });
});

test('health counters must be non-negative integers and the required ones present', () => {
  assertParseError(() => parseHealthResponse({ jobs: { ...health.jobs, inQueue: -1 }, workers: health.workers }), 'jobs.inQueue');
  const { retried: _omitted, ...noRetried } = health.jobs;
  assertParseError(() => parseHealthResponse({ jobs: noRetried, workers: health.workers }), 'jobs.retried');
  assertParseError(() => parseHealthResponse({ jobs: health.jobs, workers: { running: 1 } }), 'workers.idle');
  assertParseError(() => parseHealthResponse({ jobs: health.jobs, workers: { ...health.workers, throttled: '0' } }), 'workers.throttled');
  assertParseError(() => parseHealthResponse({ jobs: health.jobs }), 'workers');
});
