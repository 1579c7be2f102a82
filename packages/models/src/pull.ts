import { mkdir } from 'node:fs/promises';
import { ManualModelError } from './errors.ts';
import { checkFreeSpace, downloadVerified, sha256OfFile, type FileProgress, type RetryPolicy } from './file-download.ts';
import type { LockEntry, LockedFile } from './lockfile.ts';
import type { ModelSpec } from './manifest.ts';
import { acquireModelLock, type Clock, type LockTiming } from './model-lock.ts';
import { resolveInside } from './safe-path.ts';
import { resolveSource } from './sources/resolve-source.ts';
import type { RemoteFile, Resolution, SourceContext } from './sources/remote-file.ts';
import {
  inspectModel,
  modelFolder,
  mtimeOf,
  PART_SUFFIX,
  readRecord,
  recordFor,
  statOrUndefined,
  writeRecord,
  type InstalledFile,
  type ModelStatus,
  type VolumeRecord,
} from './volume.ts';

/** What a pull reports while it runs. */
export type PullEvent =
  /** Another process holds the model's lock: this one waits for it. */
  | { readonly type: 'waiting'; readonly model: string }
  /** The source was resolved: `download` files (of `files`) must be fetched, `bytes` in all. */
  | { readonly type: 'resolved'; readonly model: string; readonly revision: string | undefined; readonly files: number; readonly download: number; readonly bytes: number | undefined }
  | ({ readonly type: 'file' } & FileProgress);

/** The outcome of pulling one model. */
export interface ModelPullResult {
  readonly model: string;
  /** `up-to-date`: every file was already verified on the volume; nothing was fetched. */
  readonly outcome: 'pulled' | 'up-to-date';
  readonly path: string;
  readonly revision: string | undefined;
  /** What kiln.lock should say about the model now. */
  readonly lock: LockEntry;
  readonly filesDownloaded: number;
  readonly bytesTransferred: number;
  /** Bytes that were already on the volume in `.part` files and were resumed rather than fetched again. */
  readonly bytesResumed: number;
}

/** What {@link pullModel} needs from its store. */
export interface PullContext {
  readonly volume: string;
  readonly source: Omit<SourceContext, 'signal'>;
  readonly clock: Clock;
  readonly retry: RetryPolicy;
  readonly lockTiming: LockTiming;
  readonly durable: boolean;
  /** Runs a file download when a slot is free (shared by every model of one pull). */
  readonly schedule: <T>(task: () => Promise<T>) => Promise<T>;
  readonly signal: AbortSignal;
  readonly onEvent?: ((event: PullEvent) => void) | undefined;
  /** Resolve the source again even when kiln.lock or the volume's record pins it. */
  readonly update?: boolean | undefined;
}

/**
 * Makes one model's folder match its resolution: under the model's lock, files already verified are
 * kept, files present but unrecorded are re-hashed, the rest are downloaded (in parallel, resumable,
 * verified), and the volume's record is written after each file. `pinned` (kiln.lock's entry for
 * this manifest entry) fixes the revision and digests; without it the source is resolved afresh.
 */
export async function pullModel(spec: ModelSpec, pinned: LockEntry | undefined, context: PullContext): Promise<ModelPullResult> {
  const { volume, signal } = context;
  const folder = modelFolder(volume, spec.name);
  const upToDate = (record: VolumeRecord, status: ModelStatus): ModelPullResult => ({
    model: spec.name,
    outcome: 'up-to-date',
    path: folder,
    revision: status.revision ?? record.revision,
    lock: { entry: spec.entry, ...(record.revision === undefined ? {} : { revision: record.revision }), files: record.files.map(({ path, size, sha256 }) => ({ path, size, sha256 })) },
    filesDownloaded: 0,
    bytesTransferred: 0,
    bytesResumed: 0,
  });

  const verifiedNow = async (): Promise<ModelPullResult | undefined> => {
    const record = recordFor(await readRecord(volume, spec.name), spec.entry);
    if (record === undefined) return undefined;
    const status = await inspectModel(volume, spec.name, pinned ?? record, record);
    return status.state === 'verified' ? upToDate(record, status) : undefined;
  };

  // Most calls (every worker start after the first) end here: a few stats, no lock, no network.
  const early = await verifiedNow();
  if (early !== undefined) return early;
  if (spec.source.kind === 'manual') throw new ManualModelError(spec.name, spec.instructions ?? '');

  const lock = await acquireModelLock(volume, spec.name, { clock: context.clock, timing: context.lockTiming, signal, onWait: () => context.onEvent?.({ type: 'waiting', model: spec.name }) });
  const combined = AbortSignal.any([signal, lock.signal]);
  try {
    // Whoever held the lock may have just finished this very model.
    const done = await verifiedNow();
    if (done !== undefined) return done;
    return await pullLocked(spec, pinned, folder, { ...context, signal: combined });
  } finally {
    await lock.release();
  }
}

async function pullLocked(spec: ModelSpec, pinned: LockEntry | undefined, folder: string, context: PullContext): Promise<ModelPullResult> {
  const { volume, signal } = context;
  await mkdir(folder, { recursive: true });
  // Without kiln.lock, what the volume recorded pins the model: files that were copied or touched are
  // re-hashed against it rather than fetched again (a volume filled by `push` needs no network).
  const pins = context.update === true ? undefined : (pinned ?? recordFor(await readRecord(volume, spec.name), spec.entry));
  const resolution = await resolveSource(spec, pins, { ...context.source, signal });
  try {
    return await fetchResolved(spec, resolution, folder, context);
  } finally {
    resolution.dispose?.();
  }
}

async function fetchResolved(spec: ModelSpec, resolution: Resolution, folder: string, context: PullContext): Promise<ModelPullResult> {
  const { volume, signal } = context;
  const previous = await readRecord(volume, spec.name);
  const known = new Map((previous?.files ?? []).map((f) => [f.path, f]));

  // Files already in place: trusted when the record vouches for them, else re-hashed.
  const kept: InstalledFile[] = [];
  const missing: RemoteFile[] = [];
  for (const file of resolution.files) {
    const target = resolveInside(folder, file.path, `${spec.name} file list`);
    const stats = await statOrUndefined(target);
    const recorded = known.get(file.path);
    if (stats !== undefined && recorded !== undefined && recorded.size === stats.size && recorded.mtimeMs === mtimeOf(stats) && (file.sha256 === undefined || file.sha256 === recorded.sha256) && (file.size === undefined || file.size === stats.size)) {
      kept.push(recorded);
      continue;
    }
    if (stats !== undefined && file.sha256 !== undefined && (file.size === undefined || file.size === stats.size)) {
      context.onEvent?.({ type: 'file', model: spec.name, path: file.path, phase: 'checking', bytes: 0, total: stats.size, resumedFrom: 0 });
      const { sha256, size } = await sha256OfFile(target, signal);
      if (sha256 === file.sha256) {
        kept.push({ path: file.path, size, sha256, mtimeMs: mtimeOf(stats) });
        continue;
      }
    }
    missing.push(file);
  }

  let bytesToFetch = 0;
  let allSizesKnown = true;
  for (const file of missing) {
    if (file.size === undefined) allSizesKnown = false;
    else bytesToFetch += file.size - Math.min(file.size, (await statOrUndefined(resolveInside(folder, file.path, spec.name) + PART_SUFFIX))?.size ?? 0);
  }
  context.onEvent?.({
    type: 'resolved',
    model: spec.name,
    revision: resolution.revision,
    files: resolution.files.length,
    download: missing.length,
    bytes: allSizesKnown ? bytesToFetch : undefined,
  });
  await checkFreeSpace(volume, bytesToFetch, `${spec.name} (${missing.length} file${missing.length === 1 ? '' : 's'})`);

  // Incomplete until the last file lands, so no reader trusts a half-updated model.
  const installed = new Map(kept.map((f) => [f.path, f]));
  const base = { recordVersion: 1 as const, model: spec.name, entry: spec.entry, ...(resolution.revision === undefined ? {} : { revision: resolution.revision }) };
  let recordWrites = Promise.resolve();
  const saveRecord = (complete: boolean) => {
    const record: VolumeRecord = { ...base, complete, files: [...installed.values()].sort((a, b) => (a.path < b.path ? -1 : 1)), updatedAt: new Date(context.clock.now()).toISOString() };
    recordWrites = recordWrites.then(() => writeRecord(volume, record));
    return recordWrites;
  };
  await saveRecord(false);

  let bytesTransferred = 0;
  let bytesResumed = 0;
  const failures: unknown[] = [];
  const inner = new AbortController();
  const fileSignal = AbortSignal.any([signal, inner.signal]);
  await Promise.all(
    missing.map((file) =>
      context
        .schedule(async () => {
          fileSignal.throwIfAborted();
          const done = await downloadVerified(spec.name, folder, file, {
            signal: fileSignal,
            clock: context.clock,
            retry: context.retry,
            volume,
            durable: context.durable,
            onProgress: (p) => context.onEvent?.({ type: 'file', ...p }),
          });
          bytesTransferred += done.bytesTransferred;
          bytesResumed += done.resumedFrom;
          installed.set(done.path, { path: done.path, size: done.size, sha256: done.sha256, mtimeMs: done.mtimeMs });
          await saveRecord(false);
        })
        .catch((error: unknown) => {
          // One failure stops the others: they keep their .part files for the next pull.
          if (failures.length === 0) inner.abort(error);
          failures.push(error);
        }),
    ),
  );
  if (failures.length > 0) throw failures[0];

  await saveRecord(true);
  const files: LockedFile[] = [...installed.values()].map(({ path, size, sha256 }) => ({ path, size, sha256 })).sort((a, b) => (a.path < b.path ? -1 : 1));
  return {
    model: spec.name,
    outcome: missing.length === 0 && previous?.complete === true ? 'up-to-date' : 'pulled',
    path: folder,
    revision: resolution.revision,
    lock: { entry: spec.entry, ...(resolution.revision === undefined ? {} : { revision: resolution.revision }), files },
    filesDownloaded: missing.length,
    bytesTransferred,
    bytesResumed,
  };
}

/** A bounded number of tasks at once, first come first served. */
export function createLimiter(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= limit) await new Promise<void>((resolve) => queue.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}
