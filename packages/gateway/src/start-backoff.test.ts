import assert from 'node:assert/strict';
import { test } from 'node:test';
import { START_BACKOFF_MAX_MS, StartBackoff } from './start-backoff.ts';

test('failures double the pause up to the maximum, one probe start after each pause, and a ready worker resets it', () => {
  const backoff = new StartBackoff();
  assert.equal(backoff.startsAllowed('tts', 0), Number.POSITIVE_INFINITY);
  assert.deepEqual(backoff.failed('tts', 0), { failures: 1, delayMs: 1000 });
  assert.equal(backoff.startsAllowed('tts', 999), 0);
  assert.equal(backoff.startsAllowed('tts', 1000), 1);
  assert.equal(backoff.startsAllowed('echo', 0), Number.POSITIVE_INFINITY, 'other endpoints are not held back');
  assert.deepEqual(backoff.failed('tts', 1000), { failures: 2, delayMs: 2000 });
  assert.equal(backoff.startsAllowed('tts', 2999), 0);
  assert.equal(backoff.startsAllowed('tts', 3000), 1);
  let last = 0;
  for (let i = 0; i < 10; i++) last = backoff.failed('tts', 0).delayMs;
  assert.equal(last, START_BACKOFF_MAX_MS);
  backoff.succeeded('tts');
  assert.equal(backoff.startsAllowed('tts', 0), Number.POSITIVE_INFINITY);
  assert.deepEqual(backoff.failed('tts', 0), { failures: 1, delayMs: 1000 });
});
