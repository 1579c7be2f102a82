import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFfmpeg } from '@kiln/example-avatar/src/ffmpeg.ts';
import { encodePng, pngSize } from './png.ts';

test('RGB and greyscale PNGs decode back to the same pixels with ffmpeg', async () => {
  const [width, height] = [7, 5];
  const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37) % 256);
  const gray = Uint8Array.from({ length: width * height }, (_, i) => (i * 11) % 256);
  for (const [pixels, channels, pixFmt] of [[rgb, 3, 'rgb24'], [gray, 1, 'gray']] as const) {
    const png = encodePng(pixels, width, height, channels);
    assert.deepEqual(pngSize(png), { width, height });
    const { stdout } = await runFfmpeg(['-f', 'png_pipe', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', pixFmt, 'pipe:1'], { stdin: png });
    assert.deepEqual(new Uint8Array(stdout), pixels);
  }
});

test('encodePng refuses a buffer of the wrong size; pngSize refuses what is not a PNG', () => {
  assert.throws(() => encodePng(new Uint8Array(10), 2, 2, 3), /expected 12 bytes for 2×2×3, got 10/);
  assert.equal(pngSize(Buffer.from('GIF89a and then some bytes')), undefined);
});
