import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { readFrames, storedSize, writeFrames, type VideoProbe } from './frame-io.ts';
import type { RvmMatting } from './matting.ts';
import { encodePng, pngSize } from './png.ts';
import { FRAME_PATTERN, frameFile, readMeta, writeMeta, type ProjectMeta, type ProjectPaths } from './projects.ts';

/** The flat colour the preview composites the matted subject over (a chroma green). */
export const PREVIEW_BACKGROUND = [0, 177, 64] as const;

/** Reports one frame done in a stage. */
export type FrameProgress = (stage: 'ingest' | 'roto' | 'preview', frame: number, of: number) => void;

/** A stage that cannot run on what the project holds: the message says what to run first. */
export class StageOrderError extends Error {
  override name = 'StageOrderError' as const;
}

/**
 * Ingest: decodes the video to RGB frames (scaled to at most 512 px, resampled to `fps` when
 * given, at most `maxFrames`), writes them as `source/frames/00001.png…`, replacing earlier ones,
 * and records `project.json`.
 */
export async function ingest(
  paths: ProjectPaths,
  video: { file: string; source: string; probe: VideoProbe },
  options: { fps?: number | undefined; maxFrames: number },
  progress: FrameProgress,
  signal: AbortSignal,
): Promise<ProjectMeta> {
  const { width, height } = storedSize(video.probe.width, video.probe.height);
  const fps = options.fps ?? video.probe.fps;
  // New frames make earlier mattes and previews stale.
  await Promise.all([paths.frames, paths.roto, paths.preview, paths.meta].map((p) => rm(p, { recursive: true, force: true })));
  await mkdir(paths.frames, { recursive: true });
  const filters = [...(options.fps === undefined ? [] : [`fps=${options.fps}`]), `scale=${width}:${height}`].join(',');
  const args = ['-i', video.file, '-vf', filters, '-frames:v', String(options.maxFrames), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
  // An estimate from the container's duration; the exact count is only known when ffmpeg ends.
  const expected = video.probe.durationS === undefined ? options.maxFrames : Math.min(options.maxFrames, Math.max(1, Math.round(video.probe.durationS * fps)));
  let frames = 0;
  for await (const rgb of readFrames(args, width * height * 3, signal)) {
    frames++;
    await writeFile(path.join(paths.frames, frameFile(frames)), encodePng(rgb, width, height, 3));
    progress('ingest', frames, Math.max(frames, expected));
  }
  if (frames === 0) throw new StageOrderError('ingest: the video decoded to no frames');
  const meta: ProjectMeta = { width, height, fps, frames, source: video.source };
  await writeMeta(paths, meta);
  return meta;
}

/** The ingested frames' metadata; throws {@link StageOrderError} when the project has none. */
export async function ingestedFrames(paths: ProjectPaths, stage: string): Promise<ProjectMeta> {
  const meta = await readMeta(paths);
  const files = (await readdir(paths.frames).catch(() => [] as string[])).filter((f) => f.endsWith('.png'));
  if (!meta || files.length === 0) throw new StageOrderError(`${stage}: the project has no ingested frames; run the "ingest" stage first (with a video)`);
  if (files.length !== meta.frames) throw new StageOrderError(`${stage}: source/frames holds ${files.length} frames but project.json says ${meta.frames}; run "ingest" again`);
  return meta;
}

/**
 * Roto: runs Robust Video Matting over the frames in order (its recurrent state carried from one
 * frame to the next) and writes one greyscale alpha matte per frame to `roto/00001.png…`.
 * Returns the mean alpha over all pixels of all frames (0…1).
 */
export async function roto(paths: ProjectPaths, meta: ProjectMeta, rvm: RvmMatting, progress: FrameProgress, signal: AbortSignal): Promise<number> {
  await rm(paths.roto, { recursive: true, force: true });
  await mkdir(paths.roto, { recursive: true });
  const size = pngSize(await readFile(path.join(paths.frames, frameFile(1))));
  if (!size || size.width !== meta.width || size.height !== meta.height) throw new StageOrderError('roto: source/frames/00001.png does not match project.json; run "ingest" again');
  const clip = rvm.startClip();
  let index = 0;
  let alphaSum = 0;
  try {
    for await (const rgb of readFrames(sequenceArgs(paths.frames, 'rgb24'), meta.width * meta.height * 3, signal)) {
      index++;
      const matte = await clip.matte(rgb, meta.width, meta.height);
      for (const a of matte) alphaSum += a;
      await writeFile(path.join(paths.roto, frameFile(index)), encodePng(matte, meta.width, meta.height, 1));
      progress('roto', index, meta.frames);
      // Inference is synchronous wasm: give pings and job-stop a turn between frames.
      await yieldToLoop();
      signal.throwIfAborted();
    }
  } finally {
    clip.dispose();
  }
  return alphaSum / 255 / (meta.width * meta.height * Math.max(1, index));
}

/**
 * Preview: composites each frame over {@link PREVIEW_BACKGROUND} through its matte and encodes
 * the result as an H.264 `preview.mp4` at the project's frame rate.
 */
export async function preview(paths: ProjectPaths, meta: ProjectMeta, progress: FrameProgress, signal: AbortSignal): Promise<void> {
  const mattes = (await readdir(paths.roto).catch(() => [] as string[])).filter((f) => f.endsWith('.png'));
  if (mattes.length !== meta.frames) throw new StageOrderError(`preview: roto holds ${mattes.length} mattes for ${meta.frames} frames; run the "roto" stage first`);
  const { width, height } = meta;
  const frames = readFrames(sequenceArgs(paths.frames, 'rgb24'), width * height * 3, signal);
  const alphas = readFrames(sequenceArgs(paths.roto, 'gray'), width * height, signal);
  async function* composited(): AsyncGenerator<Uint8Array> {
    let index = 0;
    for await (const rgb of frames) {
      const next = await alphas.next();
      if (next.done) throw new StageOrderError(`preview: roto ran out of mattes at frame ${index + 1}`);
      const alpha = next.value;
      const out = new Uint8Array(rgb.length);
      for (let p = 0; p < alpha.length; p++) {
        const a = alpha[p]! / 255;
        for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round(rgb[p * 3 + c]! * a + PREVIEW_BACKGROUND[c]! * (1 - a));
      }
      index++;
      yield out;
      progress('preview', index, meta.frames);
    }
  }
  const partial = `${paths.preview}.part`;
  try {
    await writeFrames(
      ['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(meta.fps), '-i', 'pipe:0', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', '-f', 'mp4', '-y', partial],
      composited(),
      signal,
    );
  } finally {
    await alphas.return(undefined);
  }
  await rename(partial, paths.preview);
}

function sequenceArgs(folder: string, pixFmt: 'rgb24' | 'gray'): string[] {
  return ['-f', 'image2', '-start_number', '1', '-i', path.join(folder, FRAME_PATTERN), '-f', 'rawvideo', '-pix_fmt', pixFmt, 'pipe:1'];
}
