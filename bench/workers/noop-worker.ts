/**
 * A kiln worker whose handler does nothing but stamp the time it started, for the take → handler
 * start and throughput benchmarks. `BENCH_CONCURRENCY` sets its concurrency (default 1).
 * Run as `node --conditions=kiln-source --import tsx bench/workers/noop-worker.ts` with RUNPOD_* set.
 */
import { performance } from 'node:perf_hooks';
import { defineWorker } from '@kiln/worker';

const concurrency = Number(process.env['BENCH_CONCURRENCY'] ?? '1');

/** The handler's output: when it started, on CLOCK_MONOTONIC (`hr`) and on `performance.timeOrigin + now()` (`wall`), ms. */
export interface HandlerStamp {
  hr: number;
  wall: number;
}

export default defineWorker({
  concurrency,
  handler(): HandlerStamp {
    return { hr: Number(process.hrtime.bigint()) / 1e6, wall: performance.timeOrigin + performance.now() };
  },
});
