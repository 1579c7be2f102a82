import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelView } from '@kiln/protocol';
import { createTestGateway, fakeModels, TEST_API_KEY } from './test-gateway.ts';

const auth = { authorization: `Bearer ${TEST_API_KEY}` };

test('GET /kiln/v1/models lists the volume\'s models; POST …/pull starts a pull and answers 202 with the model', async () => {
  const models = fakeModels();
  const gw = await createTestGateway({ models });
  try {
    const list = await gw.request('/kiln/v1/models', { headers: auth });
    assert.equal(list.status, 200);
    assert.deepEqual(await list.json(), await models.list());
    const pulled = await gw.request('/kiln/v1/models/tiny/pull', { method: 'POST', headers: auth });
    assert.equal(pulled.status, 202);
    assert.deepEqual(((await pulled.json()) as ModelView).pull, { doneBytes: 0, totalBytes: null });
    assert.deepEqual(models.pulls, ['tiny']);
    assert.equal((await gw.request('/kiln/v1/models', {})).status, 401, 'same auth as the rest of the admin API');
  } finally {
    await gw.close();
  }
});

test('pulling a model the manifest does not have is a JSON 404 (UnknownModelError)', async () => {
  const gw = await createTestGateway({ models: fakeModels() });
  try {
    const res = await gw.request('/kiln/v1/models/huge/pull', { method: 'POST', headers: auth });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: "no model named 'huge' in the config's models", code: 'model_not_found' });
  } finally {
    await gw.close();
  }
});

test('without a models volume, the models routes answer a JSON 404 saying so', async () => {
  const gw = await createTestGateway();
  try {
    for (const [method, url] of [['GET', '/kiln/v1/models'], ['POST', '/kiln/v1/models/tiny/pull']] as const) {
      const res = await gw.request(url, { method, headers: auth });
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), { error: 'this gateway has no models volume', code: 'no_models_volume' });
    }
  } finally {
    await gw.close();
  }
});
