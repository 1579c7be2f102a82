import { once } from 'node:events';
import { FfmpegError, runFfmpeg, startFfmpeg, waitForExit } from '@kiln/example-avatar/src/ffmpeg.ts';

/** Largest side of the frames the pipeline stores; larger videos are scaled down to it. */
export const MAX_SIDE = 512;

/** What ffmpeg reports about a video's first video stream. */
export interface VideoProbe {
  width: number;
  height: number;
  /** Frames per second as ffmpeg reports them (`fps`, else `tbr`); 25 when it says neither. */
  fps: number;
  /** The container's duration in seconds, when it states one. */
  durationS?: number;
}

/** A video the pipeline cannot use: the message says why. */
export class VideoInputError extends Error {
  override name = 'VideoInputError' as const;
}

/** Reads a video's size and frame rate; throws {@link VideoInputError} when ffmpeg finds no video stream in it. */
export async function probeVideo(file: string, signal: AbortSignal): Promise<VideoProbe> {
  let stderr: string;
  try {
    // With no output ffmpeg prints the input's streams and exits 1; that is the expected path.
    stderr = (await runFfmpeg(['-i', file], { signal })).stderr;
  } catch (err) {
    signal.throwIfAborted();
    if (!(err instanceof FfmpegError)) throw err;
    stderr = err.stderr;
  }
  const stream = /Stream #\d+:\d+[^:]*: Video: [^\n]*/.exec(stderr)?.[0];
  const size = stream === undefined ? undefined : /, (\d{2,5})x(\d{2,5})/.exec(stream);
  if (!stream || !size) {
    const why = stderr.trim().split('\n').filter((line) => !/^\s*(built with|configuration:|lib\w+\s)/.test(line)).at(-1) ?? 'no output';
    throw new VideoInputError(`video: ffmpeg finds no video stream in it (${why.trim()})`);
  }
  const rate = /, (\d+(?:\.\d+)?) fps/.exec(stream) ?? /, (\d+(?:\.\d+)?) tbr/.exec(stream);
  const duration = /Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(stderr);
  const durationS = duration ? Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]) : undefined;
  return { width: Number(size[1]), height: Number(size[2]), fps: rate ? Number(rate[1]) : 25, ...(durationS ? { durationS } : {}) };
}

/** The stored frame size for a video: scaled down (aspect kept) to {@link MAX_SIDE}, even sides as H.264 in 4:2:0 needs. */
export function storedSize(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  return { width: Math.max(2, 2 * Math.floor((width * scale) / 2)), height: Math.max(2, 2 * Math.floor((height * scale) / 2)) };
}

/**
 * Runs ffmpeg with `args` (which must write raw frames to `pipe:1`) and yields one frame of
 * `frameBytes` at a time as ffmpeg produces them. ffmpeg is killed when `signal` aborts or when
 * the consumer stops early; a non-zero exit rejects with {@link FfmpegError}.
 */
export async function* readFrames(args: readonly string[], frameBytes: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const child = startFfmpeg(['-loglevel', 'error', ...args], signal);
  child.stdin.end();
  const exit = waitForExit(child, signal);
  exit.catch(() => {});
  let pending: Buffer = Buffer.alloc(0);
  try {
    for await (const data of child.stdout as AsyncIterable<Buffer>) {
      pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
      while (pending.length >= frameBytes) {
        yield Uint8Array.prototype.slice.call(pending, 0, frameBytes);
        pending = pending.subarray(frameBytes);
      }
    }
    await exit;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/**
 * Pipes raw frames into ffmpeg's stdin (`args` must read `pipe:0`), waiting on a full pipe, and
 * resolves when ffmpeg has written its output. Killed when `signal` aborts.
 */
export async function writeFrames(args: readonly string[], frames: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
  const child = startFfmpeg(['-loglevel', 'error', ...args], signal);
  // ffmpeg that gives up early closes stdin; its exit code then says why.
  child.stdin.on('error', () => {});
  child.stdout.resume();
  const exit = waitForExit(child, signal);
  exit.catch(() => {});
  try {
    for await (const frame of frames) {
      if (!child.stdin.write(frame)) await Promise.race([once(child.stdin, 'drain'), exit]);
    }
    child.stdin.end();
    await exit;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
