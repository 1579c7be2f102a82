import { createReadStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ChecksumMismatchError, LockfileMismatchError, ManifestError, ModelNotFoundError } from './errors.ts';
import { downloadVerified, RETRY_POLICY, sha256OfFile, type RetryPolicy } from './file-download.ts';
import { readLockfile, updateLockfile, type LockEntry, type Lockfile } from './lockfile.ts';
import { canonicalJson, loadManifestFile, parseManifest, sameEntry, type Manifest, type ModelSpec } from './manifest.ts';
import { acquireModelLock, LOCK_TIMING, systemClock, type Clock, type LockTiming } from './model-lock.ts';
import { createLimiter, pullModel, type ModelPullResult, type PullEvent } from './pull.ts';
import { pushModels, type PushEvent, type PushReport, type PushTarget } from './push.ts';
import { checkModelName, checkRelativePath, MODEL_NAME_PATTERN } from './safe-path.ts';
import type { ModelsSettings, S3Settings } from './settings.ts';
import type { RemoteFile } from './sources/remote-file.ts';
import {
  inspectModel,
  KILN_DIR,
  modelFolder,
  mtimeOf,
  PART_SUFFIX,
  readRecord,
  recordFile,
  recordFor,
  statOrUndefined,
  writeRecord,
  type ModelStatus,
  type VolumeRecord,
} from './volume.ts';

/** How a {@link ModelStore} is set up. Everything but `manifest` and `volume` has a default. */
export interface ModelStoreOptions {
  readonly manifest: Manifest;
  /** Absolute volume root. */
  readonly volume: string;
  /** `kiln.lock`: read to pin resolutions; written by `pull` and `add` when `writeLockfile` is set. */
  readonly lockfile?: string | undefined;
  readonly hub?: { readonly url: string; readonly token: string | undefined };
  readonly s3?: S3Settings;
  /** Files downloaded at once (default 4). */
  readonly concurrency?: number;
  readonly clock?: Clock;
  readonly lockTiming?: LockTiming;
  /** Overrides of {@link RETRY_POLICY}, field by field. */
  readonly retry?: Partial<RetryPolicy>;
  /** fsync each file before its rename (default true). */
  readonly durable?: boolean;
}

/** Options of {@link ModelStore.pull}. */
export interface PullOptions {
  signal?: AbortSignal;
  /** Refuse any model that kiln.lock does not pin exactly as the manifest describes it. */
  frozen?: boolean;
  /** Resolve again (a branch's newest commit) instead of using kiln.lock's pins. */
  update?: boolean;
  /** Record the resolutions in kiln.lock (the CLI does; workers do not). */
  writeLockfile?: boolean;
  onEvent?: (event: PullEvent) => void;
}

/** What `pull` did, model by model. A failed model does not stop the others. */
export interface PullReport {
  readonly results: readonly ModelPullResult[];
  readonly failures: readonly { readonly model: string; readonly error: unknown }[];
  readonly durationMs: number;
}

/** One file checked by `verify`. */
export interface VerifiedFile {
  readonly path: string;
  readonly state: 'ok' | 'mismatch' | 'missing';
  readonly expected: string;
  /** The digest found (`undefined` when the file is missing). */
  readonly actual: string | undefined;
  readonly size: number;
}

/** `verify` of one model. */
export interface VerifyReport {
  readonly model: string;
  /** `unknown`: nothing says what the model should contain (never pulled, not in kiln.lock). */
  readonly state: 'ok' | 'mismatch' | 'unknown';
  readonly files: readonly VerifiedFile[];
}

/** What `gc` removed (or would remove with `dryRun`). */
export interface GcReport {
  readonly removed: readonly { readonly model: string; readonly path: string; readonly bytes: number; readonly why: string }[];
  /** Folders at the volume root that kiln did not create: left alone. */
  readonly unmanaged: readonly string[];
  readonly bytesFreed: number;
}

/** What `add` installed. */
export interface AddResult {
  readonly model: string;
  readonly path: string;
  readonly lock: LockEntry;
  readonly files: number;
  readonly bytes: number;
}

/**
 * The models of one manifest on one volume: `ensure` for workers, and `pull`, `status`, `verify`,
 * `gc`, `add` and `push` for the CLI. Holds no open resources; several stores (in several
 * processes) may share a volume: writes to a model happen under its cross-process lock.
 *
 * @example
 * const models = ModelStore.fromSettings(readModelsSettings(process.env));
 * const folder = await models.ensure('sam3'); // the verified local folder, downloaded if needed
 */
export class ModelStore {
  readonly manifest: Manifest;
  readonly volume: string;
  readonly lockfile: string | undefined;
  readonly #hub: { readonly url: string; readonly token: string | undefined };
  readonly #s3: S3Settings;
  readonly #clock: Clock;
  readonly #lockTiming: LockTiming;
  readonly #retry: RetryPolicy;
  readonly #durable: boolean;
  readonly #concurrency: number;
  readonly #inflight = new Map<string, { promise: Promise<string>; waiters: number; controller: AbortController; listeners: Set<(event: PullEvent) => void> }>();

  constructor(options: ModelStoreOptions) {
    this.manifest = options.manifest;
    this.volume = path.resolve(options.volume);
    this.lockfile = options.lockfile;
    this.#hub = options.hub ?? { url: 'https://huggingface.co', token: undefined };
    this.#s3 = options.s3 ?? { endpoint: undefined, region: undefined, accessKeyId: undefined, secretAccessKey: undefined, sessionToken: undefined };
    this.#clock = options.clock ?? systemClock;
    this.#lockTiming = options.lockTiming ?? LOCK_TIMING;
    this.#retry = Object.freeze({ ...RETRY_POLICY, ...options.retry });
    this.#durable = options.durable ?? true;
    this.#concurrency = options.concurrency ?? 4;
  }

  /**
   * A store from settings: the manifest of the settings' config file (an empty one when there is
   * none: `ensure` then relies on what the volume itself records).
   */
  static fromSettings(settings: ModelsSettings, options: Partial<Omit<ModelStoreOptions, 'volume' | 'lockfile' | 'hub' | 's3'>> = {}): ModelStore {
    const manifest = options.manifest ?? (settings.configFile === undefined ? Object.freeze({}) : loadManifestFile(settings.configFile).manifest);
    return new ModelStore({ concurrency: settings.concurrency, ...options, manifest, volume: settings.volume, lockfile: settings.lockfile, hub: settings.hub, s3: settings.s3 });
  }

  /** The folder a model lives in on this volume (whether or not it is there). */
  path(name: string): string {
    return modelFolder(this.volume, name);
  }

  /**
   * Returns the verified local folder of a model, downloading what is missing first. Concurrent calls
   * for one model in this process share one pull; other processes on the same volume wait on the
   * model's lock and then find it verified. A call whose files are all verified costs a few `stat`s.
   * `onEvent` reports waits for another process's lock and download progress (e.g. for the worker's log).
   *
   * @example
   * async setup() {
   *   const dir = await ensure('silero-vad');
   *   return { vad: await loadVad(path.join(dir, 'silero_vad.onnx')) };
   * }
   */
  async ensure(name: string, options: { signal?: AbortSignal; onEvent?: (event: PullEvent) => void } = {}): Promise<string> {
    let flight = this.#inflight.get(name);
    if (flight === undefined) {
      const controller = new AbortController();
      const listeners = new Set<(event: PullEvent) => void>();
      const promise = this.#ensureOnce(name, controller.signal, (event) => {
        for (const listener of listeners) listener(event);
      }).finally(() => this.#inflight.delete(name));
      flight = { promise, waiters: 0, controller, listeners };
      this.#inflight.set(name, flight);
    }
    const current = flight;
    current.waiters++;
    const { signal, onEvent } = options;
    if (onEvent !== undefined) current.listeners.add(onEvent);
    if (signal === undefined) return current.promise;
    return new Promise<string>((resolve, reject) => {
      const onAbort = () => {
        if (onEvent !== undefined) current.listeners.delete(onEvent);
        // The shared pull stops only when every caller has given up on it.
        if (--current.waiters === 0) current.controller.abort(signal.reason);
        reject(signal.reason);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      current.promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  async #ensureOnce(name: string, signal: AbortSignal, onEvent: (event: PullEvent) => void): Promise<string> {
    const spec = this.manifest[name] ?? (await this.#specFromVolume(name));
    const lock = await this.#readLock();
    const result = await pullModel(spec, pinnedFor(lock, spec), this.#pullContext(signal, onEvent, createLimiter(this.#concurrency)));
    return result.path;
  }

  /**
   * Pulls the named models (all of the manifest's by default) onto the volume. Unknown names, and
   * with `frozen` any model kiln.lock does not pin, are refused before anything is fetched.
   */
  async pull(names?: readonly string[], options: PullOptions = {}): Promise<PullReport> {
    const started = this.#clock.now();
    const specs = this.#specs(names);
    const lock = await this.#readLock();
    if (options.frozen === true) {
      for (const spec of specs) {
        const entry = lock.models[spec.name];
        if (entry === undefined) throw new LockfileMismatchError(spec.name, `kiln.lock${this.lockfile === undefined ? '' : ` (${this.lockfile})`} has no entry for it`);
        if (!sameEntry(entry.entry, spec.entry)) throw new LockfileMismatchError(spec.name, `kiln.lock pins ${canonicalJson(entry.entry)} but the manifest says ${canonicalJson(spec.entry)}`);
      }
    }
    const schedule = createLimiter(this.#concurrency);
    const signal = options.signal ?? new AbortController().signal;
    const settled = await Promise.allSettled(
      specs.map((spec) => pullModel(spec, options.update === true ? undefined : pinnedFor(lock, spec), { ...this.#pullContext(signal, options.onEvent, schedule), update: options.update === true })),
    );
    const results: ModelPullResult[] = [];
    const failures: { model: string; error: unknown }[] = [];
    settled.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') results.push(outcome.value);
      else failures.push({ model: specs[i]!.name, error: outcome.reason });
    });
    if (options.writeLockfile === true && options.frozen !== true && this.lockfile !== undefined) {
      const changed = Object.fromEntries(results.filter((r) => canonicalJson(lock.models[r.model]) !== canonicalJson(r.lock)).map((r) => [r.model, r.lock]));
      await updateLockfile(this.lockfile, changed);
    }
    return { results, failures, durationMs: this.#clock.now() - started };
  }

  /** Each model's state on the volume, by `stat` only: missing, partial, verified or modified. */
  async status(names?: readonly string[]): Promise<ModelStatus[]> {
    const lock = await this.#readLock();
    return Promise.all(
      this.#specs(names).map(async (spec) => {
        const record = await readRecord(this.volume, spec.name);
        // An incomplete record lists only the files finished so far: it cannot say what is expected.
        const expected = pinnedFor(lock, spec) ?? recordFor(record, spec.entry);
        return inspectModel(this.volume, spec.name, expected, record);
      }),
    );
  }

  /**
   * Re-hashes every file of the named models and lists mismatches. Files that match have their
   * record refreshed (so a copied or touched file counts as verified again); mismatched ones are
   * dropped from the record, so the next `pull` or `ensure` fetches them again.
   */
  async verify(names?: readonly string[], options: { signal?: AbortSignal } = {}): Promise<VerifyReport[]> {
    const lock = await this.#readLock();
    const reports: VerifyReport[] = [];
    for (const spec of this.#specs(names)) {
      const record = await readRecord(this.volume, spec.name);
      const expected = pinnedFor(lock, spec) ?? (record !== undefined && sameEntry(record.entry, spec.entry) ? record : undefined);
      if (expected === undefined || expected.files.length === 0) {
        reports.push({ model: spec.name, state: 'unknown', files: [] });
        continue;
      }
      const folder = this.path(spec.name);
      const files: VerifiedFile[] = [];
      const seen = new Map<string, { sha256: string; size: number; mtimeMs: number }>();
      for (const file of expected.files) {
        const full = path.join(folder, ...checkRelativePath(file.path, `${spec.name} file list`).split('/'));
        const before = await statOrUndefined(full);
        if (before === undefined) {
          files.push({ path: file.path, state: 'missing', expected: file.sha256, actual: undefined, size: file.size });
          continue;
        }
        const { sha256, size } = await sha256OfFile(full, options.signal);
        const ok = sha256 === file.sha256 && size === file.size;
        files.push({ path: file.path, state: ok ? 'ok' : 'mismatch', expected: file.sha256, actual: sha256, size });
        if (ok) seen.set(file.path, { sha256, size, mtimeMs: mtimeOf(before) });
      }
      await this.#refreshRecord(spec, expected, seen, options.signal);
      reports.push({ model: spec.name, state: files.every((f) => f.state === 'ok') ? 'ok' : 'mismatch', files });
    }
    return reports;
  }

  async #refreshRecord(spec: ModelSpec, expected: { revision?: string | undefined; files: readonly { path: string; size: number; sha256: string }[] }, good: Map<string, { sha256: string; size: number; mtimeMs: number }>, signal: AbortSignal | undefined): Promise<void> {
    const lock = await acquireModelLock(this.volume, spec.name, { clock: this.#clock, timing: this.#lockTiming, signal });
    try {
      const folder = this.path(spec.name);
      const files = [];
      for (const file of expected.files) {
        const checked = good.get(file.path);
        const now = await statOrUndefined(path.join(folder, ...file.path.split('/')));
        // Only what was hashed and has not changed since goes back into the record.
        if (checked !== undefined && now !== undefined && mtimeOf(now) === checked.mtimeMs && now.size === checked.size) files.push({ path: file.path, ...checked });
      }
      await writeRecord(this.volume, {
        recordVersion: 1,
        model: spec.name,
        entry: spec.entry,
        ...(expected.revision === undefined ? {} : { revision: expected.revision }),
        complete: files.length === expected.files.length,
        files,
        updatedAt: new Date(this.#clock.now()).toISOString(),
      });
    } finally {
      await lock.release();
    }
  }

  /**
   * Removes what the manifest no longer names: folders of models kiln installed (they have a record)
   * that are gone from the manifest, and, inside the manifest's models, files and partial downloads
   * that their current resolution does not list. Folders kiln did not create are left alone.
   */
  async gc(options: { dryRun?: boolean; signal?: AbortSignal } = {}): Promise<GcReport> {
    const removed: { model: string; path: string; bytes: number; why: string }[] = [];
    const recordsDir = path.join(this.volume, KILN_DIR, 'models');
    const recorded = new Set((await readdirOrEmpty(recordsDir)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)).filter((m) => MODEL_NAME_PATTERN.test(m)));
    const lock = await this.#readLock();
    const remove = async (model: string, full: string, why: string) => {
      const bytes = await sizeOf(full);
      removed.push({ model, path: full, bytes, why });
      if (options.dryRun !== true) await rm(full, { recursive: true, force: true });
    };
    for (const model of [...recorded].sort()) {
      const spec = this.manifest[model];
      const held = await acquireModelLock(this.volume, model, { clock: this.#clock, timing: this.#lockTiming, signal: options.signal });
      try {
        if (spec === undefined) {
          await remove(model, this.path(model), 'no longer in the manifest');
          if (options.dryRun !== true) await rm(recordFile(this.volume, model), { force: true });
          continue;
        }
        const record = await readRecord(this.volume, model);
        const expected = pinnedFor(lock, spec) ?? recordFor(record, spec.entry);
        if (expected === undefined) continue;
        const wanted = new Set(expected.files.map((f) => f.path));
        for (const file of await listFiles(this.path(model))) {
          const base = file.endsWith(PART_SUFFIX) ? file.slice(0, -PART_SUFFIX.length) : file;
          if (wanted.has(file)) continue;
          if (file.endsWith(PART_SUFFIX) && wanted.has(base)) continue;
          await remove(model, path.join(this.path(model), ...file.split('/')), file.endsWith(PART_SUFFIX) ? 'partial download of a file no longer listed' : 'not in the current resolution');
        }
      } finally {
        await held.release();
      }
    }
    const unmanaged = (await readdirOrEmpty(this.volume)).filter((entry) => entry !== KILN_DIR && !recorded.has(entry)).sort();
    return { removed, unmanaged, bytesFreed: removed.reduce((n, r) => n + r.bytes, 0) };
  }

  /**
   * Installs files a person obtained for a `manual` model: checks them against the manifest's
   * `sha256` or kiln.lock's digests when those exist, copies them into the model's folder (verified,
   * atomically renamed) and records them. `from` is a file or a folder.
   */
  async add(name: string, from: string, options: { signal?: AbortSignal; writeLockfile?: boolean } = {}): Promise<AddResult> {
    const [spec] = this.#specs([name]);
    if (spec!.source.kind !== 'manual') {
      throw new ManifestError([{ key: `models.${name}.source`, value: spec!.entry.source, rule: 'kiln models add installs manual models; this one has a source: use kiln models pull' }]);
    }
    const source = path.resolve(from);
    const stats = await stat(source).catch((cause: unknown) => {
      throw new ManifestError([], { cause, message: `cannot read ${source}: ${(cause as Error).message}` });
    });
    const lock = await this.#readLock();
    const pinned = pinnedFor(lock, spec!);
    const files: { path: string; full: string; size: number }[] = stats.isDirectory()
      ? (await listFiles(source)).map((p) => ({ path: p, full: path.join(source, ...p.split('/')), size: 0 }))
      : [{ path: checkRelativePath(spec!.fileName ?? path.basename(source), `models.${name}.path`), full: source, size: stats.size }];
    for (const f of files) f.size = (await stat(f.full)).size;
    const expected = new Map((pinned?.files ?? (spec!.sha256 !== undefined && files.length === 1 ? [{ path: files[0]!.path, sha256: spec!.sha256, size: spec!.size ?? files[0]!.size }] : [])).map((f) => [f.path, f]));
    for (const want of expected.values()) {
      if (!files.some((f) => f.path === want.path)) throw new ChecksumMismatchError(name, want.path, 'size', `${want.size} bytes (kiln.lock lists it)`, 'no such file', `nothing was installed`);
    }
    // Everything is checked before anything is copied: a wrong file never reaches the volume.
    for (const f of files) {
      const want = expected.get(f.path);
      if (want === undefined) continue;
      const { sha256 } = await sha256OfFile(f.full, options.signal);
      if (sha256 !== want.sha256) throw new ChecksumMismatchError(name, f.path, 'sha256', want.sha256, sha256, 'nothing was installed');
    }
    const held = await acquireModelLock(this.volume, name, { clock: this.#clock, timing: this.#lockTiming, signal: options.signal });
    try {
      const folder = this.path(name);
      const installed = [];
      for (const f of files) {
        const remote: RemoteFile = {
          path: f.path,
          size: f.size,
          sha256: expected.get(f.path)?.sha256,
          gitBlobSha1: undefined,
          open: async (offset, signal) => ({ body: createReadStream(f.full, { start: offset, highWaterMark: 1 << 20, signal }), start: offset, totalSize: f.size }),
        };
        const done = await downloadVerified(name, folder, remote, { signal: options.signal ?? new AbortController().signal, clock: this.#clock, retry: { ...this.#retry, attempts: 1 }, volume: this.volume, durable: this.#durable });
        installed.push({ path: done.path, size: done.size, sha256: done.sha256, mtimeMs: done.mtimeMs });
      }
      installed.sort((a, b) => (a.path < b.path ? -1 : 1));
      const record: VolumeRecord = { recordVersion: 1, model: name, entry: spec!.entry, complete: true, files: installed, updatedAt: new Date(this.#clock.now()).toISOString() };
      await writeRecord(this.volume, record);
      const lockEntry: LockEntry = { entry: spec!.entry, files: installed.map(({ path: p, size, sha256 }) => ({ path: p, size, sha256 })) };
      if (options.writeLockfile === true && this.lockfile !== undefined && canonicalJson(lock.models[name]) !== canonicalJson(lockEntry)) await updateLockfile(this.lockfile, { [name]: lockEntry });
      return { model: name, path: folder, lock: lockEntry, files: installed.length, bytes: installed.reduce((n, f) => n + f.size, 0) };
    } finally {
      await held.release();
    }
  }

  /**
   * Uploads verified models to an S3 bucket or a RunPod network volume (its S3-compatible API),
   * with the same layout, skipping files whose size and digest already match there.
   */
  async push(target: PushTarget, names?: readonly string[], options: { signal?: AbortSignal; onEvent?: (event: PushEvent) => void } = {}): Promise<PushReport> {
    const specs = this.#specs(names);
    const statuses = await this.status(specs.map((s) => s.name));
    return pushModels(this.volume, statuses, target, { s3: this.#s3, signal: options.signal ?? new AbortController().signal, onEvent: options.onEvent });
  }

  #specs(names: readonly string[] | undefined): ModelSpec[] {
    const known = Object.keys(this.manifest);
    const wanted = names === undefined || names.length === 0 ? known : [...new Set(names)];
    return wanted.map((name) => {
      const spec = this.manifest[name];
      if (spec === undefined) throw new ModelNotFoundError(name, known);
      return spec;
    });
  }

  async #specFromVolume(name: string): Promise<ModelSpec> {
    checkModelName(name, 'model name');
    const record = await readRecord(this.volume, name);
    const known = Object.keys(this.manifest);
    if (record === undefined) {
      throw new ModelNotFoundError(name, known, known.length === 0 ? 'no kiln.config.json was found and the volume has no record of it: set KILN_CONFIG' : `and ${this.volume} has no record of it`);
    }
    // The volume describes what it holds: enough to check it (and to pull it again from its source).
    const { [name]: spec } = parseManifest({ [name]: record.entry }, { baseDir: process.cwd() });
    return spec!;
  }

  async #readLock(): Promise<Lockfile> {
    return this.lockfile === undefined ? { lockfileVersion: 1, models: {} } : readLockfile(this.lockfile);
  }

  #pullContext(signal: AbortSignal, onEvent: ((event: PullEvent) => void) | undefined, schedule: <T>(task: () => Promise<T>) => Promise<T>) {
    return {
      volume: this.volume,
      source: { hub: this.#hub, s3: this.#s3 },
      clock: this.#clock,
      retry: this.#retry,
      lockTiming: this.#lockTiming,
      durable: this.#durable,
      schedule,
      signal,
      onEvent,
    };
  }
}

/** kiln.lock's entry for a model when it was resolved from this very manifest entry. */
function pinnedFor(lock: Lockfile, spec: ModelSpec): LockEntry | undefined {
  const entry = lock.models[spec.name];
  return entry !== undefined && sameEntry(entry.entry, spec.entry) ? entry : undefined;
}

async function readdirOrEmpty(folder: string): Promise<string[]> {
  try {
    return await readdir(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Every file under `folder`, as `/`-separated relative paths. */
async function listFiles(folder: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(folder, { recursive: true, withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(folder, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

async function sizeOf(full: string): Promise<number> {
  const stats = await statOrUndefined(full);
  if (stats === undefined) return 0;
  if (!stats.isDirectory()) return stats.size;
  let total = 0;
  for (const file of await listFiles(full)) total += (await stat(path.join(full, ...file.split('/')))).size;
  return total;
}

