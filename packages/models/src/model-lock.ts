import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { ModelLockError } from './errors.ts';
import { lockTarget } from './volume.ts';

/** Time as this package sees it: injected so tests never sleep (same shape as `@kiln/protocol`'s Clock). */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or early (never rejects) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The wall clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/** How model locks behave. */
export interface LockTiming {
  /** A lock whose holder has not refreshed it for this long is taken over (the holder died). */
  readonly staleMs: number;
  /** How often the holder refreshes its lock. */
  readonly updateMs: number;
  /** How often a waiter tries again. */
  readonly pollMs: number;
}

/**
 * Lock policy: a holder refreshes every 5 s and is presumed dead after 30 s without a refresh (a
 * network volume's mtime can lag); waiters look again every 250 ms.
 */
export const LOCK_TIMING: LockTiming = Object.freeze({ staleMs: 30_000, updateMs: 5_000, pollMs: 250 });

/** A held model lock. */
export interface HeldModelLock {
  /** Aborts when the lock is lost (another process took it over, the volume went away): stop writing. */
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

/** Options of {@link acquireModelLock}. */
export interface AcquireOptions {
  clock: Clock;
  timing: LockTiming;
  signal?: AbortSignal | undefined;
  /** Called once when the lock is held by someone else and this call starts waiting. */
  onWait?: (() => void) | undefined;
}

/**
 * Takes the cross-process lock of one model on a volume (proper-lockfile: an atomic `mkdir`, kept
 * fresh by its holder, taken over when stale), waiting while another process holds it. Rejects with
 * the signal's reason when `signal` aborts.
 *
 * @example
 * const lock = await acquireModelLock('/runpod-volume', 'sam3', { clock: systemClock, timing: LOCK_TIMING });
 * try { … } finally { await lock.release(); }
 */
export async function acquireModelLock(volume: string, model: string, options: AcquireOptions): Promise<HeldModelLock> {
  const lockPath = lockTarget(volume, model);
  await mkdir(path.dirname(lockPath), { recursive: true });
  let waiting = false;
  for (;;) {
    options.signal?.throwIfAborted();
    const lost = new AbortController();
    try {
      const release = await lockfile.lock(lockPath.slice(0, -'.lock'.length), {
        lockfilePath: lockPath,
        realpath: false,
        retries: 0,
        stale: options.timing.staleMs,
        update: options.timing.updateMs,
        onCompromised: (cause: Error) => lost.abort(new ModelLockError(model, lockPath, `lost the lock while writing: ${cause.message}`, { cause })),
      });
      return {
        signal: lost.signal,
        release: async () => {
          try {
            await release();
          } catch (error) {
            // Released already because it was compromised: the new holder owns it now.
            if (!lost.signal.aborted) throw error;
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') {
        throw new ModelLockError(model, lockPath, `cannot take the lock: ${(error as Error).message}`, { cause: error });
      }
    }
    if (!waiting) {
      waiting = true;
      options.onWait?.();
    }
    await options.clock.sleep(options.timing.pollMs, options.signal);
  }
}
