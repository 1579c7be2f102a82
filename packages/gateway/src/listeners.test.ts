import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Listeners } from './listeners.ts';

test('each add is its own subscription: the same function added twice is called twice, and each unsubscribe removes one', () => {
  const listeners = new Listeners<[jobId: string, endpoint: string]>();
  const heard: string[] = [];
  const listener = (jobId: string, endpoint: string) => void heard.push(`${endpoint}/${jobId}`);
  const first = listeners.add(listener);
  const second = listeners.add(listener);
  listeners.emit('a', 'tts');
  assert.deepEqual(heard, ['tts/a', 'tts/a']);
  assert.equal(listeners.size, 2);
  first();
  first();
  listeners.emit('b', 'echo');
  assert.deepEqual(heard, ['tts/a', 'tts/a', 'echo/b'], 'calling an unsubscribe twice removes nothing more');
  assert.equal(listeners.size, 1);
  second();
  listeners.emit('c', 'tts');
  assert.equal(heard.length, 3);
  assert.equal(listeners.size, 0);
});
