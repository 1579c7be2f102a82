import { performance } from 'node:perf_hooks';
import { formatPingQuery, parseStopResponse, parseTakeResponse, type Job } from '@kiln/protocol';
import type { Clock } from '@kiln/protocol';
import type { KilnWorker } from './define-worker.ts';
import { describe, RUNTIME_VERSION, type ErrorOrigin } from './error-body.ts';
import { HttpClient, type HttpResponse } from './http-client.ts';
import { startJob, type RunningJob } from './job-runner.ts';
import { JobPoster } from './job-poster.ts';
import type { JobUrls } from './job-urls.ts';
import type { Logger } from './log.ts';
import type { SetupGate } from './setup-gate.ts';

/** Waits and caps of the production loop. */
export const LOOP_TIMINGS = {
  /** Long-polls (take, stop) are cut client-side after this, as runpod-python does. */
  longPollCapMs: 90_000,
  /** After a 429 the platform asked us to slow down: wait this long (runpod-python: 5 s). */
  rateLimitWaitMs: 5000,
  /** An empty take answered faster than this is followed by a wait, so a server that does not long-poll is not hammered. */
  minEmptyTakeMs: 250,
  /** job-stop polls are at least this far apart (runpod-python sleeps 1 s between them). */
  minStopPollMs: 1000,
  /** Back-off after a failed take: doubles from the first value up to the second. */
  takeErrorBackoffMs: [100, 5000] as const,
  /**
   * Consecutive 401/403 answers to job-take after which the worker exits (code 1): its key is no
   * longer valid (e.g. the gateway that spawned it died and a new one does not know it), and a
   * worker that can never take a job again should not live on as an orphan.
   */
  maxAuthFailures: 5,
} as const;

/** With a setup longer than this, pinging starts before the first take. */
export const PING_DURING_SETUP_MS = 500;

/** What the production loop needs. */
export interface JobLoopOptions {
  worker: KilnWorker;
  setup: SetupGate<unknown>;
  urls: JobUrls;
  apiKey: string | undefined;
  origin: ErrorOrigin;
  pingIntervalMs: number;
  /** runpod-python pings only when it has both an API key and a worker id. */
  pingEnabled: boolean;
  clock: Clock;
  log: Logger;
  tmpRoot?: string;
  /** Called once the first take is out (or setup has run for a while): deferred start-up work may begin. */
  onRunning?: () => void;
}

/**
 * RunPod's worker protocol, event-driven: a take goes out the moment a slot is free, a job starts
 * the moment its take answer arrives, results are posted while the next take is already waiting.
 * Three loops share one keep-alive agent: take, job-stop, ping.
 */
export class JobLoop {
  readonly #o: JobLoopOptions;
  readonly #http = new HttpClient();
  readonly #headers: Record<string, string>;
  readonly #running = new Map<string, RunningJob>();
  readonly #posting = new Set<string>();
  readonly #takeAbort = new AbortController();
  readonly #loopAbort = new AbortController();
  #slotWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  #capacity = 1;
  #stopping = false;
  #ended: Promise<void> | undefined;
  #loops: Promise<void>[] = [];
  #jobsTaken = 0;
  #exitCode = 0;
  #afterFirstTake: () => void = () => {};
  #markEnded: () => void = () => {};
  readonly #endedPromise = new Promise<void>((resolve) => {
    this.#markEnded = resolve;
  });

  constructor(options: JobLoopOptions) {
    this.#o = options;
    this.#headers = {
      'content-type': 'application/json',
      accept: 'application/json',
      'user-agent': `${RUNTIME_VERSION} (${process.platform}; ${process.arch}) Node/${process.versions.node}`,
    };
    if (options.apiKey) this.#headers['authorization'] = options.apiKey;
  }

  /** Jobs started so far. */
  get jobsTaken(): number {
    return this.#jobsTaken;
  }

  /** The process exit code the loop asks for: 0, or 1 after the platform kept refusing the worker's key. */
  get exitCode(): number {
    return this.#exitCode;
  }

  /** True once the loop stopped taking jobs (shutdown or refresh). */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Starts pinging, runs setup when it is eager, then starts taking jobs. */
  async start(): Promise<void> {
    // Cold start is spawn → first job-take: the take goes out first, and the ping and job-stop loops
    // start one event-loop turn later so their connects do not compete with it. A long setup still
    // pings (after PING_DURING_SETUP_MS) so the platform sees the worker alive.
    let pinging = false;
    const startPinging = () => {
      if (pinging) return;
      pinging = true;
      this.#o.onRunning?.();
      this.#loops.push(this.#pingLoop());
    };
    const setupWait = new AbortController();
    void this.#o.clock.sleep(PING_DURING_SETUP_MS, setupWait.signal).then(() => {
      if (!setupWait.signal.aborted) startPinging();
    });
    this.#afterFirstTake = () => {
      this.#afterFirstTake = () => {};
      setupWait.abort();
      setImmediate(() => {
        startPinging();
        this.#loops.push(this.#stopLoop());
      });
    };
    if ((this.#o.worker.definition.load ?? 'eager') === 'eager') await this.#o.setup.run();
    if (this.#stopping) {
      setupWait.abort();
      this.#o.onRunning?.();
      return;
    }
    this.#loops.push(this.#takeLoop());
  }

  /**
   * Stops taking jobs, lets the ones in flight finish and post their results, then ends the loops.
   * After `drainTimeoutMs` the jobs' signals abort; jobs aborted that way are not reported, so the
   * platform requeues them.
   */
  stop(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.#beginStopping();
    this.#ended ??= this.#drainAndEnd(options.drainTimeoutMs ?? this.#o.worker.definition.drainTimeoutMs ?? 60_000);
    return this.#ended;
  }

  /** Aborts every job in flight with cause `shutdown` (a second SIGTERM). */
  abortAll(): void {
    for (const job of this.#running.values()) job.abort('shutdown');
  }

  /** Resolves when the loop has ended (after `stop()`, or after a refresh asked for by a job). */
  get ended(): Promise<void> {
    return this.#endedPromise;
  }

  #beginStopping(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#takeAbort.abort();
    this.#wake(this.#slotWaiters);
  }

  async #drainAndEnd(drainTimeoutMs: number): Promise<void> {
    const drained = this.#whenIdle();
    const timer = new AbortController();
    const timedOut = this.#o.clock.sleep(drainTimeoutMs, timer.signal).then(() => !timer.signal.aborted);
    if (this.#running.size > 0) this.#o.log.info(`draining ${this.#running.size} job(s) before exit`);
    const first = await Promise.race([drained.then(() => false), timedOut]);
    if (first) {
      this.#o.log.warn(`jobs still running after ${drainTimeoutMs} ms of draining; aborting them`);
      this.abortAll();
      await drained;
    }
    timer.abort();
    this.#loopAbort.abort();
    await Promise.allSettled(this.#loops);
    this.#http.close();
    this.#markEnded();
  }

  #whenIdle(): Promise<void> {
    if (this.#running.size === 0 && this.#posting.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #wake(waiters: (() => void)[]): void {
    for (const w of waiters.splice(0)) w();
  }

  #currentCapacity(): number {
    const c = this.#o.worker.definition.concurrency;
    if (typeof c === 'number') return c;
    if (c === undefined) return 1;
    try {
      const next = c(this.#capacity);
      if (Number.isInteger(next) && next >= 1) this.#capacity = next;
      else this.#o.log.error(`concurrency() returned ${String(next)}; keeping ${this.#capacity}`);
    } catch (err) {
      this.#o.log.error(`concurrency() threw: ${describe(err)}; keeping ${this.#capacity}`);
    }
    return this.#capacity;
  }

  async #takeLoop(): Promise<void> {
    const { clock, log, urls } = this.#o;
    let backoff = 0;
    let authFailures = 0;
    const wait = (ms: number) => clock.sleep(ms, this.#takeAbort.signal);
    while (!this.#stopping) {
      const free = this.#currentCapacity() - this.#running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
        continue;
      }
      // Jobs whose handler still runs; a result being posted no longer counts (runpod-python has posted it by the time it takes again).
      const inProgress = this.#running.size > 0;
      const url = free > 1 ? urls.takeBatch(free, inProgress) : urls.take(inProgress);
      const started = performance.now();
      let res: HttpResponse;
      try {
        const pending = this.#http.request(url, {
          method: 'GET',
          headers: this.#headers,
          signal: this.#takeAbort.signal,
          timeoutMs: LOOP_TIMINGS.longPollCapMs,
        });
        this.#afterFirstTake();
        res = await pending;
      } catch (err) {
        if (this.#stopping) break;
        backoff = nextBackoff(backoff);
        log.warn(`job-take failed: ${describe(err)}; retrying in ${backoff} ms`);
        await wait(backoff);
        continue;
      }
      if (res.status !== 401 && res.status !== 403) authFailures = 0;
      if (res.status === 200) {
        const jobs = this.#readJobs(res);
        if (jobs === undefined) {
          backoff = nextBackoff(backoff);
          await wait(backoff);
          continue;
        }
        backoff = 0;
        for (const job of jobs) this.#launch(job);
        if (jobs.length === 0) await wait(Math.max(0, LOOP_TIMINGS.minEmptyTakeMs - (performance.now() - started)));
      } else if (res.status === 204 || res.status === 400) {
        // 400 means "no job" too (runpod-python: expected with FlashBoot).
        backoff = 0;
        const elapsed = performance.now() - started;
        if (elapsed < LOOP_TIMINGS.minEmptyTakeMs) await wait(LOOP_TIMINGS.minEmptyTakeMs - elapsed);
      } else if (res.status === 401 || res.status === 403) {
        authFailures++;
        if (authFailures >= LOOP_TIMINGS.maxAuthFailures) {
          log.error(`job-take refused this worker's key ${authFailures} times in a row (${res.status}): exiting`);
          this.#exitCode = 1;
          void this.stop();
          break;
        }
        backoff = nextBackoff(backoff);
        log.warn(`job-take answered ${res.status} (key refused); retrying in ${backoff} ms`);
        await wait(backoff);
        continue;
      } else if (res.status === 429) {
        log.warn(`job-take rate-limited (429); waiting ${LOOP_TIMINGS.rateLimitWaitMs} ms`);
        await wait(LOOP_TIMINGS.rateLimitWaitMs);
      } else {
        backoff = nextBackoff(backoff);
        log.warn(`job-take answered ${res.status}; retrying in ${backoff} ms`, { body: res.body.slice(0, 200) });
        await wait(backoff);
      }
    }
  }

  /** The jobs of a 200 take answer; undefined (after logging) when the answer is not usable. */
  #readJobs(res: HttpResponse): Job[] | undefined {
    const { log } = this.#o;
    const type = String(res.headers['content-type'] ?? '');
    if (!type.includes('application/json') || res.body.length === 0) {
      log.error(`job-take answer skipped: expected a JSON body, got ${res.body.length} bytes of '${type || 'no content type'}'`);
      return undefined;
    }
    let value: unknown;
    try {
      value = JSON.parse(res.body);
    } catch (err) {
      log.error(`job-take answer skipped: not JSON (${describe(err)})`);
      return undefined;
    }
    try {
      const { jobs, rejected } = parseTakeResponse(value);
      for (const r of rejected) log.error(`job-take answer item ${r.index} skipped: ${r.error.message}`);
      return jobs;
    } catch (err) {
      log.error(`job-take answer skipped: ${describe(err)}`);
      return undefined;
    }
  }

  #launch(job: Job): void {
    const { urls, clock, log } = this.#o;
    if (this.#running.has(job.id) || this.#posting.has(job.id)) {
      log.warn(`job ${job.id} was handed out again while this worker still holds it; ignoring the duplicate`);
      return;
    }
    this.#jobsTaken++;
    const poster = new JobPoster(job.id, { http: this.#http, urls, headers: this.#headers, clock, log });
    const running = startJob(job, {
      definition: this.#o.worker.definition,
      setup: this.#o.setup,
      clock,
      log,
      origin: this.#o.origin,
      channel: poster,
      ...(this.#o.tmpRoot === undefined ? {} : { tmpRoot: this.#o.tmpRoot }),
    });
    this.#running.set(job.id, running);
    void running.outcome.then(async (outcome) => {
      this.#running.delete(job.id);
      this.#posting.add(job.id);
      if (running.refresh) this.#refresh();
      this.#wake(this.#slotWaiters);
      if (outcome.kind === 'result') await poster.finish(outcome.body, outcome.isStream);
      else log.forJob(job.id).info(outcome.cause === 'job-stop' ? 'Job stopped.' : `job abandoned (${outcome.cause}); not reporting it`);
      this.#posting.delete(job.id);
      if (this.#running.size === 0 && this.#posting.size === 0) this.#wake(this.#idleWaiters);
    });
  }

  #refresh(): void {
    if (this.#stopping) return;
    this.#o.log.info('refresh requested: taking no more jobs; the worker exits once in-flight jobs are reported');
    void this.stop();
  }

  async #stopLoop(): Promise<void> {
    const url = this.#o.urls.stop;
    if (!url) return;
    const { clock, log } = this.#o;
    const signal = this.#loopAbort.signal;
    while (!signal.aborted) {
      const started = performance.now();
      let wait: number = LOOP_TIMINGS.minStopPollMs;
      try {
        const res = await this.#http.request(url, { method: 'GET', headers: this.#headers, signal, timeoutMs: LOOP_TIMINGS.longPollCapMs });
        if (res.status === 200) {
          const { jobsToStop } = parseStopResponse(JSON.parse(res.body));
          for (const id of jobsToStop) {
            const job = this.#running.get(id);
            if (!job) continue;
            log.forJob(id).info('Stopping job.');
            job.abort('job-stop');
          }
        } else if (res.status === 429) {
          wait = LOOP_TIMINGS.rateLimitWaitMs;
        }
      } catch (err) {
        if (signal.aborted) break;
        log.debug(`job-stop poll failed: ${describe(err)}`);
      }
      const elapsed = performance.now() - started;
      if (wait === LOOP_TIMINGS.rateLimitWaitMs || elapsed < wait) await clock.sleep(wait === LOOP_TIMINGS.rateLimitWaitMs ? wait : wait - elapsed, signal);
    }
  }

  async #pingLoop(): Promise<void> {
    if (!this.#o.pingEnabled) return;
    const { clock, log, urls, setup, pingIntervalMs } = this.#o;
    const signal = this.#loopAbort.signal;
    while (!signal.aborted) {
      const failure = setup.state === 'failed' ? setup.failure : undefined;
      const query = formatPingQuery({
        jobIds: [...this.#running.keys(), ...this.#posting],
        runpodVersion: RUNTIME_VERSION,
        ...(failure ? { status: 'unhealthy' as const, check: 'setup', reason: failure.message } : {}),
      });
      const url = urls.ping(query);
      if (url === undefined) return;
      try {
        await this.#http.request(url, { method: 'GET', headers: this.#headers, signal, timeoutMs: 2 * pingIntervalMs });
      } catch (err) {
        if (signal.aborted) break;
        log.debug(`ping failed: ${describe(err)}`);
      }
      await clock.sleep(pingIntervalMs, signal);
    }
  }
}

function nextBackoff(previous: number): number {
  const [first, max] = LOOP_TIMINGS.takeErrorBackoffMs;
  return previous === 0 ? first : Math.min(max, previous * 2);
}
