import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '@kiln/protocol';
import { JOB_EVENTS_RECHECK_MS, JobEvents } from './job-events.ts';

test('a change notified between watch() and wait() is not missed: wait resolves at once', async () => {
  const clock = new ManualClock();
  const events = new JobEvents({ clock });
  const change = events.watch('j1');
  events.notify('j1', 'echo'); // e.g. the job finished while the store was being read
  let resolved = false;
  await Promise.race([change.wait(60_000).then(() => (resolved = true)), new Promise((r) => setImmediate(r))]);
  assert.equal(resolved, true, 'no sleep on the clock was needed');
  change.close();
  assert.equal(events.waiting, 0);
});

test('without a change, wait() resolves at the re-check interval (other gateways may have changed the job)', async () => {
  const clock = new ManualClock();
  const events = new JobEvents({ clock });
  const change = events.watch('j2');
  let resolved = false;
  const waiting = change.wait(60_000).then(() => (resolved = true));
  await clock.waitForSleep(JOB_EVENTS_RECHECK_MS);
  assert.equal(resolved, false);
  await clock.advance(JOB_EVENTS_RECHECK_MS);
  await waiting;
  change.close();
});

test("a notify for another job does not wake the watch", async () => {
  const clock = new ManualClock();
  const events = new JobEvents({ clock });
  const change = events.watch('mine');
  events.notify('other', 'echo');
  let resolved = false;
  const waiting = change.wait(5000).then(() => (resolved = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(resolved, false);
  events.notify('mine', 'echo');
  await waiting;
  change.close();
});

test('subscribe hears every notified job with its endpoint until it unsubscribes; watches still wake', async () => {
  const clock = new ManualClock();
  const events = new JobEvents({ clock });
  const heard: string[] = [];
  const unsubscribe = events.subscribe((jobId, endpoint) => heard.push(`${endpoint}/${jobId}`));
  const change = events.watch('a');
  events.notify('a', 'tts');
  events.notify('b', 'echo');
  await change.wait(60_000);
  change.close();
  assert.deepEqual(heard, ['tts/a', 'echo/b']);
  assert.equal(events.subscribers, 1);
  unsubscribe();
  events.notify('c', 'tts');
  assert.deepEqual(heard, ['tts/a', 'echo/b']);
  assert.equal(events.subscribers, 0);
});
