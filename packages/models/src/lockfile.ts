import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { ManifestError, type ManifestIssue } from './errors.ts';
import { canonicalJson, type ManifestEntry } from './manifest.ts';
import { MODEL_NAME_PATTERN, unsafeReason } from './safe-path.ts';

/** The lockfile's file name, beside the config. */
export const LOCKFILE_NAME = 'kiln.lock';

/** One file as resolved: where it goes in the model folder, its size and its SHA-256. */
export interface LockedFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

/** What one model resolved to. */
export interface LockEntry {
  /** The manifest entry this was resolved from; a different entry makes the lock stale for that model. */
  readonly entry: ManifestEntry;
  /** Hugging Face: the commit the revision pointed at. */
  readonly revision?: string;
  /** Every file, sorted by path. */
  readonly files: readonly LockedFile[];
}

/** The content of `kiln.lock`. */
export interface Lockfile {
  readonly lockfileVersion: 1;
  readonly models: Readonly<Record<string, LockEntry>>;
}

const sha256 = z.string().regex(/^[a-f0-9]{64}$/, { error: 'must be 64 lower-case hex digits' });
const relativePath = z.string().superRefine((value, ctx) => {
  const reason = unsafeReason(value);
  if (reason !== undefined) ctx.addIssue({ code: 'custom', message: `must be a relative path inside the model folder: ${reason}` });
});
const lockSchema = z.strictObject({
  lockfileVersion: z.literal(1, { error: 'must be 1 (this kiln reads lockfile version 1)' }),
  models: z.record(
    z.string().regex(MODEL_NAME_PATTERN, { error: 'must be a model name' }),
    z.strictObject({
      entry: z.looseObject({ source: z.string() }),
      revision: z.string().min(1).optional(),
      files: z.array(z.strictObject({ path: relativePath, size: z.number().int().min(0), sha256 })),
    }),
  ),
});

/** An empty lockfile. */
export const EMPTY_LOCKFILE: Lockfile = Object.freeze({ lockfileVersion: 1, models: Object.freeze({}) });

/**
 * Reads `kiln.lock`; a missing file is an empty lock. Throws {@link ManifestError} when the file
 * is not a lockfile (every path in it is checked: none may leave its model folder).
 */
export async function readLockfile(file: string): Promise<Lockfile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_LOCKFILE;
    throw new ManifestError([], { cause: error, message: `cannot read ${file}: ${(error as Error).message}` });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ManifestError([], { cause, message: `${file} is not valid JSON (${(cause as Error).message}): delete it and run kiln models pull` });
  }
  const parsed = lockSchema.safeParse(value);
  if (!parsed.success) {
    const issues: ManifestIssue[] = parsed.error.issues.map((i) => ({ key: i.path.map(String).join('.') || '(root)', value: undefined, rule: i.message }));
    throw new ManifestError(issues, { file });
  }
  return parsed.data as Lockfile;
}

/**
 * Replaces the entries of `updates` in the lockfile at `file` (read just before writing, so other
 * models' entries written meanwhile survive), then writes it atomically: sorted, one key per line.
 */
export async function updateLockfile(file: string, updates: Readonly<Record<string, LockEntry>>): Promise<Lockfile> {
  if (Object.keys(updates).length === 0) return readLockfile(file);
  const current = await readLockfile(file);
  const models: Record<string, LockEntry> = { ...current.models };
  for (const [name, entry] of Object.entries(updates)) models[name] = { ...entry, files: [...entry.files].sort((a, b) => compare(a.path, b.path)) };
  const next: Lockfile = { lockfileVersion: 1, models };
  await writeFileAtomic(file, `${JSON.stringify(JSON.parse(canonicalJson(next)), null, 2)}\n`);
  return next;
}

/** Writes through a temporary file in the same folder and a rename, so readers see the old or the new file. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, text);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
