import type { Clock } from '@kiln/protocol';
import type { Logger } from './log.ts';

/** Where setup stands. */
export type SetupState = 'pending' | 'running' | 'ready' | 'failed';

/** Why setup failed, kept for every job the worker takes afterwards. */
export interface SetupFailure {
  message: string;
  type: string;
  traceback: string;
}

/**
 * Runs `setup()` at most once (single-flight), with an optional time limit, and never throws:
 * a failure is kept and reported on every job, on ping and on local health instead of crashing
 * the process (the seeds' "exit code 1" at import).
 */
export class SetupGate<State> {
  #state: SetupState = 'pending';
  #value: State | undefined;
  #failure: SetupFailure | undefined;
  #running: Promise<void> | undefined;
  #startedAt: number | undefined;
  #durationMs: number | undefined;
  readonly #setup: (() => State | Promise<State>) | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #clock: Clock;
  readonly #log: Logger;

  constructor(options: {
    setup: (() => State | Promise<State>) | undefined;
    timeoutMs: number | undefined;
    clock: Clock;
    log: Logger;
  }) {
    this.#setup = options.setup;
    this.#timeoutMs = options.timeoutMs;
    this.#clock = options.clock;
    this.#log = options.log;
  }

  get state(): SetupState {
    return this.#state;
  }
  get failure(): SetupFailure | undefined {
    return this.#failure;
  }
  get value(): State {
    return this.#value as State;
  }
  /** How long setup took, once it ended. */
  get durationMs(): number | undefined {
    return this.#durationMs;
  }

  /** Runs setup if it has not run yet; resolves when it has ended, whatever the outcome. */
  run(): Promise<void> {
    this.#running ??= this.#runOnce();
    return this.#running;
  }

  async #runOnce(): Promise<void> {
    if (!this.#setup) {
      this.#state = 'ready';
      this.#durationMs = 0;
      return;
    }
    this.#state = 'running';
    this.#startedAt = this.#clock.now();
    this.#log.info('setup started');
    const limit = new AbortController();
    const timeout =
      this.#timeoutMs === undefined
        ? new Promise<never>(() => {})
        : this.#clock.sleep(this.#timeoutMs, limit.signal).then(() => {
            if (!limit.signal.aborted) throw new SetupTimeout(this.#timeoutMs ?? 0);
          });
    const setup = this.#setup;
    try {
      this.#value = await Promise.race([Promise.resolve().then(() => setup()), timeout as Promise<never>]);
      this.#state = 'ready';
      this.#durationMs = this.#clock.now() - this.#startedAt;
      this.#log.info('setup finished', { setupMs: this.#durationMs });
    } catch (err) {
      this.#state = 'failed';
      this.#durationMs = this.#clock.now() - this.#startedAt;
      const message = err instanceof SetupTimeout ? err.message : `setup failed: ${err instanceof Error ? err.message : String(err)}`;
      this.#failure = {
        message,
        type: err instanceof SetupTimeout ? 'SetupTimeoutError' : 'SetupError',
        traceback: err instanceof Error && !(err instanceof SetupTimeout) ? (err.stack ?? '') : '',
      };
      // Loud, but the process stays up: every job will fail with this message.
      this.#log.error(message, { traceback: this.#failure.traceback || undefined });
    } finally {
      limit.abort();
    }
  }
}

class SetupTimeout extends Error {
  constructor(ms: number) {
    super(`setup did not finish within ${ms} ms (setupTimeoutMs)`);
  }
}
