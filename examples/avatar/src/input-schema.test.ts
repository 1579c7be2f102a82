// The avatar worker describes its input (KILN_DESCRIBE=1) for the dashboard's Run form; the
// overlap rules (code-only checks) are left out of the schema but still validate jobs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeInput } from '@kiln/worker';
import worker, { AvatarInput, FPS } from './worker.ts';

test('avatar describes its input: image and audio required, the rest with their defaults', () => {
  const { input, note } = describeInput(worker);
  assert.equal(note, undefined);
  assert.deepEqual(input?.['required'], ['image', 'audio']);
  const properties = input?.['properties'] as Record<string, Record<string, unknown>>;
  assert.deepEqual(properties['fps'], { const: FPS, title: 'FPS', default: FPS });
  assert.equal(properties['chunkFrames']?.['default'], 33);
  assert.equal(properties['overlapFrames']?.['default'], 5);
  assert.deepEqual(Object.keys(properties['mouth']?.['properties'] as Record<string, unknown>), ['x', 'y', 'width', 'height']);
});

test('overlapFrames must still be smaller than chunkFrames', async () => {
  const result = await AvatarInput['~standard'].validate({ image: 'i', audio: 'a', chunkFrames: 5, overlapFrames: 5 });
  assert.match(result.issues?.map((i) => i.message).join('\n') ?? '', /overlapFrames \(5\) must be smaller than chunkFrames \(5\)/);
});
