import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '@kiln/protocol';
import { WorkerRegistry } from './worker-registry.ts';

function setup() {
  const clock = new ManualClock();
  const registry = new WorkerRegistry({ clock });
  registry.register({ workerId: 'w1', endpoint: 'tts', token: 'secret-token-1' });
  registry.register({ workerId: 'w2', endpoint: 'vfx', token: 'secret-token-2' });
  return { clock, registry };
}

test('a worker authenticates with its own raw or Bearer token, only on its own endpoint', () => {
  const { registry } = setup();
  assert.equal(registry.authenticate('tts', 'w1', 'secret-token-1'), true);
  assert.equal(registry.authenticate('tts', 'w1', 'Bearer secret-token-1'), true);
  assert.equal(registry.authenticate('vfx', 'w1', 'secret-token-1'), false, 'other endpoint');
  assert.equal(registry.authenticate('tts', 'w1', 'secret-token-2'), false, "another worker's token");
  assert.equal(registry.authenticate('tts', 'w2', 'secret-token-2'), false, 'w2 is not on tts');
  assert.equal(registry.authenticate('tts', 'w1', undefined), false);
  assert.equal(registry.authenticate('tts', 'nobody', 'secret-token-1'), false);
});

test('initializing → idle on the first take; running while it holds jobs; idle since the moment it held none', async () => {
  const { clock, registry } = setup();
  assert.equal(registry.get('w1')!.state, 'initializing');
  await clock.advance(1500);
  registry.recordTake('w1');
  const info = registry.get('w1')!;
  assert.equal(info.state, 'idle');
  assert.equal(info.readyAt! - info.startedAt, 1500);
  registry.setHeldCount('w1', 2);
  assert.equal(info.state, 'running');
  assert.equal(info.idleSince, null);
  await clock.advance(700);
  registry.setHeldCount('w1', 0);
  assert.equal(info.state, 'idle');
  assert.equal(info.idleSince, clock.now());
  assert.deepEqual(registry.counts('tts'), { idle: 1, running: 0, initializing: 0, ready: 1, throttled: 0, unhealthy: 0 });
});

test('an unhealthy ping marks the worker unhealthy and keeps the reason', () => {
  const { registry } = setup();
  registry.recordPing('w1', { jobIds: ['a'], unhealthy: { check: 'setup', reason: 'setup failed: no GPU' } });
  const info = registry.get('w1')!;
  assert.equal(info.state, 'unhealthy');
  assert.deepEqual(info.reportedJobs, ['a']);
  assert.equal(info.unhealthy?.reason, 'setup failed: no GPU');
  registry.setHeldCount('w1', 0);
  assert.equal(info.state, 'unhealthy', 'held counts do not make it healthy again');
});

test('stop requests wake a waiting job-stop poll and are handed out once', async () => {
  const { registry } = setup();
  const controller = new AbortController();
  const waiting = registry.waitForStops('w1', controller.signal);
  registry.requestStop('w1', 'job-9');
  registry.requestStop('w1', 'job-9');
  await waiting;
  assert.deepEqual(registry.takeStops('w1'), ['job-9']);
  assert.deepEqual(registry.takeStops('w1'), []);
});

test('unregistering a worker ends its job-stop wait and forgets it', async () => {
  const { registry } = setup();
  const waiting = registry.waitForStops('w1', new AbortController().signal);
  registry.unregister('w1');
  await waiting;
  assert.equal(registry.get('w1'), undefined);
  assert.equal(registry.authenticate('tts', 'w1', 'secret-token-1'), false);
});
