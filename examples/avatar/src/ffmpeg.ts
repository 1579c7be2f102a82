import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The ffmpeg binary shipped inside `@ffmpeg-installer/linux-x64` (a static 4.1 build with libx264 and aac). */
export const FFMPEG_PATH = path.join(path.dirname(createRequire(import.meta.url).resolve('@ffmpeg-installer/linux-x64/package.json')), 'ffmpeg');

/** ffmpeg exited non-zero: its exit code and the tail of what it printed. */
export class FfmpegError extends Error {
  override name = 'FfmpegError' as const;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(message: string, exitCode: number | null, stderr: string, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** What a finished ffmpeg run printed. */
export interface FfmpegResult {
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs ffmpeg to completion with `args`, feeding `stdin` if given, and collects stdout.
 * Killed when `signal` aborts (the promise then rejects with the signal's reason).
 */
export async function runFfmpeg(args: readonly string[], options: { stdin?: Uint8Array; signal?: AbortSignal } = {}): Promise<FfmpegResult> {
  const child = startFfmpeg(args, options.signal);
  const out: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  const done = waitForExit(child, options.signal);
  // An ffmpeg that refuses its input may close stdin before reading it all: EPIPE is then expected.
  child.stdin.on('error', () => {});
  child.stdin.end(options.stdin ?? Buffer.alloc(0));
  const stderr = await done;
  return { stdout: Buffer.concat(out), stderr };
}

/**
 * Encodes raw RGB24 frames into an H.264 mp4 with an audio file muxed back as AAC. Write each
 * frame with {@link VideoEncoder.write} (it waits for ffmpeg when its pipe is full), then
 * {@link VideoEncoder.finish}. The encoder dies with `signal`.
 *
 * @example
 * const encoder = new VideoEncoder({ width, height, fps: 25, audioFile, outFile, signal });
 * for (const frame of frames) await encoder.write(frame);
 * await encoder.finish();
 */
export class VideoEncoder {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #exit: Promise<string>;
  readonly #frameBytes: number;

  constructor(options: { width: number; height: number; fps: number; audioFile: string; outFile: string; signal?: AbortSignal }) {
    const { width, height, fps, audioFile, outFile } = options;
    this.#frameBytes = width * height * 3;
    this.#child = startFfmpeg(
      [
        '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(fps), '-i', 'pipe:0',
        '-i', audioFile,
        '-map', '0:v:0', '-map', '1:a:0',
        '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '18', '-pix_fmt', 'yuv420p',
        '-c:a', 'aac', '-b:a', '128k',
        '-movflags', '+faststart',
        '-y', outFile,
      ],
      options.signal,
    );
    this.#child.stdin.on('error', () => {});
    this.#exit = waitForExit(this.#child, options.signal);
    // Keep a rejection from being unhandled while frames are still being written; finish() reports it.
    this.#exit.catch(() => {});
  }

  /** Sends one frame (exactly width × height × 3 bytes). */
  async write(frame: Uint8Array): Promise<void> {
    if (frame.length !== this.#frameBytes) throw new RangeError(`a frame must be ${this.#frameBytes} bytes, not ${frame.length}`);
    if (!this.#child.stdin.write(frame)) await Promise.race([once(this.#child.stdin, 'drain'), this.#exit]);
  }

  /** Closes the frame pipe and waits for ffmpeg to write the file; returns what it printed. */
  async finish(): Promise<string> {
    this.#child.stdin.end();
    return this.#exit;
  }
}

/** Spawns ffmpeg with `args` and all three pipes open; it is killed when `signal` aborts. Pair it with {@link waitForExit}. */
export function startFfmpeg(args: readonly string[], signal: AbortSignal | undefined): ChildProcessWithoutNullStreams {
  signal?.throwIfAborted();
  return spawn(FFMPEG_PATH, ['-hide_banner', '-nostdin', ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...(signal ? { signal, killSignal: 'SIGKILL' } : {}) });
}

/** Resolves with stderr on exit 0; rejects with an FfmpegError otherwise, or with the abort reason. */
export function waitForExit(child: ChildProcessWithoutNullStreams, signal: AbortSignal | undefined): Promise<string> {
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    // Only the tail matters for an error message; a long encode prints a status line per second.
    stderr = (stderr + d).slice(-20_000);
  });
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      if (signal?.aborted) reject(signal.reason);
      else reject(new FfmpegError(`ffmpeg could not run: ${err.message}`, null, stderr, { cause: err }));
    });
    child.on('close', (code) => {
      if (signal?.aborted) return reject(signal.reason);
      if (code === 0) return resolve(stderr);
      const last = stderr.trim().split('\n').slice(-3).join(' | ');
      reject(new FfmpegError(`ffmpeg exited with code ${String(code)}: ${last}`, code, stderr));
    });
  });
}
