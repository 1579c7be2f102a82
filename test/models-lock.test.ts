// The per-model cross-process lock as ensure() sees it, on an injected clock: a waiter polls on the
// clock (no real sleeps), finds the model verified once the holder is done, takes over a lock whose
// holder died (backdated rather than waited for), and stops waiting when its signal aborts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { acquireModelLock, LOCK_TIMING, lockTarget, ModelStore, parseManifest, systemClock } from '@kiln/models';
import { FakeHuggingFaceHub } from '@kiln/models/testing';
import { ManualClock } from '@kiln/protocol';

let hub: FakeHuggingFaceHub;
let dir: string;
let counter = 0;

before(async () => {
  hub = await FakeHuggingFaceHub.start();
  hub.addRepo('acme/locked', { files: { 'weights.bin': randomBytes(2 << 20), 'config.json': '{}' } });
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-models-lock-'));
});

after(async () => {
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

function store(volume: string, clock = systemClock) {
  return new ModelStore({ manifest: parseManifest({ m: { source: 'hf://acme/locked' } }, { baseDir: dir }), volume, hub: { url: hub.url, token: undefined }, clock, durable: false });
}

async function freshVolume(): Promise<string> {
  const volume = path.join(dir, `volume-${++counter}`);
  await mkdir(volume, { recursive: true });
  return volume;
}

test('a second store waits for the lock on its clock, then finds the model verified and downloads nothing', async () => {
  const volume = await freshVolume();
  const clock = new ManualClock();
  const beforeContent = hub.contentRequests().length;
  const gate = hub.pauseAfter('weights.bin', 1 << 20);
  const first = store(volume).ensure('m');
  await gate.reached;

  const events: string[] = [];
  const second = store(volume, clock).ensure('m', { onEvent: (e) => events.push(e.type) });
  await clock.waitForSleep(LOCK_TIMING.pollMs);
  assert.deepEqual(events, ['waiting']);
  gate.resume();
  const firstPath = await first;
  await clock.advance(LOCK_TIMING.pollMs);
  assert.equal(await second, firstPath);
  assert.deepEqual(hub.contentRequests().slice(beforeContent).map((r) => r.path).sort(), ['config.json', 'weights.bin']);
});

test('a lock whose holder stopped refreshing it is taken over once its mtime is older than staleMs', async () => {
  const volume = await freshVolume();
  const clock = new ManualClock();
  // A holder that died: its lock exists, fresh for now.
  await mkdir(lockTarget(volume, 'm'), { recursive: true });
  const ensured = store(volume, clock).ensure('m');
  await clock.waitForSleep(LOCK_TIMING.pollMs);
  // Still fresh: the next attempt waits again.
  await clock.advance(LOCK_TIMING.pollMs);
  await clock.waitForSleep(LOCK_TIMING.pollMs);
  const stale = new Date(Date.now() - LOCK_TIMING.staleMs - 60_000);
  await utimes(lockTarget(volume, 'm'), stale, stale);
  await clock.advance(LOCK_TIMING.pollMs);
  assert.equal(await ensured, path.join(volume, 'm'));
});

test('an ensure() waiting for a lock rejects with its signal\'s reason when aborted, and releases nothing it does not hold', async () => {
  const volume = await freshVolume();
  const clock = new ManualClock();
  const held = await acquireModelLock(volume, 'm', { clock, timing: LOCK_TIMING });
  const controller = new AbortController();
  const ensured = store(volume, clock).ensure('m', { signal: controller.signal });
  await clock.waitForSleep(LOCK_TIMING.pollMs);
  const reason = new Error('worker shutting down');
  controller.abort(reason);
  await assert.rejects(ensured, (e) => e === reason);
  // The holder still holds it: a new attempt still finds it taken.
  const other = new AbortController();
  const attempt = acquireModelLock(volume, 'm', { clock, timing: LOCK_TIMING, signal: other.signal });
  await clock.waitForSleep(LOCK_TIMING.pollMs);
  other.abort(new Error('enough'));
  await assert.rejects(attempt, /enough/);
  await held.release();
});

test('concurrent ensure() calls in one process share one pull', async () => {
  const volume = await freshVolume();
  const models = store(volume);
  const before = hub.requests.filter((r) => r.route === 'info').length;
  const paths = await Promise.all(Array.from({ length: 5 }, () => models.ensure('m')));
  assert.deepEqual(new Set(paths), new Set([path.join(volume, 'm')]));
  assert.equal(hub.requests.filter((r) => r.route === 'info').length - before, 1);
});
