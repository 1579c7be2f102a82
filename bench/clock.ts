/**
 * Time bases. The loopback server stamps requests with `performance.timeOrigin + performance.now()`
 * (wall clock at process start plus a monotonic offset); comparing that with the same expression
 * in another process mixes two wall-clock readings taken at different times, so cross-process
 * intervals are taken on CLOCK_MONOTONIC (`process.hrtime`), which every process on Linux shares.
 */
import { performance } from 'node:perf_hooks';

/** This process's `performance.now()` origin on CLOCK_MONOTONIC, in ms (read back to back: µs error). */
const HR_ORIGIN_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** Now, in the loopback server's time base (`performance.timeOrigin + performance.now()`). */
export function serverTime(): number {
  return performance.timeOrigin + performance.now();
}

/** CLOCK_MONOTONIC in ms: comparable across processes on one Linux machine. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Converts a time stamped in this process's server time base to CLOCK_MONOTONIC ms. */
export function serverTimeToMonotonic(t: number): number {
  return t - performance.timeOrigin + HR_ORIGIN_MS;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
