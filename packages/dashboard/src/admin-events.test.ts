import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffMs } from './admin-events.ts';

test('backoff doubles from 1 s to 15 s, with ±20 % jitter', () => {
  assert.equal(backoffMs(0, () => 0.5), 1000);
  assert.equal(backoffMs(2, () => 0.5), 4000);
  assert.equal(backoffMs(9, () => 0.5), 15_000);
  assert.equal(backoffMs(0, () => 0), 800);
  assert.equal(backoffMs(0, () => 1), 1200);
});
