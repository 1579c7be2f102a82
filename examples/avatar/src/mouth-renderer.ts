import { overlapWeight, type ChunkSpan } from '@kiln/worker';
import type { RgbImage } from './media-input.ts';
import type { FrameActivity } from './speech-activity.ts';

/** Where the mouth is, as fractions of the image: centre `x`, `y` and the open mouth's `width`, `height`. */
export interface MouthBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A centred face filling the picture: the mouth a quarter of the width, 72% of the way down. */
export const DEFAULT_MOUTH: MouthBox = { x: 0.5, y: 0.72, width: 0.26, height: 0.12 };

/** Colour of the open mouth's inside. */
const MOUTH_RGB = [58, 14, 22] as const;

/** Per-frame smoothing towards the target opening: mouths open faster than they close. */
const ATTACK = 0.6;
const RELEASE = 0.35;

/**
 * How open the mouth is (0…1) on each frame of one chunk: speech probability × loudness, smoothed
 * within the chunk only. Like a chunk of a video model, a chunk knows nothing of the frames before
 * it, so two chunks disagree a little where they overlap; the cross-fade hides that seam.
 */
export function chunkOpenness(activity: FrameActivity, span: ChunkSpan): Float32Array {
  const out = new Float32Array(span.end - span.start);
  let open = activity.speech[span.start]! * activity.loudness[span.start]!;
  for (let f = span.start; f < span.end; f++) {
    const target = activity.speech[f]! * activity.loudness[f]!;
    open += (target > open ? ATTACK : RELEASE) * (target - open);
    out[f - span.start] = open;
  }
  return out;
}

/** The reference image with the mouth drawn `openness` open (0 leaves the image as it is). */
export function renderFrame(reference: RgbImage, mouth: MouthBox, openness: number): Uint8Array {
  const { width, height } = reference;
  const frame = new Uint8Array(reference.pixels);
  const a = (mouth.width * width) / 2;
  const b = (openness * mouth.height * height) / 2;
  if (b < 0.25 || a < 0.5) return frame;
  const cx = mouth.x * width;
  const cy = mouth.y * height;
  const x0 = Math.max(0, Math.floor(cx - a - 1));
  const x1 = Math.min(width - 1, Math.ceil(cx + a + 1));
  const y0 = Math.max(0, Math.floor(cy - b - 1));
  const y1 = Math.min(height - 1, Math.ceil(cy + b + 1));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const dx = (x + 0.5 - cx) / a;
      const dy = (y + 0.5 - cy) / b;
      // Distance past the ellipse's edge in pixels along the narrow axis gives a one-pixel soft edge.
      const alpha = Math.min(1, Math.max(0, (1 - Math.sqrt(dx * dx + dy * dy)) * Math.min(a, b) + 0.5));
      if (alpha === 0) continue;
      const i = (y * width + x) * 3;
      for (let ch = 0; ch < 3; ch++) frame[i + ch] = Math.round(frame[i + ch]! * (1 - alpha) + MOUTH_RGB[ch]! * alpha);
    }
  }
  return frame;
}

/** Cross-fades the older chunk's version of an overlap frame with the newer one's, in place in `older`. */
export function blendFrames(older: Uint8Array, newer: Uint8Array, positionInOverlap: number, overlapLength: number): Uint8Array {
  const w = overlapWeight(positionInOverlap, overlapLength);
  for (let i = 0; i < older.length; i++) older[i] = Math.round(older[i]! * (1 - w) + newer[i]! * w);
  return older;
}
