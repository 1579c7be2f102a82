import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { UnsafePathError } from './errors.ts';

/** Model names: they become folder names on the volume, so no dots first (`.kiln` is kiln's own). */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Checks a relative, `/`-separated path that will be joined under a folder (a model file, a
 * manifest `path`, a listing entry): no `..`, `.` or empty segment, not absolute, no drive
 * letter, backslash or NUL. Returns the path unchanged.
 */
export function checkRelativePath(text: string, origin: string): string {
  const reason = unsafeReason(text);
  if (reason !== undefined) throw new UnsafePathError(text, origin, reason);
  return text;
}

/** Why `text` is not a safe relative path, or `undefined` when it is. */
export function unsafeReason(text: string): string | undefined {
  if (text === '') return 'it is empty';
  if (text.includes('\0')) return 'it contains a NUL byte';
  if (text.includes('\\')) return 'it contains a backslash (use / between folders)';
  if (text.startsWith('/') || /^[A-Za-z]:/.test(text)) return 'absolute paths are not allowed';
  for (const segment of text.split('/')) {
    if (segment === '..') return '".." would leave the folder';
    if (segment === '.' || segment === '') return 'it has an empty or "." segment';
  }
  return undefined;
}

/** Checks a model name (it becomes a folder at the volume root). */
export function checkModelName(name: string, origin: string): string {
  if (!MODEL_NAME_PATTERN.test(name)) {
    throw new UnsafePathError(name, origin, 'model names are letters, digits, ".", "_" or "-", start with a letter or digit, at most 100 characters');
  }
  return name;
}

/** Joins a checked relative path under `root`, and re-checks that the result stays inside. */
export function resolveInside(root: string, relative: string, origin: string): string {
  checkRelativePath(relative, origin);
  const full = path.resolve(root, ...relative.split('/'));
  if (!isInside(root, full)) throw new UnsafePathError(relative, origin, `it resolves outside ${root}`);
  return full;
}

/** Whether `candidate` is `root` itself or below it (lexically). */
function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(candidate));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Resolves symlinks of an existing folder and checks it is still under `root` (itself resolved):
 * a symlink planted inside a model folder must not redirect writes elsewhere.
 */
export async function checkRealFolderInside(root: string, folder: string, origin: string): Promise<void> {
  const [realRoot, realFolder] = await Promise.all([realpath(root), realpath(folder)]);
  if (!isInside(realRoot, realFolder)) throw new UnsafePathError(folder, origin, `it is a link to ${realFolder}, outside ${realRoot}`);
}
