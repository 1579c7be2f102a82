import { isTerminalState } from '@kiln/protocol';
import { InvalidRequestError, JobNotFoundError } from './errors.ts';
import type { GatewayContext } from './http-app.ts';
import type { JobRecord } from './job-store.ts';
import { toStatusObject } from './status-view.ts';

/** Longest an SSE stream stays silent before a `: ping` comment, so proxies and clients keep it open. */
export const SSE_PING_MS = 15_000;
/** The comment sent after {@link SSE_PING_MS} of silence. */
export const SSE_PING = ': ping\n\n';
/** Headers of every `text/event-stream` answer: nothing cached, nothing held back by a buffering proxy (nginx). */
export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
});

/**
 * How far an SSE client got in a job's events, as its event ids say: the run (the job's `retries`
 * count), the last stream chunk seq and progress seq it was sent, and whether it was sent the
 * final status.
 */
export interface SsePosition {
  retries: number;
  chunkSeq: number;
  progressSeq: number;
  ended: boolean;
}

const EVENT_ID = /^(\d{1,15})\.(\d{1,15})\.(\d{1,15})(\.end)?$/;
const MEDIA_TYPE = /^\s*text\/event-stream\s*(;|$)/i;

/**
 * The `id:` of an event: `<retries>.<chunkSeq>.<progressSeq>`, with `.end` on the final status.
 *
 * @example
 * formatEventId({ retries: 0, chunkSeq: 12, progressSeq: 3, ended: false }); // '0.12.3'
 */
export function formatEventId(position: SsePosition): string {
  return `${position.retries}.${position.chunkSeq}.${position.progressSeq}${position.ended ? '.end' : ''}`;
}

/**
 * The position a `Last-Event-ID` header names; undefined when there is none (or it is empty, which
 * EventSource sends for "no id yet"). Throws `InvalidRequestError` naming the header otherwise.
 */
export function parseLastEventId(header: string | undefined): SsePosition | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const match = EVENT_ID.exec(header.trim());
  if (!match) {
    throw new InvalidRequestError('Last-Event-ID', `must be an event id this stream sent (<retries>.<chunk>.<progress>, e.g. 0.12.3), got ${JSON.stringify(header.slice(0, 100))}`);
  }
  return { retries: Number(match[1]), chunkSeq: Number(match[2]), progressSeq: Number(match[3]), ended: match[4] !== undefined };
}

/** Whether an `Accept` header names `text/event-stream` (a wildcard does not: RunPod's clients send `*\/*` and want JSON). */
export function acceptsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && accept.split(',').some((type) => MEDIA_TYPE.test(type));
}

/**
 * Answers `GET /stream/{id}` with `Accept: text/event-stream`: a `text/event-stream` of the job's
 * progress updates (`event: progress`, `data: {"progress": …}`), stream chunks (`event: chunk`,
 * `data: {"output": …}`) and, once it is terminal, its status object (`event: status`), after which
 * the response ends. Each event's id is where the client is (see {@link formatEventId}); with
 * `Last-Event-ID` the stream resumes after that point: no chunk is lost or sent twice. Progress is
 * sent only when newer than the client's, and the store keeps only the latest value, so updates
 * overwritten before this stream read them (the client was away, or updates came faster than it
 * reads) are skipped; the progress number in the ids shows the gap. A client that already got the
 * final status of the job's current run gets 204, which tells EventSource to stop reconnecting.
 *
 * Unknown job → 404, bad or foreign `Last-Event-ID` → 400 (JSON, through the app's error handler).
 * The stream wakes on `ctx.events`, re-reads the store at least every second (other gateways), sends
 * `: ping` after {@link SSE_PING_MS} of silence, ends when the job is deleted, and lets go of
 * everything as soon as the client disconnects (request signal) or cancels the body.
 *
 * @example
 * if (acceptsEventStream(c.req.header('accept'))) return respondWithJobEvents(ctx, endpoint, id, c.req.raw);
 */
export async function respondWithJobEvents(ctx: GatewayContext, endpoint: string, jobId: string, request: Request): Promise<Response> {
  const from = parseLastEventId(request.headers.get('last-event-id') ?? undefined);
  const job = await ctx.store.get(endpoint, jobId);
  if (!job) throw new JobNotFoundError(endpoint, jobId);
  if (from && from.retries === job.retries) {
    if (from.ended && isTerminalState(job.status)) return new Response(null, { status: 204 });
    if (from.ended || from.chunkSeq > job.streamSeq || from.progressSeq > job.progressSeq) {
      throw new InvalidRequestError('Last-Event-ID', `${formatEventId(from)} is not a position in the events of job ${jobId}`);
    }
  }
  return new Response(jobEventStream(ctx, endpoint, jobId, from, request.signal), {
    status: 200,
    headers: SSE_HEADERS,
  });
}

/**
 * The event stream of one job for one client, from `from` (or the start of the job's current run).
 * Pull-driven: the store is read only when the consumer wants more, so a slow client holds the
 * job's events in the store rather than in memory here.
 */
function jobEventStream(ctx: GatewayContext, endpoint: string, jobId: string, from: SsePosition | undefined, signal: AbortSignal): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  let position = from;
  let quietSince = ctx.clock.now();

  const finish = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    stop.abort();
    signal.removeEventListener('abort', onAbort);
    try {
      controller.close();
    } catch {
      // Already closed or cancelled by the consumer.
    }
  };

  /** Waits for news about the job and writes it; resolves once something was written or the stream ended. */
  const pump = async (controller: ReadableStreamDefaultController<Uint8Array>) => {
    while (!stop.signal.aborted) {
      // Watch before reading: a change between the read and the wait still wakes us.
      const change = ctx.events.watch(jobId);
      try {
        const job = await ctx.store.get(endpoint, jobId);
        if (stop.signal.aborted) break;
        if (!job) return finish(controller);
        if (position?.retries !== job.retries) position = { retries: job.retries, chunkSeq: 0, progressSeq: 0, ended: false };
        const events = await newEvents(ctx, job, position);
        if (stop.signal.aborted) break;
        const now = ctx.clock.now();
        if (events.text !== '') {
          position = events.position;
          quietSince = now;
          controller.enqueue(encoder.encode(events.text));
          if (position.ended) finish(controller);
          return;
        }
        if (now - quietSince >= SSE_PING_MS) {
          quietSince = now;
          controller.enqueue(encoder.encode(SSE_PING));
          return;
        }
        await change.wait(quietSince + SSE_PING_MS - now, stop.signal);
      } finally {
        change.close();
      }
    }
    finish(controller);
  };

  return new ReadableStream<Uint8Array>(
    {
      start() {
        if (signal.aborted) stop.abort();
        else signal.addEventListener('abort', onAbort, { once: true });
      },
      async pull(controller) {
        try {
          await pump(controller);
        } catch (err) {
          // Headers are out: all a failure can do is end the stream; the client resumes from its last id.
          ctx.log.error(`SSE stream of job ${jobId} failed: ${err instanceof Error ? err.message : String(err)}`, { endpoint, jobId });
          finish(controller);
        }
      },
      cancel() {
        stop.abort();
        signal.removeEventListener('abort', onAbort);
      },
    },
    // Pull only when the previous events were taken: backpressure reaches the store reads.
    { highWaterMark: 0 },
  );
}

/** The events a client at `position` has not had yet, as text, and where they leave it. */
async function newEvents(ctx: GatewayContext, job: JobRecord, position: SsePosition): Promise<{ text: string; position: SsePosition }> {
  let next = { ...position };
  let text = '';
  // `output` is the last progress value only while the job runs; after that it is the result.
  if (job.status === 'IN_PROGRESS' && job.progressSeq > next.progressSeq && job.output !== undefined) {
    next = { ...next, progressSeq: job.progressSeq };
    text += formatSseEvent('progress', { progress: job.output }, formatEventId(next));
  }
  // Status first, chunks second (as the row was read first): chunks read after a terminal status are all there will be.
  if (job.streamSeq > next.chunkSeq) {
    for (const chunk of await ctx.store.streamChunks(job.id, next.chunkSeq)) {
      next = { ...next, chunkSeq: chunk.seq };
      text += formatSseEvent('chunk', { output: chunk.output }, formatEventId(next));
    }
  }
  if (isTerminalState(job.status)) {
    next = { ...next, ended: true };
    text += formatSseEvent('status', toStatusObject(job, ctx.clock.now()), formatEventId(next));
  }
  return { text, position: next };
}

/**
 * One SSE event, `data` as JSON. JSON.stringify never emits a raw line break, so `data` is always
 * a single line.
 *
 * @example
 * formatSseEvent('chunk', { output: 'a' }, '0.1.0'); // 'id: 0.1.0\nevent: chunk\ndata: {"output":"a"}\n\n'
 */
export function formatSseEvent(event: string, data: unknown, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
