import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser, isEventStream } from './sse.ts';
import type { SseEvent } from './sse.ts';

const STREAM = [
  ': ping',
  '',
  'id: 0.0.1',
  'event: progress',
  'data: {"progress":{"step":1}}',
  '',
  'id: 0.1.1',
  'event: chunk',
  'data: {"output":"a"}',
  '',
  'event: chunk',
  'data: first line',
  'data:second line',
  'data',
  '',
  'id: 0.1.1.end',
  'event: status',
  'data: {"id":"j","status":"COMPLETED"}',
  '',
].join('\n') + '\n';

const EXPECTED: SseEvent[] = [
  { type: 'progress', data: '{"progress":{"step":1}}', id: '0.0.1' },
  { type: 'chunk', data: '{"output":"a"}', id: '0.1.1' },
  // no id: the last one stays in force; a bare `data` line adds an empty line
  { type: 'chunk', data: 'first line\nsecond line\n', id: '0.1.1' },
  { type: 'status', data: '{"id":"j","status":"COMPLETED"}', id: '0.1.1.end' },
];

test('events, comments, multi-line data and ids are read as the HTML Standard says', () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push(STREAM), EXPECTED);
  assert.equal(parser.lastEventId, '0.1.1.end');
});

test('CRLF, CR and LF all end lines, and a CRLF split between two pieces counts once', () => {
  for (const eol of ['\r\n', '\r', '\n']) {
    const text = STREAM.replaceAll('\n', eol);
    for (let cut = 0; cut <= text.length; cut++) {
      const parser = new SseParser();
      const events = [...parser.push(text.slice(0, cut)), ...parser.push(text.slice(cut))];
      assert.deepEqual(events, EXPECTED, `eol ${JSON.stringify(eol)} cut at ${cut}`);
    }
  }
});

test('fed one character at a time, the same events come out', () => {
  const parser = new SseParser();
  const events = [...STREAM].flatMap((ch) => parser.push(ch));
  assert.deepEqual(events, EXPECTED);
});

test('an event without its blank line is not dispatched, and its id does not count until it is', () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push('id: 1\nevent: chunk\ndata: {"output":1}\n\nid: 2\nevent: chunk\ndata: {"output":2}\n'), [
    { type: 'chunk', data: '{"output":1}', id: '1' },
  ]);
  assert.equal(parser.lastEventId, '1', 'a reconnect must ask for event 2 again');
  parser.reset();
  assert.deepEqual(parser.push('\n'), [], 'the half event was forgotten');
  assert.deepEqual(parser.push('id: 2\nevent: chunk\ndata: {"output":2}\n\n'), [{ type: 'chunk', data: '{"output":2}', id: '2' }]);
});

test('an id alone (no data) moves the last event id without dispatching; an id holding NUL is ignored', () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push('id: 7\n\n'), []);
  assert.equal(parser.lastEventId, '7');
  assert.deepEqual(parser.push('id: 8\u00009\ndata: x\n\n'), [{ type: 'message', data: 'x', id: '7' }]);
});

test('retry: sets the reconnection delay only when it is all digits; unknown fields are ignored', () => {
  const parser = new SseParser();
  parser.push('retry: 1500\nretry: soon\nfoo: bar\n\n');
  assert.equal(parser.retryMs, 1500);
  assert.deepEqual(parser.push('data:  two spaces\n\n'), [{ type: 'message', data: ' two spaces', id: '' }], 'only one leading space is stripped');
});

test('isEventStream reads the media type, parameters and case aside', () => {
  assert.equal(isEventStream('text/event-stream'), true);
  assert.equal(isEventStream('Text/Event-Stream; charset=utf-8'), true);
  assert.equal(isEventStream('application/json'), false);
  assert.equal(isEventStream(null), false);
});
