import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { WebhookVerificationError, signWebhook, verifyWebhook } from './index.ts';
import type { WebhookVerificationReason } from './index.ts';

const KEY = randomBytes(32);
const SECRET = `whsec_${KEY.toString('base64')}`;
const NOW_MS = 1_700_000_000_000;
const NOW_S = NOW_MS / 1000;
const BODY = JSON.stringify({ id: 'job-1', status: 'COMPLETED', output: { text: 'héllo ✓' } });

/** The signature computed independently, with node:crypto rather than WebCrypto. */
function reference(key: Buffer, id: string, timestamp: number, body: string): string {
  return createHmac('sha256', key).update(`${id}.${timestamp}.${body}`, 'utf8').digest('base64');
}

async function rejectsWith(promise: Promise<unknown>, reason: WebhookVerificationReason, header?: string): Promise<WebhookVerificationError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    assert.ok(error instanceof WebhookVerificationError, `a WebhookVerificationError, got ${String(error)}`);
    assert.equal(error.name, 'WebhookVerificationError');
    assert.equal(error.reason, reason);
    assert.equal(error.header, header);
    return true;
  });
  return caught as WebhookVerificationError;
}

test('signWebhook gives the three headers, the signature being the HMAC-SHA256 node:crypto computes', async () => {
  const headers = await signWebhook(SECRET, { id: 'msg_abc', timestamp: NOW_S, body: BODY });
  assert.deepEqual(headers, {
    'webhook-id': 'msg_abc',
    'webhook-timestamp': String(NOW_S),
    'webhook-signature': `v1,${reference(KEY, 'msg_abc', NOW_S, BODY)}`,
  });
  const bytes = await signWebhook(SECRET, { id: 'msg_abc', timestamp: NOW_S, body: new TextEncoder().encode(BODY) });
  assert.equal(bytes['webhook-signature'], headers['webhook-signature'], 'a body given as bytes signs the same');
});

test('the Standard Webhooks specification vector', async () => {
  const headers = await signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', {
    id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    timestamp: 1614265330,
    body: '{"test": 2432232314}',
  });
  assert.equal(headers['webhook-signature'], 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
});

test('verifyWebhook accepts a signed delivery: fetch Headers, node header objects, any header case', async () => {
  const headers = await signWebhook(SECRET, { id: 'msg_1', timestamp: NOW_S, body: BODY });
  await verifyWebhook(SECRET, new Headers({ ...headers }), BODY, { now: NOW_MS });
  await verifyWebhook(SECRET, { ...headers }, BODY, { now: NOW_MS });
  await verifyWebhook(SECRET, { 'Webhook-Id': 'msg_1', 'Webhook-Timestamp': String(NOW_S), 'Webhook-Signature': headers['webhook-signature'] }, BODY, { now: NOW_MS });
  await verifyWebhook(SECRET, { ...headers }, new TextEncoder().encode(BODY), { now: NOW_MS });
});

test('a tampered body, id or timestamp, or another secret, is refused as bad-signature', async () => {
  const headers = await signWebhook(SECRET, { id: 'msg_1', timestamp: NOW_S, body: BODY });
  await rejectsWith(verifyWebhook(SECRET, headers, BODY.replace('COMPLETED', 'FAILED'), { now: NOW_MS }), 'bad-signature', 'webhook-signature');
  await rejectsWith(verifyWebhook(SECRET, { ...headers, 'webhook-id': 'msg_2' }, BODY, { now: NOW_MS }), 'bad-signature', 'webhook-signature');
  await rejectsWith(verifyWebhook(SECRET, { ...headers, 'webhook-timestamp': String(NOW_S + 1) }, BODY, { now: NOW_MS }), 'bad-signature', 'webhook-signature');
  const other = `whsec_${randomBytes(32).toString('base64')}`;
  await rejectsWith(verifyWebhook(other, headers, BODY, { now: NOW_MS }), 'bad-signature', 'webhook-signature');
});

test('several space-separated signatures: one matching v1 entry is enough; other versions and junk are ignored', async () => {
  const good = (await signWebhook(SECRET, { id: 'msg_1', timestamp: NOW_S, body: BODY }))['webhook-signature'];
  const wrong = `v1,${reference(randomBytes(32), 'msg_1', NOW_S, BODY)}`;
  const goodValue = good.slice(3);
  const base = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(NOW_S) };
  await verifyWebhook(SECRET, { ...base, 'webhook-signature': `${wrong} ${good}` }, BODY, { now: NOW_MS });
  await verifyWebhook(SECRET, { ...base, 'webhook-signature': `v1a,${goodValue} nonsense ${good}` }, BODY, { now: NOW_MS });
  await rejectsWith(verifyWebhook(SECRET, { ...base, 'webhook-signature': `v2,${goodValue} ${wrong}` }, BODY, { now: NOW_MS }), 'bad-signature', 'webhook-signature');
  await rejectsWith(verifyWebhook(SECRET, { ...base, 'webhook-signature': `v1,${goodValue.slice(0, -4)}` }, BODY, { now: NOW_MS }), 'bad-signature', 'webhook-signature');
  await rejectsWith(verifyWebhook(SECRET, { ...base, 'webhook-signature': 'v1,!!!' }, BODY, { now: NOW_MS }), 'bad-signature', 'webhook-signature');
});

test('a missing header is named', async () => {
  const headers = await signWebhook(SECRET, { id: 'msg_1', timestamp: NOW_S, body: BODY });
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
    const partial: Record<string, string> = { ...headers };
    delete partial[name];
    const error = await rejectsWith(verifyWebhook(SECRET, partial, BODY, { now: NOW_MS }), 'missing-header', name);
    assert.match(error.message, new RegExp(name));
    await rejectsWith(verifyWebhook(SECRET, { ...headers, [name]: ' ' }, BODY, { now: NOW_MS }), 'missing-header', name);
  }
});

test('the timestamp must be within the tolerance either way (300 s by default) and integer seconds', async () => {
  const at = async (timestamp: number) => signWebhook(SECRET, { id: 'msg_1', timestamp, body: BODY });
  await verifyWebhook(SECRET, await at(NOW_S - 300), BODY, { now: NOW_MS });
  await verifyWebhook(SECRET, await at(NOW_S + 300), BODY, { now: NOW_MS });
  const old = await rejectsWith(verifyWebhook(SECRET, await at(NOW_S - 301), BODY, { now: NOW_MS }), 'stale-timestamp', 'webhook-timestamp');
  assert.match(old.message, /301 s old/);
  await rejectsWith(verifyWebhook(SECRET, await at(NOW_S + 301), BODY, { now: NOW_MS }), 'stale-timestamp', 'webhook-timestamp');
  await verifyWebhook(SECRET, await at(NOW_S - 3000), BODY, { now: NOW_MS, toleranceSeconds: 3600 });
  await rejectsWith(verifyWebhook(SECRET, await at(NOW_S - 11), BODY, { now: NOW_MS, toleranceSeconds: 10 }), 'stale-timestamp', 'webhook-timestamp');
  // Without `now`, the wall clock decides.
  await verifyWebhook(SECRET, await at(Math.floor(Date.now() / 1000)), BODY);
  await rejectsWith(verifyWebhook(SECRET, await at(NOW_S), BODY), 'stale-timestamp', 'webhook-timestamp');

  const headers = await at(NOW_S);
  for (const bad of ['1700000000.5', '-1', 'soon', '1e9']) {
    await rejectsWith(verifyWebhook(SECRET, { ...headers, 'webhook-timestamp': bad }, BODY, { now: NOW_MS }), 'invalid-timestamp', 'webhook-timestamp');
  }
});

test('a secret that is not base64 is refused; the whsec_ prefix is optional', async () => {
  await rejectsWith(signWebhook('whsec_not base64!', { id: 'msg_1', timestamp: NOW_S, body: BODY }), 'invalid-secret');
  await rejectsWith(verifyWebhook('whsec_', {}, BODY), 'invalid-secret');
  const headers = await signWebhook(KEY.toString('base64'), { id: 'msg_1', timestamp: NOW_S, body: BODY });
  await verifyWebhook(SECRET, headers, BODY, { now: NOW_MS });
});
