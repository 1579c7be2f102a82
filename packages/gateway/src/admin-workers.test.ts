import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { ManualClock, type WorkerView } from '@kiln/protocol';
import { parseConfig } from './config.ts';
import { Gateway } from './gateway.ts';
import { setupMsOf } from './process-driver.ts';
import { createTestGateway, TEST_API_KEY } from './test-gateway.ts';

test('setupMsOf reads the worker runtime\'s "setup finished" JSON line, and nothing else', () => {
  assert.equal(setupMsOf('{"requestId":null,"level":"INFO","message":"setup finished","setupMs":812}'), 812);
  assert.equal(setupMsOf('  {"message":"setup finished","setupMs":0}'), 0);
  assert.equal(setupMsOf('{"message":"setup finished","setupMs":"812"}'), null);
  assert.equal(setupMsOf('{"message":"setup finished"}'), null);
  assert.equal(setupMsOf('{"message":"setup finished soon","setupMs":3}'), null);
  assert.equal(setupMsOf('setup finished setupMs=3'), null);
  assert.equal(setupMsOf('{"message":"setup finished",'), null);
});

test('GET workers: setupMs and the IN_PROGRESS jobs the store says each worker holds (currentJobs), beside the existing fields', async () => {
  const gw = await createTestGateway();
  try {
    const busy = gw.addWorker({ workerId: 'busy' });
    gw.addWorker({ workerId: 'fresh' });
    const a = await gw.run({ a: 1 });
    const b = await gw.run({ b: 2 });
    await gw.clock.advance(300);
    assert.equal(((await (await busy.takeBatch(2)).json()) as unknown[]).length, 2);
    await busy.ping(`job_id=${a}`);
    gw.registry.recordSetup('busy', 250);
    const res = await gw.request('/kiln/v1/endpoints/echo/workers', { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    const { workers } = (await res.json()) as { workers: (WorkerView & { jobs: string[] })[] };
    const now = gw.clock.now();
    assert.deepEqual(workers, [
      { workerId: 'busy', state: 'idle', startedAt: now - 300, uptimeMs: 300, coldStartMs: 300, setupMs: 250, lastPingAt: now, currentJobs: [a, b].sort(), jobs: [a], unhealthy: null },
      { workerId: 'fresh', state: 'initializing', startedAt: now - 300, uptimeMs: 300, coldStartMs: null, setupMs: null, lastPingAt: null, currentJobs: [], jobs: [], unhealthy: null },
    ]);
  } finally {
    await gw.close();
  }
});

test('the gateway records setupMs from a real worker\'s "setup finished" stdout line', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-setup-ms-'));
  writeFileSync(
    path.join(dir, 'worker.mjs'),
    `console.log(JSON.stringify({ requestId: null, level: 'INFO', message: 'setup finished', setupMs: 1234 }));\nsetInterval(() => {}, 1000);\n`,
  );
  const config = parseConfig(
    { endpoints: { echo: { worker: { command: 'node worker.mjs' }, workersMin: 1 } }, gateway: { apiKeys: [TEST_API_KEY], port: 0, databaseUrl: path.join(dir, 'kiln.db') } },
    { baseDir: dir, env: {} },
  );
  const gateway = new Gateway(config, { clock: new ManualClock(), log: { info() {}, warn() {}, error() {} } });
  try {
    await gateway.start();
    // A real process: wait (bounded) for its line to be read.
    for (let i = 0; i < 200 && gateway.registry.list('echo')[0]?.setupMs == null; i++) await delay(25);
    assert.equal(gateway.registry.list('echo')[0]?.setupMs, 1234);
  } finally {
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
