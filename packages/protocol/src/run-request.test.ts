import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_LIMITS, ProtocolParseError, WEBHOOK_EVENTS, parseRunRequest, parseRunsyncWait } from './index.ts';

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

test('the JS SDK run body parses as sent', () => {
  const body = {
    input: { a: 1 },
    webhook: 'https://example.com/hook',
    policy: { executionTimeout: 5000, ttl: 60000, lowPriority: false },
  };
  assert.deepEqual(parseRunRequest(body), body);
});

test('input is required but may be any JSON value', () => {
  assert.deepEqual(parseRunRequest({ input: null }), { input: null });
  assert.deepEqual(parseRunRequest({ input: 'text' }), { input: 'text' });
  assertParseError(() => parseRunRequest({ webhook: 'https://x.test' }), 'input');
  assertParseError(() => parseRunRequest({ input: undefined }), 'input');
  assertParseError(() => parseRunRequest('input'), 'body');
});

test('unknown keys such as webhookV2 are tolerated and dropped', () => {
  assert.deepEqual(parseRunRequest({ input: 1, webhookV2: { url: 'x' }, extra: true }), { input: 1 });
});

test('webhook must be an http(s) URL', () => {
  assert.equal(parseRunRequest({ input: 1, webhook: 'http://127.0.0.1:9/h' }).webhook, 'http://127.0.0.1:9/h');
  for (const bad of ['not a url', 'ftp://x.test/h', 'javascript:alert(1)', 42]) {
    const error = assertParseError(() => parseRunRequest({ input: 1, webhook: bad }), 'webhook');
    assert.match(error.rule, /http\(s\) URL/);
  }
});

test('webhookEvents (kiln extension): known event names, each once, in canonical order; anything else names the field and the allowed values', () => {
  assert.equal('webhookEvents' in parseRunRequest({ input: 1, webhook: 'https://x.test/h' }), false, 'absent unless sent');
  assert.deepEqual(parseRunRequest({ input: 1, webhookEvents: ['completed', 'start', 'start'] }).webhookEvents, ['start', 'completed']);
  assert.deepEqual(parseRunRequest({ input: 1, webhookEvents: [...WEBHOOK_EVENTS].reverse() }).webhookEvents, [...WEBHOOK_EVENTS]);
  const unknown = assertParseError(() => parseRunRequest({ input: 1, webhookEvents: ['start', 'finished'] }), 'webhookEvents[1]');
  assert.equal(unknown.rule, 'must be one of start, progress, output, completed');
  for (const bad of [[], 'completed', [1], null]) {
    const error = assertParseError(() => parseRunRequest({ input: 1, webhookEvents: bad }), Array.isArray(bad) && bad.length > 0 ? 'webhookEvents[0]' : 'webhookEvents');
    assert.match(error.rule, /start, progress, output, completed/);
  }
});

test('policy durations must be integers within RunPod limits, and the rule names the range', () => {
  const error = assertParseError(() => parseRunRequest({ input: 1, policy: { executionTimeout: 4999 } }), 'policy.executionTimeout');
  assert.equal(error.rule, 'must be an integer from 5000 to 604800000 (ms)');
  assert.equal(parseRunRequest({ input: 1, policy: { executionTimeout: 604_800_000 } }).policy?.executionTimeout, 604_800_000);
  assertParseError(() => parseRunRequest({ input: 1, policy: { executionTimeout: 604_800_001 } }), 'policy.executionTimeout');
  assertParseError(() => parseRunRequest({ input: 1, policy: { executionTimeout: 6000.5 } }), 'policy.executionTimeout');
  assertParseError(() => parseRunRequest({ input: 1, policy: { ttl: 9999 } }), 'policy.ttl');
  assertParseError(() => parseRunRequest({ input: 1, policy: { ttl: '60000' } }), 'policy.ttl');
  assert.equal(parseRunRequest({ input: 1, policy: { ttl: 10_000 } }).policy?.ttl, 10_000);
  assertParseError(() => parseRunRequest({ input: 1, policy: { lowPriority: 'yes' } }), 'policy.lowPriority');
  assertParseError(() => parseRunRequest({ input: 1, policy: [] }), 'policy');
});

test('s3Config needs its four credential strings; objectPath is optional', () => {
  const s3Config = { accessId: 'a', accessSecret: 's', bucketName: 'b', endpointUrl: 'https://s3.test' };
  assert.deepEqual(parseRunRequest({ input: 1, s3Config }).s3Config, s3Config);
  assert.deepEqual(parseRunRequest({ input: 1, s3Config: { ...s3Config, objectPath: 'p/' } }).s3Config?.objectPath, 'p/');
  const { bucketName: _omitted, ...noBucket } = s3Config;
  assertParseError(() => parseRunRequest({ input: 1, s3Config: noBucket }), 's3Config.bucketName');
  assertParseError(() => parseRunRequest({ input: 1, s3Config: { ...s3Config, accessId: 1 } }), 's3Config.accessId');
  assertParseError(() => parseRunRequest({ input: 1, s3Config: { ...s3Config, objectPath: 1 } }), 's3Config.objectPath');
});

test('runsync wait defaults to 90 s and clamps integers to 1–300 s', () => {
  assert.equal(parseRunsyncWait(null), 90_000);
  assert.equal(parseRunsyncWait(undefined), 90_000);
  assert.equal(parseRunsyncWait(''), 90_000);
  assert.equal(parseRunsyncWait('5000'), 5000);
  assert.equal(parseRunsyncWait('10'), 1000);
  assert.equal(parseRunsyncWait('-5'), 1000);
  assert.equal(parseRunsyncWait('999999999'), 300_000);
});

test('runsync wait rejects non-integers', () => {
  for (const bad of ['abc', '1.5', '1e4', ' 5000', '0x10']) assertParseError(() => parseRunsyncWait(bad), 'wait');
});

test('client limits match RunPod documentation', () => {
  assert.equal(CLIENT_LIMITS.runBodyBytes, 10 * 1024 * 1024);
  assert.equal(CLIENT_LIMITS.runsyncBodyBytes, 20 * 1024 * 1024);
  assert.deepEqual(CLIENT_LIMITS.runsyncWait, { min: 1000, max: 300_000, default: 90_000 });
  assert.deepEqual(CLIENT_LIMITS.executionTimeout, { min: 5000, max: 604_800_000 });
  assert.deepEqual(CLIENT_LIMITS.ttl, { min: 10_000, max: 604_800_000, default: 86_400_000 });
});
