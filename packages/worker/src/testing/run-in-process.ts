import type { Clock } from '@kiln/protocol';
import type { KilnWorker } from '../define-worker.ts';
import { runWorker } from '../run-worker.ts';
import { readWorkerEnvironment } from '../worker-env.ts';
import type { LoopbackJobServer } from './loopback-job-server.ts';

/** A worker running in this process against a {@link LoopbackJobServer}. */
export interface InProcessWorker {
  /** Every log line the worker wrote, parsed. */
  logs: Record<string, unknown>[];
  /** Resolves with the exit code `runWorker` returned. */
  exited: Promise<number>;
  /** Graceful stop: no more takes, in-flight jobs finish and are reported. */
  stop(): Promise<void>;
}

/**
 * Runs `worker` in production mode in this process, against `server`, without touching the
 * process's signals. For tests of a worker's protocol behaviour.
 *
 * @example
 * const w = startWorkerInProcess(worker, server, { workerId: 'w1' });
 * server.enqueue({ id: 'j1', input: {} });
 * await server.waitForResult('j1');
 * await w.stop();
 */
export function startWorkerInProcess(
  worker: KilnWorker,
  server: LoopbackJobServer,
  options: { workerId?: string; pingIntervalMs?: number; gpu?: string; clock?: Clock; tmpRoot?: string; env?: Record<string, string> } = {},
): InProcessWorker {
  const logs: Record<string, unknown>[] = [];
  let stopFn: (() => Promise<void>) | undefined;
  let readyResolve: () => void = () => {};
  const ready = new Promise<void>((resolve) => (readyResolve = resolve));
  const env = {
    ...server.workerEnv(options.workerId ?? 'worker-abc123', { pingIntervalMs: options.pingIntervalMs ?? 60_000, ...(options.gpu ? { gpu: options.gpu } : {}) }),
    RUNPOD_LOG_LEVEL: 'DEBUG',
    ...options.env,
  };
  const exited = runWorker(worker, {
    environment: readWorkerEnvironment(env, []),
    handleSignals: false,
    logSink: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.tmpRoot ? { tmpRoot: options.tmpRoot } : {}),
    onReady: ({ stop }) => {
      stopFn = stop;
      readyResolve();
    },
  });
  return {
    logs,
    exited,
    async stop() {
      await ready;
      await stopFn?.();
      await exited;
    },
  };
}
