import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolParseError, parseJob, parseTakeResponse } from './index.ts';

function assertParseError(fn: () => unknown, field: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolParseError, 'throws ProtocolParseError');
    assert.equal(error.name, 'ProtocolParseError');
    assert.equal(error.field, field);
    assert.equal(error.message, `${field}: ${error.rule}`);
    return true;
  });
}

test('a job keeps extra keys such as s3Config and batchId for the handler', () => {
  const job = parseJob({ id: 'job-1', input: { prompt: 'hi' }, s3Config: { bucketName: 'b' }, batchId: 'x' });
  assert.deepEqual(job, { id: 'job-1', input: { prompt: 'hi' }, s3Config: { bucketName: 'b' }, batchId: 'x' });
});

test('a job input may be null but must be present', () => {
  assert.equal(parseJob({ id: 'j', input: null }).input, null);
  assertParseError(() => parseJob({ id: 'j' }), 'job.input');
});

test('a job id must be a non-empty string', () => {
  assertParseError(() => parseJob({ input: {} }), 'job.id');
  assertParseError(() => parseJob({ id: '', input: {} }), 'job.id');
  assertParseError(() => parseJob({ id: 7, input: {} }), 'job.id');
});

test('a job must be an object', () => {
  assertParseError(() => parseJob('job-1'), 'job');
  assertParseError(() => parseJob([{ id: 'a', input: 1 }]), 'job');
  assertParseError(() => parseJob(null, 'item'), 'item');
});

test('a take answer that is an object is one job', () => {
  const { jobs, rejected } = parseTakeResponse({ id: 'a', input: 1 });
  assert.deepEqual(jobs, [{ id: 'a', input: 1 }]);
  assert.deepEqual(rejected, []);
});

test('a take answer object that is not a job throws, naming the field', () => {
  assertParseError(() => parseTakeResponse({ id: 'a' }), 'input');
  assertParseError(() => parseTakeResponse({ input: 1 }), 'id');
});

test('a batch keeps good jobs and reports each bad item by index', () => {
  const { jobs, rejected } = parseTakeResponse([
    { id: 'b1', input: {} },
    'nope',
    { id: 'b3', input: { sleep: 2 } },
    { id: '', input: {} },
  ]);
  assert.deepEqual(jobs.map((j) => j.id), ['b1', 'b3']);
  assert.deepEqual(rejected.map((r) => r.index), [1, 3]);
  assert.equal(rejected[0]?.error.field, '[1]');
  assert.equal(rejected[1]?.error.field, '[3].id');
  assert.match(rejected[1]?.error.message ?? '', /^\[3\]\.id: /);
});

test('an empty batch has no jobs', () => {
  assert.deepEqual(parseTakeResponse([]), { jobs: [], rejected: [] });
});

test('a take answer that is neither object nor array throws', () => {
  for (const bad of ['x', 1, null, true]) assertParseError(() => parseTakeResponse(bad), 'body');
});
