import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { inlineHasher, threadHasher, THREAD_HASH_MIN_BYTES, type FileHasher } from './file-hasher.ts';
import { ChecksumMismatchError, DownloadError, InsufficientSpaceError, isModelsError, SourceError } from './errors.ts';
import type { Clock } from './model-lock.ts';
import { checkRealFolderInside, resolveInside } from './safe-path.ts';
import type { RemoteFile } from './sources/remote-file.ts';
import { freeBytes, mtimeOf, PART_SUFFIX, statOrUndefined } from './volume.ts';

/** Bytes a download may have queued for writing before it stops reading from the network. */
export const WRITE_QUEUE_BYTES = 8 << 20;
/** Durable downloads start an fdatasync after each this many bytes, so flushing overlaps the transfer instead of following it. */
export const SYNC_EVERY_BYTES = 64 << 20;
/** Read size when re-hashing a partial file before resuming it. */
const REHASH_CHUNK_BYTES = 1 << 20;

/** How often and how patiently a file is retried after a network failure. */
export interface RetryPolicy {
  /** Attempts per file, the first included. */
  readonly attempts: number;
  /** Delay before the second attempt; doubles each time up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /**
   * An attempt whose source sends nothing for this long (a connection a NAT or proxy dropped
   * without a reset) is abandoned and retried like a cut connection, resuming from the part.
   */
  readonly idleTimeoutMs: number;
}

/** Retry policy: 4 attempts, 1 s → 2 s → 4 s apart, each resuming where the last stopped; 60 s without a byte fails an attempt. */
export const RETRY_POLICY: RetryPolicy = Object.freeze({ attempts: 4, baseDelayMs: 1000, maxDelayMs: 8000, idleTimeoutMs: 60_000 });

/** Progress of one file. `bytes` counts from the start of the file (a resumed part included). */
export interface FileProgress {
  readonly model: string;
  readonly path: string;
  /** `checking`: re-hashing a partial file or an existing one; `downloading`; `done` (verified and in place). */
  readonly phase: 'checking' | 'downloading' | 'done';
  readonly bytes: number;
  readonly total: number | undefined;
  /** Where this attempt resumed (0 for a fresh start). */
  readonly resumedFrom: number;
}

/** A file downloaded, verified and renamed into place. */
export interface DownloadedFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly mtimeMs: number;
  /** Bytes that crossed the network in this call (resumed bytes excluded). */
  readonly bytesTransferred: number;
  /** Offset the download resumed from (0: from scratch). */
  readonly resumedFrom: number;
}

/** Options of {@link downloadVerified}. */
export interface DownloadOptions {
  readonly signal: AbortSignal;
  readonly clock: Clock;
  readonly retry: RetryPolicy;
  /** The volume root, for free-space checks and error messages. */
  readonly volume: string;
  /** fsync before the rename, so a verified name never points at bytes still in the page cache (default true). */
  readonly durable: boolean;
  readonly onProgress?: ((progress: FileProgress) => void) | undefined;
}

/**
 * Downloads one file into `<file>.part`, resuming from what a previous attempt left (the part is
 * re-hashed, then the rest is asked for with a Range), checks its SHA-256 (and size, and the git
 * blob SHA-1 of Hugging Face's non-LFS files), then renames it into place. A network failure is
 * retried with backoff, resuming each time; after the last attempt a {@link DownloadError} keeps the
 * part for the next pull. A digest mismatch deletes the part ({@link ChecksumMismatchError}).
 */
export async function downloadVerified(model: string, folder: string, file: RemoteFile, options: DownloadOptions): Promise<DownloadedFile> {
  const target = resolveInside(folder, file.path, `${model} file list`);
  await mkdir(path.dirname(target), { recursive: true });
  await checkRealFolderInside(folder, path.dirname(target), `${model}/${file.path}`);
  const part = target + PART_SUFFIX;
  for (let attempt = 1; ; attempt++) {
    options.signal.throwIfAborted();
    try {
      return await downloadAttempt(model, file, target, part, options);
    } catch (error) {
      if (options.signal.aborted) throw options.signal.reason;
      if (!isRetryable(error)) throw error;
      if (attempt >= options.retry.attempts) throw new DownloadError(model, file.path, (await statOrUndefined(part))?.size ?? 0, attempt, error);
      const delay = Math.min(options.retry.maxDelayMs, options.retry.baseDelayMs * 2 ** (attempt - 1));
      await options.clock.sleep(delay, options.signal);
    }
  }
}

/**
 * One attempt, under its own signal: the caller's abort ends it, and so does a source that sends
 * nothing for `retry.idleTimeoutMs`, with a retryable {@link StalledConnectionError} (never an
 * AbortError, which would stop the retries).
 */
async function downloadAttempt(model: string, file: RemoteFile, target: string, part: string, options: DownloadOptions): Promise<DownloadedFile> {
  const attempt = new AbortController();
  const forward = () => attempt.abort(options.signal.reason);
  options.signal.addEventListener('abort', forward, { once: true });
  const watchdog = new StallWatchdog(options.clock, options.retry.idleTimeoutMs, attempt);
  try {
    return await downloadOnce(model, file, target, part, { ...options, signal: attempt.signal }, watchdog);
  } catch (error) {
    // Sources surface an abort in their own way (an AbortError, the reason itself): a stall is a stall.
    throw watchdog.stalled ?? error;
  } finally {
    watchdog.stop();
    options.signal.removeEventListener('abort', forward);
  }
}

async function downloadOnce(model: string, file: RemoteFile, target: string, part: string, options: DownloadOptions, watchdog: StallWatchdog): Promise<DownloadedFile> {
  let offset = (await statOrUndefined(part))?.size ?? 0;
  if (file.size !== undefined && offset > file.size) {
    await truncate(part, 0);
    offset = 0;
  }
  const report = (phase: FileProgress['phase'], bytes: number, total: number | undefined, resumedFrom: number) =>
    options.onProgress?.({ model, path: file.path, phase, bytes, total, resumedFrom });

  let total = file.size;
  let body: AsyncIterable<Uint8Array> | undefined;
  if (total === undefined || offset < total) {
    const opened = await file.open(offset, options.signal);
    // The server ignored the Range: the answer is the whole file.
    if (opened.start !== offset) offset = 0;
    if (file.size !== undefined && opened.totalSize !== undefined && opened.totalSize !== file.size) {
      throw new SourceError(model, file.path, 'bad-response', `the source has ${opened.totalSize} bytes where ${file.size} were expected (kiln.lock or the manifest): the file changed upstream`);
    }
    total ??= opened.totalSize;
    if (file.size === undefined && total !== undefined) await checkFreeSpace(options.volume, total - offset, `${model}/${file.path}`);
    body = opened.body;
  }
  const resumedFrom = offset;

  const handle = await open(part, offset === 0 ? 'w' : 'r+');
  // Git's blob digest needs the size up front, and only small files are known by it alone.
  const gitSize = file.gitBlobSha1 !== undefined && file.sha256 === undefined ? file.size : undefined;
  let hasher: FileHasher | undefined;
  let writer: BatchedWriter | undefined;
  try {
    if (offset > 0) report('checking', 0, offset, 0);
    hasher = gitSize === undefined && (total ?? 0) >= THREAD_HASH_MIN_BYTES ? threadHasher(part, offset) : await inlineHasher(part, offset, gitSize, options.signal);
    const current = hasher;
    const output = new BatchedWriter(handle, offset, options.durable, (written) => {
      current.written(written);
      report('downloading', written, total, resumedFrom);
    });
    writer = output;
    if (body !== undefined) {
      report('downloading', offset, total, resumedFrom);
      watchdog.restart();
      try {
        for await (const chunk of body) {
          watchdog.restart();
          current.update(chunk);
          await output.push(chunk);
          // Time spent waiting for the disk is not the connection's idleness.
          watchdog.restart();
        }
      } finally {
        // The connection is done with: flushing and hashing may take their time.
        watchdog.stop();
        // Whatever arrived is kept: the next attempt resumes after it.
        await output.close();
      }
    }
    if (options.durable) await handle.datasync();
  } catch (error) {
    hasher?.dispose();
    throw asLocalError(error, options.volume, total === undefined || writer === undefined ? 0 : total - writer.position);
  } finally {
    await handle.close();
  }
  const position = writer.position;

  if (total !== undefined && position !== total) {
    hasher.dispose();
    throw new Error(`the connection ended after ${position} of ${total} bytes`);
  }
  const { sha256, gitSha1 } = await hasher.digest(position);
  if (file.sha256 !== undefined && sha256 !== file.sha256) {
    await rm(part, { force: true });
    throw new ChecksumMismatchError(model, file.path, 'sha256', file.sha256, sha256, `deleted ${path.basename(part)}`);
  }
  if (gitSha1 !== undefined && file.gitBlobSha1 !== undefined && gitSha1 !== file.gitBlobSha1) {
    await rm(part, { force: true });
    throw new ChecksumMismatchError(model, file.path, 'git-sha1', file.gitBlobSha1, gitSha1, `deleted ${path.basename(part)}`);
  }
  await rename(part, target);
  const stats = await stat(target);
  report('done', position, position, resumedFrom);
  return { path: file.path, size: position, sha256, mtimeMs: mtimeOf(stats), bytesTransferred: position - offset, resumedFrom: offset };
}

/** SHA-256 (and size) of a whole file. */
export async function sha256OfFile(file: string, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: REHASH_CHUNK_BYTES, ...(signal === undefined ? {} : { signal }) })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Throws {@link InsufficientSpaceError} when the volume has fewer than `bytes` free. */
export async function checkFreeSpace(volume: string, bytes: number, what: string): Promise<void> {
  if (bytes <= 0) return;
  const free = await freeBytes(volume);
  if (free < bytes) throw new InsufficientSpaceError(volume, bytes, free, what);
}

/** A source sent nothing for `idleMs`. Retried like a cut connection; after the last attempt, the cause of a {@link DownloadError}. */
class StalledConnectionError extends Error {
  override readonly name = 'StalledConnectionError';
  readonly idleMs: number;

  constructor(idleMs: number) {
    super(`no data for ${idleMs} ms: the connection stalled`);
    this.idleMs = idleMs;
  }
}

/**
 * Aborts an attempt once nothing has been received for `idleMs`; `restart()` on each chunk. One
 * clock sleep per idle period, not one timer per chunk: it sleeps until the deadline, then again
 * for whatever a chunk received meanwhile moved it by.
 */
class StallWatchdog {
  /** Set when the watchdog aborted the attempt. */
  stalled: StalledConnectionError | undefined;
  readonly #clock: Clock;
  readonly #stopped = new AbortController();
  #lastActivity: number;

  constructor(clock: Clock, idleMs: number, attempt: AbortController) {
    this.#clock = clock;
    this.#lastActivity = clock.now();
    void this.#watch(idleMs, attempt);
  }

  restart(): void {
    this.#lastActivity = this.#clock.now();
  }

  stop(): void {
    this.#stopped.abort();
  }

  async #watch(idleMs: number, attempt: AbortController): Promise<void> {
    const stopped = this.#stopped.signal;
    while (!stopped.aborted && !attempt.signal.aborted) {
      const left = this.#lastActivity + idleMs - this.#clock.now();
      if (left <= 0) {
        this.stalled = new StalledConnectionError(idleMs);
        attempt.abort(this.stalled);
        return;
      }
      await this.#clock.sleep(left, stopped);
    }
  }
}

function isRetryable(error: unknown): boolean {
  if (isModelsError(error)) return false;
  if (error instanceof Error && error.name === 'AbortError') return false;
  // Local filesystem failures (they name a path) will not go away by asking the network again.
  return !isLocalFsError(error);
}

function isLocalFsError(error: unknown): boolean {
  const e = error as { syscall?: unknown; path?: unknown } | null;
  return typeof e?.syscall === 'string' && typeof e.path === 'string';
}

function asLocalError(error: unknown, volume: string, remaining: number): unknown {
  if ((error as NodeJS.ErrnoException | null)?.code === 'ENOSPC') return new InsufficientSpaceError(volume, remaining, 0, 'the rest of the download');
  return error;
}

/**
 * Appends chunks to a file: a write starts as soon as the previous one is done, carrying every
 * chunk that arrived meanwhile in one `writev`. Writes follow the network without holding bytes
 * back (a stalled connection's bytes are on disk, and survive a kill), and batch by themselves when
 * the disk is the slower side. Reading waits while more than {@link WRITE_QUEUE_BYTES} are queued.
 */
class BatchedWriter {
  readonly #handle: FileHandle;
  readonly #onWritten: (end: number) => void;
  #position: number;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #writing: Promise<void> | undefined;
  #failure: unknown;
  readonly #durable: boolean;
  #syncedUpTo: number;
  #syncing: Promise<void> | undefined;

  constructor(handle: FileHandle, position: number, durable: boolean, onWritten: (end: number) => void) {
    this.#handle = handle;
    this.#position = position;
    this.#durable = durable;
    this.#syncedUpTo = position;
    this.#onWritten = onWritten;
  }

  /** Where the next byte goes (everything pushed so far, written or queued). */
  get position(): number {
    return this.#position + this.#queuedBytes;
  }

  async push(chunk: Uint8Array): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.byteLength;
    if (this.#writing === undefined) this.#writing = this.#drain();
    else if (this.#queuedBytes >= WRITE_QUEUE_BYTES) await this.#writing;
  }

  /** Waits for every queued byte to be written (and for a flush under way). */
  async close(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
    await this.#syncing;
    if (this.#failure !== undefined) throw this.#failure;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queuedBytes > 0) {
        const buffers = this.#queue;
        const at = this.#position;
        const length = this.#queuedBytes;
        this.#queue = [];
        this.#queuedBytes = 0;
        this.#position += length;
        await writeAll(this.#handle, buffers, at, length);
        this.#onWritten(at + length);
        if (this.#durable && this.#syncing === undefined && at + length - this.#syncedUpTo >= SYNC_EVERY_BYTES) {
          this.#syncedUpTo = at + length;
          this.#syncing = this.#handle.datasync().then(
            () => (this.#syncing = undefined),
            (error: unknown) => {
              this.#failure ??= error;
              this.#syncing = undefined;
            },
          );
        }
      }
    } catch (error) {
      this.#failure ??= error;
    } finally {
      this.#writing = undefined;
    }
  }
}

/** `writev` may write less than asked (rare on regular files, possible near size limits): write the rest. */
async function writeAll(handle: FileHandle, buffers: Uint8Array[], at: number, length: number): Promise<void> {
  const { bytesWritten } = await handle.writev(buffers, at);
  if (bytesWritten >= length) return;
  const rest = Buffer.concat(buffers).subarray(bytesWritten);
  for (let done = 0; done < rest.length; ) done += (await handle.write(rest, done, rest.length - done, at + bytesWritten + done)).bytesWritten;
}
