import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JOB_STATES, TERMINAL_STATES, isJobState, isTerminalState } from './index.ts';

test('JOB_STATES lists RunPod statuses in lifecycle order', () => {
  assert.deepEqual(JOB_STATES, ['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT']);
});

test('terminal states are the four final ones; queued and running are not', () => {
  assert.deepEqual(TERMINAL_STATES, ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT']);
  assert.deepEqual(
    JOB_STATES.filter((s) => isTerminalState(s)),
    ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'],
  );
  assert.equal(isTerminalState('IN_QUEUE'), false);
  assert.equal(isTerminalState('IN_PROGRESS'), false);
});

test('isJobState accepts exact RunPod spellings only', () => {
  for (const s of JOB_STATES) assert.equal(isJobState(s), true);
  for (const bad of ['RUNNING', 'completed', 'IN_QUEUE ', '', null, undefined, 3, {}]) {
    assert.equal(isJobState(bad), false, String(bad));
  }
});
