import { ProtocolParseError, isTerminalState, parseStreamResponse } from '@kiln/protocol';
import type { Clock, JobState, StreamResponse } from '@kiln/protocol';
import { JobFailedError, KilnHttpError, NotFoundError, UnexpectedResponseError, isRecord } from './errors.ts';
import { openResponse, readJsonBody, requestJson } from './http.ts';
import type { OpenResponse, Transport } from './http.ts';
import { isFinished, progressReporter, readJobStatus } from './job-status.ts';
import type { FinishedJob, JobStatus } from './job-status.ts';
import { SseParser, isEventStream } from './sse.ts';

/** Options of `stream()`. */
export interface StreamOptions {
  /** Stops the stream: the iteration rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Called with each progress update: from SSE `progress` events, or (long-poll fallback) read
   * from `/status` between two `/stream` polls, each distinct value once.
   */
  onProgress?: (progress: unknown) => void;
  /** Long-poll fallback only: first pause after an empty answer that came back at once (doubles, up to 2 s). */
  pollMs?: number;
}

/** What a stream needs from its endpoint. */
export interface StreamContext {
  readonly transport: Transport;
  /** `${baseUrl}/${endpointId}/${segments…}`. */
  url(segments: readonly string[], query?: Record<string, string | number | undefined>): string;
  status(jobId: string, signal?: AbortSignal): Promise<JobStatus<unknown>>;
}

/** A connection that stays silent this long (not even a `: ping`) is dropped and resumed. */
export const SSE_IDLE_TIMEOUT_MS = 60_000;
/** Connections in a row that may fail (or end without a new event) before the stream gives up. */
export const SSE_MAX_RECONNECTS = 8;
const RECONNECT_BASE_MS = 250;
const RECONNECT_MAX_MS = 5000;
/** Default first pause of the long-poll fallback after an empty, immediate answer. */
export const STREAM_POLL_MS = 250;
const STREAM_POLL_MAX_MS = 2000;

/** How one SSE connection ended. */
type ConnectionEnd = { kind: 'final'; job: FinishedJob<unknown> } | { kind: 'dropped'; error: unknown; sawEvents: boolean; sawBytes: boolean };

/**
 * The chunks of a job as they are produced. Asks for `text/event-stream`: a server that offers it
 * (the kiln gateway) sends progress, chunks and the final status as events, and a dropped
 * connection is resumed with `Last-Event-ID`, so nothing is lost or repeated. Otherwise (RunPod,
 * an older gateway) `/stream/{id}` is long-polled until the job ends. Ends when the job is
 * COMPLETED; throws {@link JobFailedError} after the last chunk when it ended otherwise.
 */
export async function* streamJob<Chunk>(ctx: StreamContext, jobId: string, options: StreamOptions = {}): AsyncGenerator<Chunk, void, undefined> {
  const { signal } = options;
  const { clock } = ctx.transport;
  const url = ctx.url(['stream', jobId]);
  const parser = new SseParser();
  let sse = false;
  let failures = 0;
  for (;;) {
    signal?.throwIfAborted();
    const headers: Record<string, string> = {};
    if (parser.lastEventId !== '') headers['last-event-id'] = parser.lastEventId;
    let open: OpenResponse | undefined;
    let dropped: unknown;
    try {
      open = await openResponse(ctx.transport, { method: 'GET', url, headers, signal }, 'text/event-stream');
    } catch (err) {
      if (!sse && err instanceof KilnHttpError && err.status === 406) {
        // A server that refuses to answer text/event-stream rather than ignoring the Accept header.
        const first = await requestJson(ctx.transport, { method: 'GET', url, signal });
        yield* pollStream<Chunk>(ctx, jobId, first, options);
        return;
      }
      // Only a resume is retried: a first request that fails says something about the request.
      if (!sse || signal?.aborted || !isTransient(err)) throw err;
      dropped = err;
    }
    if (open && sse && open.response.status === 204) {
      // The server's way of saying "you had the final event already": the status says how it ended.
      open.close();
      const job = await ctx.status(jobId, signal);
      if (!isFinished(job)) throw new UnexpectedResponseError(url, 204, undefined, `the event stream ended while the job is ${job.status}`);
      if (job.status === 'COMPLETED') return;
      throw new JobFailedError(job);
    }
    if (open && !isEventStream(open.response.headers.get('content-type'))) {
      let body: unknown;
      try {
        body = await readJsonBody(open.response, url);
      } finally {
        open.close();
      }
      if (sse) throw new UnexpectedResponseError(url, open.response.status, body, 'a resumed stream was not text/event-stream');
      yield* pollStream<Chunk>(ctx, jobId, body, options);
      return;
    }
    let sawEvents = false;
    let sawBytes = false;
    if (open) {
      sse = true;
      parser.reset();
      const end: ConnectionEnd = yield* readConnection<Chunk>(open, url, parser, ctx.transport.clock, options);
      if (end.kind === 'final') {
        if (end.job.status === 'COMPLETED') return;
        throw new JobFailedError(end.job);
      }
      dropped = end.error;
      sawEvents = end.sawEvents;
      sawBytes = end.sawBytes;
    }
    // A connection that carried only keep-alives was healthy while it lasted: it does not count
    // toward the limit, but is not resumed at once either.
    if (sawEvents) failures = 0;
    else if (!sawBytes) failures++;
    if (failures > SSE_MAX_RECONNECTS) {
      throw dropped ?? new UnexpectedResponseError(url, 200, undefined, `the event stream ended ${failures} times in a row without a final status`);
    }
    const pause = sawEvents ? (parser.retryMs ?? 0) : reconnectDelay(Math.max(failures, 1), parser.retryMs);
    if (pause > 0) await clock.sleep(pause, signal);
  }
}

/** Reads one SSE connection to its end, yielding chunks; `parser` carries the last event id across connections. */
async function* readConnection<Chunk>(
  open: OpenResponse,
  url: string,
  parser: SseParser,
  clock: Clock,
  options: StreamOptions,
): AsyncGenerator<Chunk, ConnectionEnd, undefined> {
  const { signal } = options;
  const body = open.response.body;
  if (!body) {
    open.close();
    return { kind: 'dropped', error: undefined, sawEvents: false, sawBytes: false };
  }
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let sawEvents = false;
  let sawBytes = false;
  try {
    for (;;) {
      let read: Awaited<ReturnType<typeof reader.read>>;
      const idle = new AbortController();
      void clock.sleep(SSE_IDLE_TIMEOUT_MS, idle.signal).then(() => {
        if (!idle.signal.aborted) open.abort(new DOMException(`no event or keep-alive for ${SSE_IDLE_TIMEOUT_MS} ms`, 'TimeoutError'));
      });
      try {
        read = await reader.read();
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        return { kind: 'dropped', error, sawEvents, sawBytes };
      } finally {
        idle.abort();
      }
      if (read.done) return { kind: 'dropped', error: undefined, sawEvents, sawBytes };
      sawBytes = true;
      for (const event of parser.push(decoder.decode(read.value, { stream: true }))) {
        sawEvents = true;
        if (event.type === 'chunk') {
          yield fieldOf(event.data, 'output', url) as Chunk;
        } else if (event.type === 'progress') {
          options.onProgress?.(fieldOf(event.data, 'progress', url));
        } else if (event.type === 'status') {
          const job = readStatusEvent(event.data, url);
          if (isFinished(job)) return { kind: 'final', job };
        }
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
    open.close();
  }
}

/** The long-poll fallback: `/stream/{id}` until its status is final, pausing only when the server does not hold. */
async function* pollStream<Chunk>(ctx: StreamContext, jobId: string, first: unknown, options: StreamOptions): AsyncGenerator<Chunk, void, undefined> {
  const { signal, onProgress } = options;
  const { clock } = ctx.transport;
  const pollMs = options.pollMs ?? STREAM_POLL_MS;
  const url = ctx.url(['stream', jobId]);
  const reportProgress = progressReporter(onProgress);
  let pause = pollMs;
  let body = first;
  let askedAt = clock.now();
  for (;;) {
    const page = readStreamPage(body, url);
    for (const item of page.stream) yield item.output as Chunk;
    if (isTerminalState(page.status)) {
      if (page.status === 'COMPLETED') return;
      throw new JobFailedError(await finalStatus(ctx, jobId, page.status, signal));
    }
    if (onProgress && reportProgress(await ctx.status(jobId, signal))) pause = pollMs;
    if (page.stream.length === 0 && clock.now() - askedAt < pollMs) {
      await clock.sleep(pause, signal);
      signal?.throwIfAborted();
      pause = Math.min(pause * 2, STREAM_POLL_MAX_MS);
    } else if (page.stream.length > 0) {
      pause = pollMs;
    }
    askedAt = clock.now();
    body = await requestJson(ctx.transport, { method: 'GET', url, signal });
  }
}

/** The status object of a job that `/stream` reported as ended (the page itself carries no error). */
async function finalStatus(ctx: StreamContext, jobId: string, status: JobState, signal: AbortSignal | undefined): Promise<FinishedJob<unknown>> {
  try {
    const job = await ctx.status(jobId, signal);
    if (isFinished(job)) return job;
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  return { id: jobId, status } as FinishedJob<unknown>;
}

function reconnectDelay(failures: number, serverRetryMs: number | undefined): number {
  return Math.min(Math.max(serverRetryMs ?? 0, RECONNECT_BASE_MS) * 2 ** (failures - 1), RECONNECT_MAX_MS);
}

/** Worth a resume: network errors, timeouts, 429 and 5xx; not other 4xx nor answers of the wrong shape. */
function isTransient(err: unknown): boolean {
  if (err instanceof KilnHttpError) return err.status === 429 || err.status >= 500;
  return !(err instanceof UnexpectedResponseError || err instanceof JobFailedError);
}

function readStreamPage(body: unknown, url: string): StreamResponse {
  try {
    return parseStreamResponse(body);
  } catch (cause) {
    if (cause instanceof ProtocolParseError) throw new UnexpectedResponseError(url, 200, body, cause.message, { cause });
    throw cause;
  }
}

function readStatusEvent(data: string, url: string): JobStatus<unknown> {
  const value = parseEventData(data, url);
  try {
    return readJobStatus(value);
  } catch (cause) {
    throw new UnexpectedResponseError(url, 200, value, `status event: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

function fieldOf(data: string, key: string, url: string): unknown {
  const value = parseEventData(data, url);
  if (!isRecord(value) || !Object.hasOwn(value, key)) throw new UnexpectedResponseError(url, 200, value, `event data must be an object with "${key}"`);
  return value[key];
}

function parseEventData(data: string, url: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch (cause) {
    throw new UnexpectedResponseError(url, 200, data, 'event data is not JSON', { cause });
  }
}
