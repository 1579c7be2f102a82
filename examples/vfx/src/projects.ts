import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A project name: a single folder name, so it cannot reach outside the projects volume. */
export const PROJECT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Why a project name is refused, or undefined when it is safe. */
export function projectNameProblem(name: string): string | undefined {
  if (PROJECT_NAME_PATTERN.test(name) && !name.includes('..')) return undefined;
  return `name must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit, with no slashes and no ".."; ${JSON.stringify(name.slice(0, 80))} is not`;
}

/** `get_status` or a later stage named a project the volume does not hold. */
export class ProjectNotFoundError extends Error {
  override name = 'ProjectNotFoundError' as const;
  readonly project: string;
  constructor(project: string, projectsDir: string) {
    super(`no project named ${JSON.stringify(project)} on the projects volume (${projectsDir}); process_video with the "ingest" stage creates it`);
    this.project = project;
  }
}

/** The folders a project's outputs go to, relative to the project folder, as the seed's `collect_outputs` lists them. */
export const OUTPUT_FOLDERS = ['source/frames', 'roto'] as const;

/** Where one project's files are. */
export interface ProjectPaths {
  dir: string;
  frames: string;
  roto: string;
  preview: string;
  /** `project.json`: what ingest decoded (size, rate, frame count). */
  meta: string;
}

/** The paths of project `name` under the projects volume `root`. */
export function projectPaths(root: string, name: string): ProjectPaths {
  const dir = path.join(root, name);
  return { dir, frames: path.join(dir, 'source/frames'), roto: path.join(dir, 'roto'), preview: path.join(dir, 'preview.mp4'), meta: path.join(dir, 'project.json') };
}

/** What ingest recorded about a project's frames. */
export interface ProjectMeta {
  width: number;
  height: number;
  fps: number;
  frames: number;
  /** Where the video came from: `url`, `base64` or `volume:<path>`. */
  source: string;
}

/** Writes `project.json`. */
export async function writeMeta(paths: ProjectPaths, meta: ProjectMeta): Promise<void> {
  await writeFile(paths.meta, `${JSON.stringify(meta, null, 2)}\n`);
}

/** Reads `project.json`, or undefined when the project was never ingested. */
export async function readMeta(paths: ProjectPaths): Promise<ProjectMeta | undefined> {
  try {
    return JSON.parse(await readFile(paths.meta, 'utf8')) as ProjectMeta;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Files in one output folder and their total size in bytes. */
export interface FolderStats {
  count: number;
  bytes: number;
}

/** Counts the regular files directly in `dir` and adds up their sizes; undefined when the folder does not exist. */
export async function folderStats(dir: string): Promise<FolderStats | undefined> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const files = entries.filter((e) => e.isFile());
  const sizes = await Promise.all(files.map(async (e) => (await stat(path.join(dir, e.name))).size));
  return { count: files.length, bytes: sizes.reduce((a, b) => a + b, 0) };
}

/** What is on the volume for a project: each output folder that exists with its count and size, and the preview's size. */
export interface ProjectOutputs {
  outputs: Partial<Record<(typeof OUTPUT_FOLDERS)[number], FolderStats>>;
  preview?: { path: 'preview.mp4'; bytes: number };
}

/** Lists a project's outputs as they are on disk now. */
export async function collectOutputs(paths: ProjectPaths): Promise<ProjectOutputs> {
  const outputs: ProjectOutputs['outputs'] = {};
  for (const folder of OUTPUT_FOLDERS) {
    const stats = await folderStats(path.join(paths.dir, folder));
    if (stats) outputs[folder] = stats;
  }
  const preview = await stat(paths.preview).catch(() => undefined);
  return { outputs, ...(preview?.isFile() ? { preview: { path: 'preview.mp4' as const, bytes: preview.size } } : {}) };
}

/** The file name of frame `index` (1-based), as ingest and roto write them and ffmpeg's image2 demuxer reads them back. */
export function frameFile(index: number): string {
  return `${String(index).padStart(5, '0')}.png`;
}

/** The image2 pattern matching {@link frameFile}. */
export const FRAME_PATTERN = '%05d.png';
