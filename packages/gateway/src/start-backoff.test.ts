import assert from 'node:assert/strict';
import { test } from 'node:test';
import { START_BACKOFF_MAX_MS, StartBackoff } from './start-backoff.ts';

test('failures double the pause up to the maximum, with one probe start after each pause', () => {
  const backoff = new StartBackoff();
  assert.equal(backoff.startsAllowed('tts', 0), Number.POSITIVE_INFINITY);
  assert.deepEqual(backoff.failed('tts', 0), { failures: 1, delayMs: 1000 });
  assert.equal(backoff.startsAllowed('tts', 999), 0);
  assert.equal(backoff.startsAllowed('tts', 1000), 1);
  assert.equal(backoff.startsAllowed('echo', 0), Number.POSITIVE_INFINITY, 'other endpoints are not held back');
  backoff.started('tts', 'probe-1');
  assert.equal(backoff.startsAllowed('tts', 5000), 0, 'no second start while the probe boots');
  assert.deepEqual(backoff.failed('tts', 1000), { failures: 2, delayMs: 2000 });
  assert.equal(backoff.startsAllowed('tts', 2999), 0);
  assert.equal(backoff.startsAllowed('tts', 3000), 1);
  let last = 0;
  for (let i = 0; i < 10; i++) last = backoff.failed('tts', 0).delayMs;
  assert.equal(last, START_BACKOFF_MAX_MS);
});

test('only the probe getting ready ends the backoff, not a worker that was ready before', () => {
  const backoff = new StartBackoff();
  backoff.failed('tts', 0);
  backoff.ready('tts', 'old-healthy-worker');
  assert.equal(backoff.startsAllowed('tts', 0), 0, 'a sibling that was already serving does not clear it');
  backoff.started('tts', 'probe-1');
  backoff.ready('tts', 'probe-1');
  assert.equal(backoff.startsAllowed('tts', 0), Number.POSITIVE_INFINITY);
  assert.deepEqual(backoff.failed('tts', 0), { failures: 1, delayMs: 1000 }, 'counting starts over');
});
