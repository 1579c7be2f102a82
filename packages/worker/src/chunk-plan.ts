/**
 * Planning long generations in overlapping chunks, as video diffusion models (Wan-style VAEs that
 * compress time by 4) produce them: each chunk re-generates the last `overlapFrames` of the one
 * before, and the two versions are cross-faded there. Pure functions, no I/O.
 */

/** One chunk of a plan: frames `[start, end)` of the whole sequence. */
export interface ChunkSpan {
  readonly index: number;
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
  /** Frames at the start of this chunk that the previous chunk also covers (0 for the first chunk). */
  readonly overlapBefore: number;
}

/** What {@link planChunks} needs. */
export interface ChunkPlanOptions {
  /** Frames in the whole sequence (≥ 0). */
  readonly totalFrames: number;
  /** Frames per chunk (> `overlapFrames`). */
  readonly chunkFrames: number;
  /** Frames shared by consecutive chunks: 1 + 4n. */
  readonly overlapFrames: number;
}

/** Whether `n` is a valid overlap: 1 + 4n frames (1, 5, 9, 13, …), one latent frame plus whole groups of 4. */
export function isValidOverlap(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && (n - 1) % 4 === 0;
}

/**
 * The valid overlaps nearest to `n`: one value when `n` is valid, or when only one valid value is
 * nearest from below 1; otherwise the valid value just under and just over `n`.
 *
 * @example
 * nearestValidOverlaps(6); // [5, 9]
 * nearestValidOverlaps(0); // [1]
 */
export function nearestValidOverlaps(n: number): number[] {
  if (isValidOverlap(n)) return [n];
  if (!(n > 1)) return [1];
  const below = 1 + 4 * Math.floor((n - 1) / 4);
  return [below, below + 4];
}

/** The sentence every refusal of an overlap uses, so a caller's error says the rule and the fix. */
export function overlapRuleMessage(name: string, n: number): string {
  const nearest = nearestValidOverlaps(n);
  return `${name} must be 1 + 4n (1, 5, 9, 13, …); ${String(n)} is not: the nearest valid ${nearest.length === 1 ? `value is ${nearest[0]}` : `values are ${nearest.join(' and ')}`}`;
}

/**
 * Cuts `totalFrames` into chunks of `chunkFrames` whose consecutive members share `overlapFrames`.
 * Each chunk starts `chunkFrames - overlapFrames` after the one before; the last one is cut short at
 * the end of the sequence, and a chunk that would add no frame beyond the overlap is not planned.
 * Throws a RangeError (with {@link overlapRuleMessage} for a bad overlap) on invalid options.
 *
 * @example
 * planChunks({ totalFrames: 70, chunkFrames: 33, overlapFrames: 5 });
 * // [{ index: 0, start: 0, end: 33, overlapBefore: 0 }, { index: 1, start: 28, end: 61, overlapBefore: 5 },
 * //  { index: 2, start: 56, end: 70, overlapBefore: 5 }]
 */
export function planChunks(options: ChunkPlanOptions): ChunkSpan[] {
  const { totalFrames, chunkFrames, overlapFrames } = options;
  if (!Number.isInteger(totalFrames) || totalFrames < 0) throw new RangeError(`totalFrames must be a whole number ≥ 0, not ${String(totalFrames)}`);
  if (!isValidOverlap(overlapFrames)) throw new RangeError(overlapRuleMessage('overlapFrames', overlapFrames));
  if (!Number.isInteger(chunkFrames) || chunkFrames <= overlapFrames) {
    throw new RangeError(`chunkFrames must be a whole number greater than overlapFrames (${overlapFrames}), not ${String(chunkFrames)}`);
  }
  const stride = chunkFrames - overlapFrames;
  const chunks: ChunkSpan[] = [];
  // A later chunk is worth planning only if it reaches past the frames it shares with the one before.
  for (let start = 0; start < totalFrames && (start === 0 || start + overlapFrames < totalFrames); start += stride) {
    chunks.push({ index: chunks.length, start, end: Math.min(start + chunkFrames, totalFrames), overlapBefore: start === 0 ? 0 : overlapFrames });
  }
  return chunks;
}

/**
 * The cross-fade weight of the newer chunk at position `i` (0-based) of an overlap of `length`
 * frames: rises linearly and never reaches 0 or 1, so both versions contribute to every shared frame.
 * The older chunk's weight is `1 - overlapWeight(i, length)`.
 */
export function overlapWeight(i: number, length: number): number {
  if (!Number.isInteger(i) || i < 0 || i >= length) throw new RangeError(`overlap position ${String(i)} is outside 0…${length - 1}`);
  return (i + 1) / (length + 1);
}
