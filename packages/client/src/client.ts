import { CLIENT_LIMITS, ProtocolParseError, parseHealthResponse, parseRunResponse, realClock } from '@kiln/protocol';
import type { Clock, HealthResponse, PurgeQueueResponse, RunPolicy, S3Config, WebhookEvent } from '@kiln/protocol';
import { UnexpectedResponseError, isRecord } from './errors.ts';
import { joinUrl, requestJson } from './http.ts';
import type { FetchFunction, Transport } from './http.ts';
import { streamJob } from './job-stream.ts';
import type { StreamContext, StreamOptions } from './job-stream.ts';
import { isFinished, readJobStatus } from './job-status.ts';
import type { FinishedJob, JobRef, JobStatus } from './job-status.ts';
import { waitForJob } from './wait-for.ts';
import type { WaitContext, WaitForOptions } from './wait-for.ts';

/** Options of {@link kiln}. */
export interface KilnOptions {
  /**
   * Where endpoints live, without the endpoint id: `https://api.runpod.ai/v2` for RunPod,
   * `http://127.0.0.1:8080/v2` for a local kiln gateway.
   */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`; leave out for a gateway without keys. */
  apiKey?: string;
  /** The `fetch` to use (a proxy, a test double); default the global one. */
  fetch?: FetchFunction;
  /**
   * Longest wait for an answer, per request, in ms (default 30 000; 0 = none). Long-polls get the
   * time they ask the server to hold on top; a stream's timeout covers only its headers.
   */
  timeoutMs?: number;
  /** Time source for timeouts and polling pauses; tests pass a `ManualClock` from `@kiln/protocol`. */
  clock?: Clock;
}

/** Options of `run()`. */
export interface RunOptions {
  /** http(s) URL that receives the final status object (plus `input` and `webhook`). */
  webhook?: string;
  /** Which events the webhook is sent for (`start`, `progress`, `output`, `completed`; a kiln extension); default: the final one only, as on RunPod. */
  webhookEvents?: readonly WebhookEvent[];
  /** `executionTimeout`, `ttl` (ms) and `lowPriority` of this job. */
  policy?: RunPolicy;
  /** S3 credentials handed to the worker as the job's `s3Config`. */
  s3Config?: S3Config;
  /** Sent as `Idempotency-Key`: the same key and body return the same job; a different body is a 409 (`ConflictError`). */
  idempotencyKey?: string;
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** Options of `runSync()`. */
export interface RunSyncOptions extends RunOptions {
  /** `?wait=` of `/runsync` in ms (1000–300 000, default 90 000); after it, `status-sync` is long-polled until the job ends. */
  waitMs?: number;
  /** Called with each progress update seen after the first answer. */
  onProgress?: (progress: unknown) => void;
  /** See {@link WaitForOptions.pollMs}. */
  pollMs?: number;
}

/** Options of calls that only send one request. */
export interface CallOptions {
  /** Aborts the request. */
  signal?: AbortSignal | undefined;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * A client for RunPod serverless endpoints; the same code works against a kiln gateway and against
 * RunPod, only `baseUrl` and `apiKey` change.
 *
 * @example
 * const client = kiln({ baseUrl: 'http://127.0.0.1:8080/v2', apiKey: process.env.KILN_API_KEY });
 * const echo = client.endpoint<{ message: string }, { message: string }>('echo');
 * const job = await echo.runSync({ message: 'hello' });
 * if (job.status === 'COMPLETED') console.log(job.output?.message);
 */
export function kiln(options: KilnOptions): KilnClient {
  return new KilnClient(options);
}

/** What {@link kiln} returns: hands out typed endpoints sharing one set of options. */
export class KilnClient {
  /** The base URL, without a trailing slash. */
  readonly baseUrl: string;
  readonly #transport: Transport;

  constructor(options: KilnOptions) {
    const baseUrl = options.baseUrl.replace(/\/+$/, '');
    let parsed: URL;
    try {
      parsed = new URL(baseUrl);
    } catch (cause) {
      throw new TypeError(`baseUrl must be an absolute http(s) URL, got ${JSON.stringify(options.baseUrl)}`, { cause });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TypeError(`baseUrl must be an absolute http(s) URL, got ${JSON.stringify(options.baseUrl)}`);
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new TypeError(`timeoutMs must be a number ≥ 0, got ${timeoutMs}`);
    const fetchFn: FetchFunction = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.baseUrl = baseUrl;
    this.#transport = { fetch: fetchFn, apiKey: options.apiKey, timeoutMs, clock: options.clock ?? realClock };
  }

  /**
   * The endpoint `id`, typed with its input, output and stream chunk types (unchecked at run time:
   * they say what the worker accepts and returns).
   *
   * @example
   * const tts = client.endpoint<{ text: string }, { audio: string }, { pcm: string }>('tts');
   */
  endpoint<Input = unknown, Output = unknown, Chunk = unknown>(id: string): KilnEndpoint<Input, Output, Chunk> {
    return new KilnEndpoint<Input, Output, Chunk>(this.#transport, this.baseUrl, id);
  }
}

/**
 * One endpoint: RunPod's operations on it, with typed input, output and chunks. Every method
 * throws `KilnHttpError` (or a subclass) on a non-2xx answer; network errors and aborts pass through.
 */
export class KilnEndpoint<Input = unknown, Output = unknown, Chunk = unknown> {
  /** The endpoint id. */
  readonly id: string;
  readonly #transport: Transport;
  readonly #baseUrl: string;
  readonly #context: StreamContext & WaitContext;

  /** Use {@link KilnClient.endpoint}. */
  constructor(transport: Transport, baseUrl: string, id: string) {
    if (id === '') throw new TypeError('an endpoint id is required');
    this.id = id;
    this.#transport = transport;
    this.#baseUrl = baseUrl;
    this.#context = {
      transport,
      url: (segments, query) => this.#url(segments, query),
      status: (jobId, signal) => this.status(jobId, { signal }),
      statusSync: (jobId, waitMs, signal) => this.#statusSync(jobId, waitMs, signal),
    };
  }

  /**
   * Queues a job (`POST /run`) and returns its id and status (IN_QUEUE).
   *
   * @example
   * const { id } = await echo.run({ message: 'hi' }, { webhook: 'https://example.com/hook', idempotencyKey: 'order-42' });
   */
  async run(input: Input, options: RunOptions = {}): Promise<JobRef> {
    const body = await requestJson(this.#transport, {
      method: 'POST',
      url: this.#url(['run']),
      json: runBody(input, options),
      headers: idempotencyHeader(options),
      signal: options.signal,
    });
    return this.#read(body, 'run', parseRunResponse);
  }

  /**
   * Runs a job and waits for its end: `POST /runsync?wait=…`, then long-polls `status-sync` until
   * the job is final, as RunPod's own clients do. Resolves with the final status object whatever
   * the outcome; {@link outputOf} turns it into the output or a `JobFailedError`.
   *
   * @example
   * const job = await echo.runSync({ message: 'hi' });
   * console.log(job.status, job.output);
   */
  async runSync(input: Input, options: RunSyncOptions = {}): Promise<FinishedJob<Output>> {
    const { min, max, default: fallback } = CLIENT_LIMITS.runsyncWait;
    const waitMs = Math.min(max, Math.max(min, Math.round(options.waitMs ?? fallback)));
    const body = await requestJson(this.#transport, {
      method: 'POST',
      url: this.#url(['runsync'], { wait: waitMs }),
      json: runBody(input, options),
      headers: idempotencyHeader(options),
      signal: options.signal,
      holdMs: waitMs,
    });
    const job = this.#read(body, 'runsync', readJobStatus<Output>);
    if (isFinished(job)) return job;
    return this.waitFor(job.id, waitOptions(options));
  }

  /**
   * The job's status object (`GET /status/{id}`). While IN_PROGRESS, `output` is the latest progress update.
   *
   * @example
   * const job = await echo.status(id);
   * if (job.status === 'COMPLETED') use(job.output);
   */
  async status(jobId: string, options: CallOptions = {}): Promise<JobStatus<Output>> {
    const body = await requestJson(this.#transport, { method: 'GET', url: this.#url(['status', jobId]), signal: options.signal });
    return this.#read(body, 'status', readJobStatus<Output>);
  }

  /** `GET /status-sync/{id}?wait=…`: the status once final, or as it is after `waitMs`. */
  async #statusSync(jobId: string, waitMs: number, signal?: AbortSignal): Promise<JobStatus<Output>> {
    const body = await requestJson(this.#transport, {
      method: 'GET',
      url: this.#url(['status-sync', jobId], { wait: waitMs }),
      signal,
      holdMs: waitMs,
    });
    return this.#read(body, 'status-sync', readJobStatus<Output>);
  }

  /**
   * The job's stream chunks as they are produced: server-sent events where the server offers them
   * (resumed with `Last-Event-ID` after a dropped connection: nothing lost, nothing twice),
   * long-polling `/stream/{id}` otherwise (RunPod). Ends when the job is COMPLETED; throws
   * `JobFailedError` after the last chunk when it ended FAILED, CANCELLED or TIMED_OUT.
   *
   * Chunks are handed to one reader: on RunPod and with long-polling, a chunk read here is not
   * returned by another `/stream` call for the same job.
   *
   * @example
   * for await (const chunk of llm.stream(id, { onProgress: (p) => console.error(p) })) process.stdout.write(chunk.text);
   */
  stream(jobId: string, options: StreamOptions = {}): AsyncGenerator<Chunk, void, undefined> {
    return streamJob<Chunk>(this.#context, jobId, options);
  }

  /**
   * Waits until the job is final and returns its status object, long-polling `status-sync`
   * (polling `/status` with a pause that doubles, where the server cannot hold the request).
   *
   * @example
   * const job = await echo.waitFor(id, { onProgress: (p) => console.log('progress', p), signal: AbortSignal.timeout(60_000) });
   */
  waitFor(jobId: string, options: WaitForOptions = {}): Promise<FinishedJob<Output>> {
    return waitForJob<Output>(this.#context, jobId, options);
  }

  /**
   * Cancels the job (`POST /cancel/{id}`): a queued job never runs, a running one is stopped.
   *
   * @example
   * await echo.cancel(id); // { id, status: 'CANCELLED' }
   */
  async cancel(jobId: string, options: CallOptions = {}): Promise<JobRef> {
    const body = await requestJson(this.#transport, { method: 'POST', url: this.#url(['cancel', jobId]), signal: options.signal });
    return this.#read(body, 'cancel', parseRunResponse);
  }

  /**
   * Queues a FAILED or TIMED_OUT job again under the same id (`POST /retry/{id}`).
   *
   * @example
   * await echo.retry(id); // { id, status: 'IN_QUEUE' }
   */
  async retry(jobId: string, options: CallOptions = {}): Promise<JobRef> {
    const body = await requestJson(this.#transport, { method: 'POST', url: this.#url(['retry', jobId]), signal: options.signal });
    return this.#read(body, 'retry', parseRunResponse);
  }

  /**
   * Removes every queued job of the endpoint (`POST /purge-queue`); running jobs go on.
   *
   * @example
   * const { removed } = await echo.purgeQueue();
   */
  async purgeQueue(options: CallOptions = {}): Promise<PurgeQueueResponse> {
    const body = await requestJson(this.#transport, { method: 'POST', url: this.#url(['purge-queue']), signal: options.signal });
    return this.#read(body, 'purge-queue', readPurgeQueue);
  }

  /**
   * Job and worker counters of the endpoint (`GET /health`).
   *
   * @example
   * const { jobs, workers } = await echo.health();
   */
  async health(options: CallOptions = {}): Promise<HealthResponse> {
    const body = await requestJson(this.#transport, { method: 'GET', url: this.#url(['health']), signal: options.signal });
    return this.#read(body, 'health', parseHealthResponse);
  }

  #url(segments: readonly string[], query?: Record<string, string | number | undefined>): string {
    return joinUrl(this.#baseUrl, [this.id, ...segments], query);
  }

  /** Applies a protocol parser to a 2xx body; a shape error becomes `UnexpectedResponseError`. */
  #read<T>(body: unknown, operation: string, parse: (value: unknown) => T): T {
    try {
      return parse(body);
    } catch (cause) {
      if (!(cause instanceof ProtocolParseError)) throw cause;
      throw new UnexpectedResponseError(this.#url([operation]), 200, body, cause.message, { cause });
    }
  }
}

function runBody(input: unknown, options: RunOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { input };
  if (options.webhook !== undefined) body['webhook'] = options.webhook;
  if (options.webhookEvents !== undefined) body['webhookEvents'] = [...options.webhookEvents];
  if (options.policy !== undefined) body['policy'] = options.policy;
  if (options.s3Config !== undefined) body['s3Config'] = options.s3Config;
  return body;
}

function idempotencyHeader(options: RunOptions): Record<string, string> {
  return options.idempotencyKey === undefined ? {} : { 'idempotency-key': options.idempotencyKey };
}

function waitOptions(options: RunSyncOptions): WaitForOptions {
  const wait: WaitForOptions = {};
  if (options.signal) wait.signal = options.signal;
  if (options.onProgress) wait.onProgress = options.onProgress;
  if (options.pollMs !== undefined) wait.pollMs = options.pollMs;
  return wait;
}

function readPurgeQueue(value: unknown): PurgeQueueResponse {
  if (!isRecord(value) || typeof value['removed'] !== 'number') throw new ProtocolParseError('removed', 'must be a number');
  return value as unknown as PurgeQueueResponse;
}
