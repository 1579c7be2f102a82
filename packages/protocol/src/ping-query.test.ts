import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolParseError, formatPingQuery, parsePingQuery } from './index.ts';

test('job_id is a comma-joined list, absent when idle', () => {
  assert.deepEqual(parsePingQuery(new URLSearchParams('job_id=b3%2Cb4&runpod_version=1.12.0')), {
    jobIds: ['b3', 'b4'],
    runpodVersion: '1.12.0',
  });
  assert.deepEqual(parsePingQuery(new URLSearchParams('runpod_version=1.7.13')).jobIds, []);
  assert.deepEqual(parsePingQuery(new URLSearchParams('job_id=')).jobIds, []);
});

test('an unhealthy ping carries check and reason', () => {
  const query = parsePingQuery(new URLSearchParams('status=unhealthy&check=memory&reason=only+2+GB&runpod_version=1.12.0'));
  assert.deepEqual(query, {
    jobIds: [],
    status: 'unhealthy',
    check: 'memory',
    reason: 'only 2 GB',
    runpodVersion: '1.12.0',
  });
});

test('a ping status other than unhealthy is rejected', () => {
  assert.throws(
    () => parsePingQuery(new URLSearchParams('status=ok')),
    (error: unknown) => error instanceof ProtocolParseError && error.field === 'status' && error.message.startsWith('status: '),
  );
});

test('formatting writes keys in the SDK order and encodes the comma as %2C', () => {
  assert.equal(formatPingQuery({ jobIds: ['b3', 'b4'], runpodVersion: '1.12.0' }), 'job_id=b3%2Cb4&runpod_version=1.12.0');
  assert.equal(formatPingQuery({ jobIds: [], runpodVersion: '1.12.0' }), 'runpod_version=1.12.0');
  assert.equal(
    formatPingQuery({ runpodVersion: '1.12.0', reason: 'r', check: 'gpu', status: 'unhealthy', jobIds: ['a'] }),
    'job_id=a&status=unhealthy&check=gpu&reason=r&runpod_version=1.12.0',
  );
  assert.equal(formatPingQuery({ jobIds: [] }), '');
});

test('formatting encodes like Python quote_plus', () => {
  assert.equal(
    formatPingQuery({ jobIds: [], status: 'unhealthy', check: 'disk', reason: "low disk: 5% (need 10%) *~é" }),
    'status=unhealthy&check=disk&reason=low+disk%3A+5%25+%28need+10%25%29+%2A~%C3%A9',
  );
});

test('reason is cut to 256 characters, counting code points', () => {
  const long = `${'x'.repeat(255)}😀😀`;
  const query = formatPingQuery({ jobIds: [], reason: long });
  const reason = new URLSearchParams(query).get('reason');
  assert.equal(reason, `${'x'.repeat(255)}😀`);
});

test('a formatted query parses back to the same value', () => {
  const original = { jobIds: ['job-1', 'sync-abc-e1'], status: 'unhealthy' as const, check: 'net', reason: 'a, b & c', runpodVersion: '1.12.0' };
  assert.deepEqual(parsePingQuery(new URLSearchParams(formatPingQuery(original))), original);
});
