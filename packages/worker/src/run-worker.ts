import { realClock, type Clock } from '@kiln/protocol';
import { markStarted, type KilnWorker } from './define-worker.ts';
import { describeLine } from './describe-input.ts';
import { JobLoop } from './job-loop.ts';
import { resolveJobUrls } from './job-urls.ts';
import { createLogger, deferredSink, stderrSink, stdoutSink, type LogSink } from './log.ts';
import { SetupGate } from './setup-gate.ts';
import { readWorkerEnvironment, type WorkerEnvironment } from './worker-env.ts';

/** Options of {@link runWorker}; all default to the real process. */
export interface RunWorkerOptions {
  /** Parsed environment; default: `readWorkerEnvironment()` of this process. */
  environment?: WorkerEnvironment;
  clock?: Clock;
  /** Where log lines go; default stdout (stderr in the local modes, so stdout carries only results). */
  logSink?: LogSink;
  /** Handle SIGTERM/SIGINT (drain, then exit). Default true. */
  handleSignals?: boolean;
  /** Root for per-job temporary folders; default the OS temp folder. */
  tmpRoot?: string;
  /** Called once the mode is up, with the local API's address in `--serve-api` mode. */
  onReady?: (info: { mode: WorkerEnvironment['mode']['kind']; url?: string; stop: () => Promise<void> }) => void;
}

/**
 * Runs a worker in the mode its environment asks for and resolves with the process exit code:
 * production (RunPod's job protocol), `--test-input` (one job), `--serve-api` (local endpoint API), or
 * describe (`KILN_DESCRIBE=1`: one stdout line `{"kilnDescribe":1,"input":<JSON Schema or null>}`, then 0).
 *
 * @example
 * import worker from './worker.ts';
 * process.exitCode = await runWorker(worker);
 */
export async function runWorker(worker: KilnWorker, options: RunWorkerOptions = {}): Promise<number> {
  markStarted(worker);
  const environment = options.environment ?? readWorkerEnvironment();
  const clock = options.clock ?? realClock;
  const { mode } = environment;
  if (mode.kind === 'describe') {
    // Before the setup gate and the logger exist: describing must not load models or print anything else.
    process.stdout.write(describeLine(worker) + '\n');
    return 0;
  }
  const local = mode.kind !== 'production';
  const sink = deferredSink(options.logSink ?? (local ? stderrSink : stdoutSink));
  if (local) sink.release();
  const log = createLogger({ sink, level: environment.logLevel });
  const shutdown = new AbortController();
  const setup = new SetupGate<unknown>({
    setup: worker.definition.setup ? () => worker.definition.setup!({ workerId: environment.workerId, log, signal: shutdown.signal }) : undefined,
    timeoutMs: worker.definition.setupTimeoutMs,
    clock,
    log,
  });
  const origin = {
    get hostname() {
      return environment.hostname;
    },
    workerId: environment.workerId,
  };

  switch (mode.kind) {
    case 'usage':
      process.stderr.write(mode.message + '\n');
      return 2;
    case 'test-input': {
      const { runTestInput } = await import('./local-test.ts');
      return runTestInput(worker, mode.testInput, { setup, clock, log, origin, ...(options.tmpRoot ? { tmpRoot: options.tmpRoot } : {}) });
    }
    case 'serve-api': {
      const { LocalApi } = await import('./local-api.ts');
      const api = new LocalApi(worker, { setup, clock, log, origin, ...(options.tmpRoot ? { tmpRoot: options.tmpRoot } : {}) });
      const url = await api.start(mode.host, mode.port);
      process.stderr.write(`kiln worker: RunPod endpoint API on ${url} (POST /run, /runsync; GET /status/{id}, /stream/{id}, /health; POST /cancel/{id})\n`);
      const stopped = new Promise<void>((resolve) => {
        const stop = () => void api.stop().then(resolve);
        if (options.handleSignals !== false) {
          process.once('SIGTERM', stop);
          process.once('SIGINT', stop);
        }
        options.onReady?.({ mode: mode.kind, url, stop: () => api.stop().then(resolve) });
      });
      await stopped;
      shutdown.abort();
      return 0;
    }
    case 'production': {
      const loop = new JobLoop({
        worker,
        setup,
        urls: resolveJobUrls(mode.templates, environment.workerId),
        apiKey: mode.apiKey,
        origin,
        pingIntervalMs: mode.pingIntervalMs,
        pingEnabled: mode.pingEnabled,
        clock,
        log,
        onRunning: () => sink.release(),
        ...(options.tmpRoot ? { tmpRoot: options.tmpRoot } : {}),
      });
      if (options.handleSignals !== false) {
        const onSignal = (name: string) => {
          if (!loop.stopping) {
            log.info(`${name}: taking no more jobs; finishing the ones in flight`);
            void loop.stop();
          } else {
            log.warn(`${name} again: aborting in-flight jobs`);
            loop.abortAll();
          }
        };
        process.on('SIGTERM', () => onSignal('SIGTERM'));
        process.on('SIGINT', () => onSignal('SIGINT'));
      }
      options.onReady?.({ mode: mode.kind, stop: () => loop.stop() });
      await loop.start();
      await loop.ended;
      shutdown.abort();
      sink.release();
      log.info('worker exiting', { jobs: loop.jobsTaken });
      return loop.exitCode;
    }
  }
}

/** Runs a worker as the process's main module and exits with its code. */
export async function runWorkerAsMain(worker: KilnWorker, options: RunWorkerOptions = {}): Promise<void> {
  let code: number;
  try {
    code = await runWorker(worker, options);
  } catch (err) {
    process.stderr.write(`kiln worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    code = 1;
  }
  // Let stdout drain, then exit even if a handler left timers or sockets behind.
  process.stdout.write('', () => process.exit(code));
}
