import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isValidOverlap, nearestValidOverlaps, overlapRuleMessage, overlapWeight, planChunks } from './chunk-plan.ts';

test('valid overlaps are 1 + 4n', () => {
  assert.deepEqual([0, 1, 2, 4, 5, 6, 9, 13, 14, -3, 5.5].map(isValidOverlap), [false, true, false, false, true, false, true, true, false, false, false]);
});

test('the nearest valid overlaps bracket a bad value', () => {
  assert.deepEqual(nearestValidOverlaps(6), [5, 9]);
  assert.deepEqual(nearestValidOverlaps(8), [5, 9]);
  assert.deepEqual(nearestValidOverlaps(9), [9]);
  assert.deepEqual(nearestValidOverlaps(0), [1]);
  assert.deepEqual(nearestValidOverlaps(2), [1, 5]);
  assert.equal(overlapRuleMessage('overlapFrames', 6), 'overlapFrames must be 1 + 4n (1, 5, 9, 13, …); 6 is not: the nearest valid values are 5 and 9');
  assert.equal(overlapRuleMessage('overlapFrames', 0), 'overlapFrames must be 1 + 4n (1, 5, 9, 13, …); 0 is not: the nearest valid value is 1');
});

test('chunks advance by chunk − overlap, share exactly the overlap, and the last one ends at the sequence end', () => {
  const plan = planChunks({ totalFrames: 70, chunkFrames: 33, overlapFrames: 5 });
  assert.deepEqual(plan, [
    { index: 0, start: 0, end: 33, overlapBefore: 0 },
    { index: 1, start: 28, end: 61, overlapBefore: 5 },
    { index: 2, start: 56, end: 70, overlapBefore: 5 },
  ]);
});

test('every frame is covered, in order, and no chunk adds nothing beyond its overlap', () => {
  for (const overlapFrames of [1, 5, 9, 13]) {
    for (const chunkFrames of [overlapFrames + 1, 17, 33, 81].filter((c) => c > overlapFrames)) {
      for (let totalFrames = 0; totalFrames <= 200; totalFrames++) {
        const plan = planChunks({ totalFrames, chunkFrames, overlapFrames });
        const covered = new Set<number>();
        for (const [i, c] of plan.entries()) {
          assert.equal(c.index, i);
          assert.ok(c.end - c.start <= chunkFrames);
          assert.ok(c.end - c.start > c.overlapBefore, 'each chunk brings new frames');
          if (i > 0) assert.equal(plan[i - 1]!.end - c.start, overlapFrames, 'consecutive chunks share the overlap');
          for (let f = c.start; f < c.end; f++) covered.add(f);
        }
        assert.equal(covered.size, totalFrames, `${totalFrames} frames in chunks of ${chunkFrames} / ${overlapFrames}`);
        assert.equal(plan.at(-1)?.end ?? 0, totalFrames);
      }
    }
  }
});

test('a sequence that fits in one chunk is one chunk; an empty one is none', () => {
  assert.deepEqual(planChunks({ totalFrames: 33, chunkFrames: 33, overlapFrames: 5 }), [{ index: 0, start: 0, end: 33, overlapBefore: 0 }]);
  assert.deepEqual(planChunks({ totalFrames: 10, chunkFrames: 33, overlapFrames: 5 }), [{ index: 0, start: 0, end: 10, overlapBefore: 0 }]);
  assert.deepEqual(planChunks({ totalFrames: 0, chunkFrames: 33, overlapFrames: 5 }), []);
});

test('bad options throw RangeErrors that say what to change', () => {
  assert.throws(() => planChunks({ totalFrames: 50, chunkFrames: 33, overlapFrames: 6 }), { name: 'RangeError', message: /overlapFrames must be 1 \+ 4n .* 5 and 9/ });
  assert.throws(() => planChunks({ totalFrames: 50, chunkFrames: 5, overlapFrames: 5 }), { name: 'RangeError', message: /chunkFrames must be a whole number greater than overlapFrames \(5\)/ });
  assert.throws(() => planChunks({ totalFrames: -1, chunkFrames: 33, overlapFrames: 5 }), { name: 'RangeError', message: /totalFrames/ });
});

test('cross-fade weights rise strictly inside (0, 1) and mirror each other', () => {
  const w = [0, 1, 2, 3, 4].map((i) => overlapWeight(i, 5));
  assert.deepEqual(w, [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]);
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(overlapWeight(i, 5) + overlapWeight(4 - i, 5) - 1) < 1e-12);
  assert.throws(() => overlapWeight(5, 5), RangeError);
});
