import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { inlineBytes, pathInside } from '@kiln/example-avatar/src/media-input.ts';
import { VideoInputError } from './frame-io.ts';

/** Largest video a job may send inline or by URL. */
export const MAX_VIDEO_BYTES = 256 * 1024 * 1024;

/** A video ready for ffmpeg: a file, and how the input named it. */
export interface VideoFile {
  file: string;
  source: string;
}

/**
 * Turns the `video` field into a file ffmpeg can open: an `http(s)` URL is downloaded, a `data:`
 * URL or base64 is decoded (both into `tmpDir`), anything else is a path inside the projects
 * volume `projectsDir`, which it may not leave.
 */
export async function resolveVideo(value: string, projectsDir: string, tmpDir: string, signal: AbortSignal): Promise<VideoFile> {
  const trimmed = value.trim();
  if (/^https?:\/\//i.test(trimmed)) {
    let res: Response;
    try {
      res = await fetch(trimmed, { signal });
    } catch (err) {
      signal.throwIfAborted();
      throw new VideoInputError(`video: cannot fetch ${trimmed}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (!res.ok) throw new VideoInputError(`video: ${trimmed} answered HTTP ${res.status}`);
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_VIDEO_BYTES) throw new VideoInputError(`video: ${trimmed} is ${length} bytes; at most ${MAX_VIDEO_BYTES} are allowed`);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (bytes.length > MAX_VIDEO_BYTES) throw new VideoInputError(`video: ${trimmed} is ${bytes.length} bytes; at most ${MAX_VIDEO_BYTES} are allowed`);
    return { file: await save(tmpDir, bytes), source: 'url' };
  }
  const inline = inlineBytes(trimmed);
  if (inline) {
    if (inline.length > MAX_VIDEO_BYTES) throw new VideoInputError(`video: ${inline.length} bytes inline; at most ${MAX_VIDEO_BYTES} are allowed`);
    return { file: await save(tmpDir, inline), source: 'base64' };
  }
  const inside = pathInside(projectsDir, trimmed);
  if (!inside) {
    throw new VideoInputError(`video: must be an http(s) URL, base64, or a path inside the projects volume; ${JSON.stringify(trimmed.slice(0, 80))} is none of these`);
  }
  const { resolved, relative } = inside;
  const info = await stat(resolved).catch((err: NodeJS.ErrnoException) => {
    throw new VideoInputError(`video: cannot read ${relative} on the projects volume: ${err.code ?? String(err)}`, { cause: err });
  });
  if (!info.isFile()) throw new VideoInputError(`video: ${relative} on the projects volume is not a file`);
  return { file: resolved, source: `volume:${relative}` };
}

async function save(tmpDir: string, bytes: Buffer): Promise<string> {
  const file = path.join(tmpDir, 'input-video');
  await writeFile(file, bytes);
  return file;
}
