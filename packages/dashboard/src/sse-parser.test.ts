import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser, backoffMs } from './sse-parser.ts';

test('parses events split anywhere, skipping comments', () => {
  const parser = new SseParser();
  const text = ': ping\n\nevent: jobs\ndata: {"endpoint":"echo",\ndata: "jobs":[]}\n\nevent: metrics\r\ndata: 1\r\n\r\n';
  const events = [];
  for (let i = 0; i < text.length; i += 3) events.push(...parser.push(text.slice(i, i + 3)));
  assert.deepEqual(events, [
    { event: 'jobs', data: '{"endpoint":"echo",\n"jobs":[]}', id: '' },
    { event: 'metrics', data: '1', id: '' },
  ]);
});

test('CRLF split between pieces counts once; data without event is a message; id and retry are kept', () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push('id: 4\rdata: a\r'), []);
  assert.deepEqual(parser.push('\n\r\n'), [{ event: 'message', data: 'a', id: '4' }]);
  parser.push('retry: 2500\n\n');
  assert.equal(parser.retryMs, 2500);
});

test('an event without its blank line is not dispatched; one without data neither', () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push('event: x\n\ndata: half'), []);
  assert.deepEqual(parser.push('\n\n'), [{ event: 'message', data: 'half', id: '' }]);
});

test('backoff doubles to 15 s', () => {
  assert.equal(backoffMs(0, () => 0.5), 1000);
  assert.equal(backoffMs(2, () => 0.5), 4000);
  assert.equal(backoffMs(9, () => 0.5), 15_000);
});
