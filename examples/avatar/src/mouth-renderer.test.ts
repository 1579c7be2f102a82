import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planChunks } from '@kiln/worker';
import { blendFrames, chunkOpenness, DEFAULT_MOUTH, renderFrame } from './mouth-renderer.ts';

const reference = { width: 40, height: 40, pixels: new Uint8Array(40 * 40 * 3).fill(200) };

test('a closed mouth leaves the reference image as it is; an open one darkens the mouth box only', () => {
  assert.deepEqual(renderFrame(reference, DEFAULT_MOUTH, 0), reference.pixels);
  const open = renderFrame(reference, DEFAULT_MOUTH, 1);
  const at = (x: number, y: number) => open[(y * 40 + x) * 3]!;
  assert.ok(at(20, Math.round(0.72 * 40)) < 80, 'the mouth centre is dark');
  assert.equal(at(2, 2), 200, 'far from the mouth nothing changes');
  assert.equal(reference.pixels[0], 200, 'the reference is not modified');
});

test('openness follows speech × loudness, opening faster than it closes, within each chunk only', () => {
  const speech = Float32Array.from([0, 1, 1, 1, 0, 0, 0, 0, 1, 1]);
  const loudness = new Float32Array(10).fill(1);
  const [first, second] = planChunks({ totalFrames: 10, chunkFrames: 6, overlapFrames: 1 });
  const a = chunkOpenness({ speech, loudness }, first!);
  assert.ok(a[1]! > 0.5 && a[3]! > a[1]!, 'opens while speech is heard');
  assert.ok(a[4]! < a[3]! && a[4]! > 0.3, 'closes gradually');
  const b = chunkOpenness({ speech, loudness }, second!);
  assert.equal(b.length, second!.end - second!.start);
  assert.notEqual(b[0], a[5], 'a chunk starts without the history of the one before: the overlap differs');
});

test('blending an overlap frame weighs the newer chunk more the later the frame', () => {
  const older = () => new Uint8Array([0, 0, 0]);
  const newer = new Uint8Array([120, 120, 120]);
  assert.deepEqual([...blendFrames(older(), newer, 0, 5)], [20, 20, 20]);
  assert.deepEqual([...blendFrames(older(), newer, 4, 5)], [100, 100, 100]);
});
