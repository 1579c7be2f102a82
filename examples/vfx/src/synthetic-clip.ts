/**
 * A made-up shot for tests, the bench and `test_input.json`: a figure (head, neck, torso) sliding
 * right across a checkered backdrop, 6 px a frame. Frames are RGB24, `size` × `size`.
 */

/** The figure's skin and shirt colours, and the backdrop's two tiles. */
export const CLIP_COLOURS = { skin: [225, 180, 150], shirt: [40, 50, 140], tiles: [[60, 80, 110], [90, 120, 80]] } as const;

/** Which part of the figure covers pixel (x, y) in frame `frame` of a `size`² clip, if any. */
export function figureAt(x: number, y: number, frame: number, size: number): 'skin' | 'shirt' | undefined {
  // Drawn on a 192² canvas and scaled, so every size shows the same picture.
  const s = size / 192;
  const [u, v] = [x / s, y / s];
  const cx = 80 + 6 * frame;
  if (((u - cx) / 22) ** 2 + ((v - 52) / 27) ** 2 <= 1 || (Math.abs(u - cx) < 11 && v >= 72 && v <= 96)) return 'skin';
  if (v > 88 && ((u - cx) / 48) ** 2 + ((v - 160) / 72) ** 2 <= 1) return 'shirt';
  return undefined;
}

/** `frames` frames of the clip as one buffer of raw RGB24. */
export function syntheticClip(size: number, frames: number): Buffer {
  const raw = Buffer.alloc(size * size * 3 * frames);
  for (let f = 0; f < frames; f++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const part = figureAt(x, y, f, size);
        const colour = part === undefined ? CLIP_COLOURS.tiles[((x >> 4) + (y >> 4)) & 1]! : CLIP_COLOURS[part];
        raw.set(colour, ((f * size + y) * size + x) * 3);
      }
    }
  }
  return raw;
}
