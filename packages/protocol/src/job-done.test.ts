import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ProtocolParseError,
  WORKER_LIMITS,
  formatErrorString,
  parseDonePost,
  parseDonePostText,
  parseErrorString,
  parseStopResponse,
  parseStreamBody,
} from './index.ts';
import type { ErrorObject } from './index.ts';

function assertParseError(fn: () => unknown, field: string): ProtocolParseError {
  let caught: unknown;
  assert.throws(fn, (error: unknown) => {
    caught = error;
    assert.ok(error instanceof ProtocolParseError, 'throws ProtocolParseError');
    assert.equal(error.field, field);
    assert.equal(error.message, `${field}: ${error.rule}`);
    return true;
  });
  return caught as ProtocolParseError;
}

test('a done-post with status IN_PROGRESS is a progress update', () => {
  assert.deepEqual(parseDonePost({ status: 'IN_PROGRESS', output: { pct: 50 } }), {
    kind: 'progress',
    output: { pct: 50 },
  });
});

test('a progress update must carry output and no other status is accepted', () => {
  assertParseError(() => parseDonePost({ status: 'IN_PROGRESS' }), 'output');
  assertParseError(() => parseDonePost({ status: 'COMPLETED', output: 1 }), 'status');
});

test('a result keeps output, error and stopPod as sent', () => {
  assert.deepEqual(parseDonePost({ output: { detail: 1 }, error: 'bad input' }), {
    kind: 'result',
    output: { detail: 1 },
    error: 'bad input',
    stopPod: false,
  });
  assert.deepEqual(parseDonePost({ output: 42, stopPod: true }), { kind: 'result', output: 42, stopPod: true });
});

test('a result without output has no output key, while output null is kept', () => {
  const errorOnly = parseDonePost({ error: 'x' });
  assert.equal('output' in errorOnly, false);
  const nullOutput = parseDonePost({ output: null });
  assert.equal('output' in nullOutput, true);
  assert.deepEqual(nullOutput, { kind: 'result', output: null, stopPod: false });
});

test('a result with a non-string error or non-boolean stopPod is rejected', () => {
  assertParseError(() => parseDonePost({ error: { message: 'x' } }), 'error');
  assertParseError(() => parseDonePost({ output: 1, stopPod: 'true' }), 'stopPod');
  assertParseError(() => parseDonePost([{ output: 1 }]), 'body');
});

test('done-post text is read as JSON whatever its content type', () => {
  assert.deepEqual(parseDonePostText('{"output": []}'), { kind: 'result', output: [], stopPod: false });
  const error = assertParseError(() => parseDonePostText('output=1'), 'body');
  assert.match(error.rule, /^must be JSON/);
  assert.ok(error.cause instanceof SyntaxError, 'keeps the JSON error as cause');
  assertParseError(() => parseDonePostText(''), 'body');
});

test('a stream body must carry output', () => {
  assert.deepEqual(parseStreamBody({ output: 'chunk-0' }), { output: 'chunk-0' });
  assert.deepEqual(parseStreamBody({ output: null }), { output: null });
  assertParseError(() => parseStreamBody({ chunk: 1 }), 'output');
  assertParseError(() => parseStreamBody('chunk'), 'body');
});

test('a stop answer lists job ids as strings', () => {
  assert.deepEqual(parseStopResponse({ jobsToStop: ['s1', 's2'] }), { jobsToStop: ['s1', 's2'] });
  assertParseError(() => parseStopResponse({}), 'jobsToStop');
  assertParseError(() => parseStopResponse({ jobsToStop: 's1' }), 'jobsToStop');
  assertParseError(() => parseStopResponse({ jobsToStop: ['s1', 2] }), 'jobsToStop[1]');
});

const errorObject: ErrorObject = {
  error_type: "<class 'ValueError'>",
  error_message: 'boom',
  error_traceback: 'Traceback (most recent call last):\n ...',
  hostname: 'unknown',
  worker_id: 'w1',
  runpod_version: '1.12.0',
};

test('an error object round-trips through its string form', () => {
  const text = formatErrorString(errorObject);
  assert.equal(typeof text, 'string');
  assert.deepEqual(JSON.parse(text), errorObject);
  assert.deepEqual(parseErrorString(text), errorObject);
});

test('an error string that is not an error object reads as undefined', () => {
  assert.equal(parseErrorString('handler: boom \ntraceback: ...'), undefined);
  assert.equal(parseErrorString('"just a string"'), undefined);
  assert.equal(parseErrorString('[1]'), undefined);
  const { worker_id: _dropped, ...partial } = errorObject;
  assert.equal(parseErrorString(JSON.stringify(partial)), undefined);
});

test('worker limits are 20 MiB per result and 1 MiB per stream chunk', () => {
  assert.equal(WORKER_LIMITS.maxResultBytes, 20_971_520);
  assert.equal(WORKER_LIMITS.maxStreamChunkBytes, 1_048_576);
});
