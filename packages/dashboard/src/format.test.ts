import assert from 'node:assert/strict';
import { test } from 'node:test';
import { displayJson, formatAgo, formatBytes, formatDuration, formatTime, parseJobError } from './format.ts';

test('formatDuration reads at a glance', () => {
  assert.equal(formatDuration(null), '—');
  assert.equal(formatDuration(250), '250 ms');
  assert.equal(formatDuration(1234), '1.23 s');
  assert.equal(formatDuration(12_340), '12.3 s');
  assert.equal(formatDuration(65_000), '1 m 5 s');
  assert.equal(formatDuration(3_720_000), '1 h 2 m');
});

test('formatBytes uses binary units', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KB');
  assert.equal(formatBytes(21_530_456), '21 MB');
  assert.equal(formatBytes(null), '—');
});

test('formatTime shows the time alone today and the date too on other days; formatAgo drops decimals', () => {
  const now = new Date(2026, 10, 23, 14, 3, 27).getTime();
  assert.equal(formatTime(now - 3_600_000, now), '13:03:27');
  assert.equal(formatTime(new Date(2026, 10, 22, 9, 5, 1).getTime(), now), '2026-11-22 09:05:01');
  assert.equal(formatTime(null, now), '—');
  assert.equal(formatAgo(now - 500, now), 'just now');
  assert.equal(formatAgo(now - 5_400, now), '5 s ago');
  assert.equal(formatAgo(now - 65_000, now), '1 m 5 s ago');
  assert.equal(formatAgo(now + 10_000, now), 'just now', 'a clock a little ahead is not "in the future"');
});

test('parseJobError reads RunPod JSON errors and plain strings', () => {
  assert.equal(parseJobError(null), null);
  assert.deepEqual(parseJobError('boom'), { message: 'boom', traceback: null, extra: {} });
  const runpod = JSON.stringify({ error_type: "<class 'ValueError'>", error_message: 'bad input', error_traceback: 'Traceback (most recent call last):\n  …', hostname: 'w1' });
  assert.deepEqual(parseJobError(runpod), {
    message: 'bad input',
    traceback: 'Traceback (most recent call last):\n  …',
    extra: { error_type: "<class 'ValueError'>", hostname: 'w1' },
  });
  assert.equal(parseJobError('{not json')?.message, '{not json');
});

test('displayJson shortens long strings', () => {
  const text = displayJson({ audio: 'A'.repeat(1000) });
  assert.match(text, /… \(1000 chars\)/);
  assert.ok(text.length < 300);
});
