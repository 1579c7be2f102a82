import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { runFfmpeg } from './ffmpeg.ts';

/** The sample rate silero VAD and the loudness measure work at. */
export const ANALYSIS_RATE = 16_000;

/** Largest side of the rendered video; larger reference images are scaled down to it. */
export const MAX_SIDE = 512;

/** An input the worker cannot use: the message says which field and why. */
export class MediaInputError extends Error {
  override name = 'MediaInputError' as const;
  readonly field: string;
  constructor(field: string, message: string, options?: ErrorOptions) {
    super(`${field}: ${message}`, options);
    this.field = field;
  }
}

/** A decoded reference image: RGB24 rows, top to bottom. */
export interface RgbImage {
  width: number;
  height: number;
  pixels: Uint8Array;
}

/** Mono audio at {@link ANALYSIS_RATE}. */
export interface AnalysisAudio {
  samples: Float32Array;
  durationS: number;
}

/**
 * The bytes of a `data:` URL or of base64, or undefined for anything else. Base64 is told from a
 * path by its alphabet and length: a path has a dot or a slash-separated name, and is short.
 */
export function inlineBytes(value: string): Buffer | undefined {
  const dataUrl = /^data:[^,]*;base64,/.exec(value);
  if (dataUrl) return Buffer.from(value.slice(dataUrl[0].length), 'base64');
  if (value.length >= 256 && /^[A-Za-z0-9+/=\s_-]+$/.test(value)) return Buffer.from(value, 'base64');
  return undefined;
}

/** `value` as a path inside `dir` (absolute, and relative to `dir`); undefined when it leaves `dir` or is `dir` itself. */
export function pathInside(dir: string, value: string): { resolved: string; relative: string } | undefined {
  const resolved = path.resolve(dir, value);
  const relative = path.relative(dir, resolved);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  return { resolved, relative };
}

/** The bytes an input field names: a `data:` URL, base64, or a path relative to `cwd` that must stay inside it. */
export async function readMediaField(field: string, value: string, cwd: string): Promise<Buffer> {
  const trimmed = value.trim();
  const inline = inlineBytes(trimmed);
  if (inline) return inline;
  const inside = pathInside(cwd, trimmed);
  if (!inside) throw new MediaInputError(field, `must be base64 or a path inside the worker's folder (${cwd}); ${JSON.stringify(trimmed.slice(0, 80))} is neither`);
  try {
    return await readFile(inside.resolved);
  } catch (err) {
    throw new MediaInputError(field, `cannot read ${inside.relative}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

/** Which image format the bytes start with, if one this worker takes. */
export function imageKind(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  if (bytes.length >= 8 && Buffer.from(bytes.subarray(0, 8)).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

/**
 * Decodes a PNG or JPEG to RGB24, scaled down (aspect kept) so that neither side exceeds
 * {@link MAX_SIDE}, with even sides as H.264 in 4:2:0 needs.
 */
export async function decodeImage(bytes: Uint8Array, signal: AbortSignal): Promise<RgbImage> {
  const kind = imageKind(bytes);
  if (!kind) throw new MediaInputError('image', `is not a PNG or JPEG (it starts with ${Buffer.from(bytes.subarray(0, 8)).toString('hex') || 'nothing'})`);
  const scale = `scale=w='2*trunc(min(${MAX_SIDE},iw*min(1,${MAX_SIDE}/max(iw,ih)))/2)':h='2*trunc(min(${MAX_SIDE},ih*min(1,${MAX_SIDE}/max(iw,ih)))/2)'`;
  let result;
  try {
    result = await runFfmpeg(['-f', kind === 'png' ? 'png_pipe' : 'jpeg_pipe', '-i', 'pipe:0', '-vf', scale, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { stdin: bytes, signal });
  } catch (err) {
    signal.throwIfAborted();
    throw new MediaInputError('image', `could not be decoded as ${kind.toUpperCase()}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const output = result.stderr.slice(result.stderr.indexOf('Output #0'));
  const size = /Video: rawvideo[^\n]*?, (\d+)x(\d+)/.exec(output);
  if (!size) throw new MediaInputError('image', 'decoded to no frame');
  const [width, height] = [Number(size[1]), Number(size[2])];
  if (width < 16 || height < 16) throw new MediaInputError('image', `is ${width}×${height}; at least 16×16 pixels are needed`);
  if (result.stdout.length !== width * height * 3) throw new MediaInputError('image', `decoded to ${result.stdout.length} bytes, not ${width}×${height}×3`);
  return { width, height, pixels: new Uint8Array(result.stdout.buffer, result.stdout.byteOffset, result.stdout.length) };
}

/** Whether the bytes are a RIFF/WAVE file. */
export function isWav(bytes: Uint8Array): boolean {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WAVE';
}

/** Decodes a WAV (any rate, channels, PCM or float) to mono float samples at {@link ANALYSIS_RATE}. */
export async function decodeAudio(bytes: Uint8Array, signal: AbortSignal): Promise<AnalysisAudio> {
  if (!isWav(bytes)) throw new MediaInputError('audio', `is not a WAV file (no RIFF/WAVE header; it starts with ${Buffer.from(bytes.subarray(0, 12)).toString('hex') || 'nothing'})`);
  let result;
  try {
    result = await runFfmpeg(['-f', 'wav', '-i', 'pipe:0', '-ac', '1', '-ar', String(ANALYSIS_RATE), '-f', 'f32le', 'pipe:1'], { stdin: bytes, signal });
  } catch (err) {
    signal.throwIfAborted();
    throw new MediaInputError('audio', `could not be decoded as WAV: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const samples = new Float32Array(result.stdout.length / 4);
  Buffer.from(samples.buffer).set(result.stdout.subarray(0, samples.length * 4));
  if (samples.length === 0) throw new MediaInputError('audio', 'holds no samples');
  return { samples, durationS: samples.length / ANALYSIS_RATE };
}
