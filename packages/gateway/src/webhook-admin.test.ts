import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import type { NewWebhookDelivery } from './job-store.ts';
import { createTestGateway, TEST_API_KEY, type TestGateway } from './test-gateway.ts';

let gw: TestGateway;
beforeEach(async () => {
  gw = await createTestGateway();
});
afterEach(() => gw.close());

const admin = (path: string, init: { method?: string; key?: string | null } = {}) =>
  gw.request(`/kiln/v1/${path}`, {
    ...(init.method ? { method: init.method } : {}),
    headers: init.key === null ? {} : { authorization: `Bearer ${init.key ?? TEST_API_KEY}` },
  });

function delivery(id: string, createdAt: number, endpoint = 'echo'): NewWebhookDelivery {
  return { id, jobId: `job-${id}`, jobRun: 0, endpoint, event: 'completed', url: 'https://hooks.test/h', payload: '{"big":"payload"}', createdAt };
}

/** Three deliveries of `echo`: `ok` delivered, `bad` failed (one attempt allowed), `wait` pending; and one of another endpoint. */
async function outbox(): Promise<number> {
  const t = gw.clock.now();
  for (const [id, at] of [['ok', t], ['bad', t + 1], ['wait', t + 2]] as const) await gw.store.addWebhookDelivery(delivery(id, at));
  await gw.store.addWebhookDelivery(delivery('elsewhere', t + 3, 'other'));
  await gw.store.claimWebhookDeliveries(t + 10, 2, t + 60_000);
  await gw.store.markWebhookDelivered('ok', 1, t + 11, 200);
  await gw.store.markWebhookAttemptFailed('bad', 1, { error: 'HTTP 410: gone', httpStatus: 410, retryAt: t + 20, maxAttempts: 1 });
  return t;
}

test('GET /endpoints/:endpoint/webhooks lists the outbox newest first, by state, without payloads', async () => {
  const t = await outbox();
  const list = async (query = '') => {
    const res = await admin(`endpoints/echo/webhooks${query}`);
    assert.equal(res.status, 200);
    return ((await res.json()) as { deliveries: Record<string, unknown>[] }).deliveries;
  };
  assert.deepEqual((await list()).map((d) => d['id']), ['wait', 'bad', 'ok']);
  assert.deepEqual((await list('?state=pending')).map((d) => d['id']), ['wait']);
  assert.deepEqual((await list('?state=delivered')).map((d) => d['id']), ['ok']);
  assert.deepEqual((await list('?limit=1')).map((d) => d['id']), ['wait']);
  const [failed] = await list('?state=failed');
  assert.deepEqual(failed, {
    id: 'bad',
    jobId: 'job-bad',
    jobRun: 0,
    endpoint: 'echo',
    event: 'completed',
    url: 'https://hooks.test/h',
    state: 'failed',
    attempts: 1,
    nextAttemptAt: t + 60_000,
    lastError: 'HTTP 410: gone',
    lastStatus: 410,
    createdAt: t + 1,
    deliveredAt: null,
  });
});

test('the listing checks its parameters, its endpoint and the client key', async () => {
  const bad = await admin('endpoints/echo/webhooks?state=lost');
  assert.equal(bad.status, 400);
  assert.deepEqual(await bad.json(), {
    error: "state: must be one of pending, delivered, failed; got 'lost'",
    code: 'invalid_request',
    field: 'state',
  });
  assert.equal((await admin('endpoints/echo/webhooks?limit=0')).status, 400);
  assert.equal((await admin('endpoints/nope/webhooks')).status, 404);
  assert.equal((await admin('endpoints/echo/webhooks', { key: null })).status, 401);
  assert.equal((await admin('webhooks/bad/redeliver', { method: 'POST', key: 'wrong' })).status, 401);
});

test('POST /webhooks/:deliveryId/redeliver puts a failed or delivered delivery back to pending with attempts reset, and wakes the sender', async () => {
  const t = await outbox();
  let woken = 0;
  gw.ctx.webhooks = { jobEvent: async () => false, wake: () => void woken++ };
  await gw.clock.advance(5000);
  for (const id of ['bad', 'ok']) {
    const res = await admin(`webhooks/${id}/redeliver`, { method: 'POST' });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual([body['id'], body['state'], body['attempts'], body['nextAttemptAt'], body['deliveredAt']], [id, 'pending', 0, t + 5000, null]);
    assert.equal('payload' in body, false);
  }
  assert.equal(woken, 2);
  const again = await gw.store.claimWebhookDeliveries(t + 5000, 10, t + 99_000);
  assert.deepEqual(again.map((d) => [d.id, d.attempts]).sort(), [['bad', 1], ['elsewhere', 1], ['ok', 1], ['wait', 1]], 'the two redelivered ones are due again');
});

test('redelivering an unknown delivery is a JSON 404', async () => {
  const res = await admin('webhooks/msg_nope/redeliver', { method: 'POST' });
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: 'webhook delivery msg_nope not found', code: 'webhook_delivery_not_found' });
});
