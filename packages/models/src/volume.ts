import { mkdir, readdir, readFile, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { canonicalJson, sameEntry, type ManifestEntry } from './manifest.ts';
import { writeFileAtomic, type LockedFile } from './lockfile.ts';
import { checkModelName, resolveInside, unsafeReason } from './safe-path.ts';

/**
 * The layout of a volume, the same locally and on RunPod:
 *
 *     <volume>/<model>/<files…>             what ensure() returns: the model's folder
 *     <volume>/<model>/<file>.part          a download in progress (resumable)
 *     <volume>/.kiln/models/<model>.json    what is installed and verified (a VolumeRecord)
 *     <volume>/.kiln/locks/<model>.lock     the cross-process lock while a model is being written
 */
export const KILN_DIR = '.kiln';
/** Suffix of a file being downloaded. */
export const PART_SUFFIX = '.part';

/** A file as installed: its digest, and the size and mtime it had right after it was verified. */
export interface InstalledFile extends LockedFile {
  /** Modification time (ms, truncated) right after verification: a different one means "changed since". */
  readonly mtimeMs: number;
}

/** What a volume holds for one model, kept in `.kiln/models/<model>.json`. */
export interface VolumeRecord {
  readonly recordVersion: 1;
  readonly model: string;
  readonly entry: ManifestEntry;
  readonly revision?: string;
  /** Every file of the resolution is in `files` (false while a pull is under way or was cut). */
  readonly complete: boolean;
  readonly files: readonly InstalledFile[];
  readonly updatedAt: string;
}

/** The state of a model on a volume, as `kiln models ls` shows it. */
export type ModelState = 'missing' | 'partial' | 'verified' | 'modified';

/** The state of one expected file. */
export type FileState = 'missing' | 'partial' | 'verified' | 'modified';

/** One file of a model, as found on the volume. */
export interface FileStatus {
  readonly path: string;
  readonly state: FileState;
  /** Expected size (from kiln.lock or the volume record). */
  readonly size: number;
  /** Bytes on the volume (the file, or its `.part`). */
  readonly bytesPresent: number;
}

/** One model on a volume. */
export interface ModelStatus {
  readonly model: string;
  readonly state: ModelState;
  /** The model's folder. */
  readonly path: string;
  /** Hugging Face commit, when known. */
  readonly revision: string | undefined;
  /** Every expected file; empty when nothing says what to expect (never pulled, no kiln.lock). */
  readonly files: readonly FileStatus[];
  /** Sum of expected sizes, when known. */
  readonly bytesExpected: number | undefined;
  readonly bytesPresent: number;
}

/** The folder of a model on a volume (the name is checked). */
export function modelFolder(volume: string, model: string): string {
  checkModelName(model, 'model name');
  return path.join(volume, model);
}

/** Where the volume keeps a model's record. */
export function recordFile(volume: string, model: string): string {
  return path.join(volume, KILN_DIR, 'models', `${checkModelName(model, 'model name')}.json`);
}

/** Where the volume keeps a model's lock. */
export function lockTarget(volume: string, model: string): string {
  return path.join(volume, KILN_DIR, 'locks', `${checkModelName(model, 'model name')}.lock`);
}

/** Reads a model's record; a missing or unreadable one (from another kiln, or half-written by hand) is `undefined`. */
export async function readRecord(volume: string, model: string): Promise<VolumeRecord | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(recordFile(volume, model), 'utf8'));
  } catch {
    return undefined;
  }
  return isRecord(value, model) ? value : undefined;
}

/** Writes a model's record atomically. */
export async function writeRecord(volume: string, record: VolumeRecord): Promise<void> {
  const file = recordFile(volume, record.model);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, `${JSON.stringify(JSON.parse(canonicalJson(record)), null, 1)}\n`);
}

/** Truncated mtime: some filesystems report sub-millisecond digits that do not survive a round trip. */
export function mtimeOf(stats: { mtimeMs: number }): number {
  return Math.trunc(stats.mtimeMs);
}

/**
 * Checks a model's files against what was verified, by `stat` only (no hashing): a file whose size
 * and mtime are those recorded right after its digest was checked is `verified`.
 *
 * `expected` is the resolution to check against (kiln.lock's, else the record's own).
 */
export async function inspectModel(
  volume: string,
  model: string,
  expected: { revision?: string; files: readonly LockedFile[] } | undefined,
  record: VolumeRecord | undefined,
): Promise<ModelStatus> {
  const folder = modelFolder(volume, model);
  const installed = new Map((record?.files ?? []).map((f) => [f.path, f]));
  if (expected === undefined) {
    const present = await folderSize(folder);
    return { model, state: present === undefined ? 'missing' : 'partial', path: folder, revision: undefined, files: [], bytesExpected: undefined, bytesPresent: present ?? 0 };
  }
  const files = await Promise.all(
    expected.files.map(async (file): Promise<FileStatus> => {
      const full = resolveInside(folder, file.path, `${model} file list`);
      const stats = await statOrUndefined(full);
      if (stats === undefined) {
        const part = await statOrUndefined(full + PART_SUFFIX);
        return { path: file.path, state: part === undefined ? 'missing' : 'partial', size: file.size, bytesPresent: part?.size ?? 0 };
      }
      const known = installed.get(file.path);
      const verified = known !== undefined && known.sha256 === file.sha256 && known.size === stats.size && known.mtimeMs === mtimeOf(stats) && stats.size === file.size;
      return { path: file.path, state: verified ? 'verified' : 'modified', size: file.size, bytesPresent: stats.size };
    }),
  );
  const states = new Set(files.map((f) => f.state));
  const state: ModelState =
    files.length > 0 && states.size === 1 && states.has('verified')
      ? 'verified'
      : states.has('modified')
        ? 'modified'
        : [...states].every((s) => s === 'missing')
          ? 'missing'
          : 'partial';
  return {
    model,
    state: files.length === 0 ? (record?.complete === true ? 'verified' : 'missing') : state,
    path: folder,
    revision: expected.revision,
    files,
    bytesExpected: files.reduce((sum, f) => sum + f.size, 0),
    bytesPresent: files.reduce((sum, f) => sum + f.bytesPresent, 0),
  };
}

/** The record, when it is complete and describes `entry`. */
export function recordFor(record: VolumeRecord | undefined, entry: ManifestEntry): VolumeRecord | undefined {
  return record !== undefined && record.complete && sameEntry(record.entry, entry) ? record : undefined;
}

/** Free bytes for an unprivileged writer on the filesystem that holds `folder` (or its nearest existing parent). */
export async function freeBytes(folder: string): Promise<number> {
  for (let dir = path.resolve(folder); ; dir = path.dirname(dir)) {
    try {
      const s = await statfs(dir);
      return s.bavail * s.bsize;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(dir) === dir) throw error;
    }
  }
}

/** `stat`, or `undefined` when the path does not exist. */
export async function statOrUndefined(file: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
}

async function folderSize(folder: string): Promise<number | undefined> {
  let entries;
  try {
    entries = await readdir(folder, { recursive: true, withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let total = 0;
  for (const e of entries) if (e.isFile()) total += (await stat(path.join(e.parentPath, e.name))).size;
  return entries.length === 0 ? undefined : total;
}

function isRecord(value: unknown, model: string): value is VolumeRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  if (r['recordVersion'] !== 1 || r['model'] !== model || typeof r['entry'] !== 'object' || r['entry'] === null || !Array.isArray(r['files'])) return false;
  return (r['files'] as unknown[]).every((f) => {
    if (typeof f !== 'object' || f === null) return false;
    const file = f as Record<string, unknown>;
    return typeof file['path'] === 'string' && unsafeReason(file['path']) === undefined && typeof file['size'] === 'number' && typeof file['sha256'] === 'string' && typeof file['mtimeMs'] === 'number';
  });
}
