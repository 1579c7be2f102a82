import type { Clock } from '@kiln/protocol';
import { UnexpectedResponseError, httpErrorFrom } from './errors.ts';

/** The `fetch` the client calls; the global one by default. */
export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

/** Settings every request of one client shares. */
export interface Transport {
  readonly fetch: FetchFunction;
  readonly apiKey: string | undefined;
  /** Per request, on top of the time a long-poll asks the server to hold it; 0 = none. */
  readonly timeoutMs: number;
  readonly clock: Clock;
}

/** One request. */
export interface TransportRequest {
  method: 'GET' | 'POST';
  url: string;
  /** Sent as JSON. */
  json?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** How long the server may hold the request (a long-poll's `wait`), added to the timeout. */
  holdMs?: number;
}

/** An open response whose body is still to be read. */
export interface OpenResponse {
  readonly response: Response;
  /** Aborts the request (and its body) with `reason`. */
  abort(reason: unknown): void;
  /** Releases the caller's signal; call when done with the body. */
  close(): void;
}

/**
 * Sends a request and returns its parsed JSON body. Non-2xx answers throw the matching
 * `KilnHttpError`; a 2xx body that is not JSON throws `UnexpectedResponseError`; network
 * errors, the caller's abort and the timeout (a `TimeoutError` DOMException) pass through.
 */
export async function requestJson(transport: Transport, request: TransportRequest): Promise<unknown> {
  const link = new LinkedSignal(transport.clock, request.signal, timeoutFor(transport, request));
  try {
    const response = await send(transport, request, link.signal, 'application/json');
    return await readJsonBody(response, request.url);
  } finally {
    link.dispose();
  }
}

/** Reads a 2xx response's body as JSON; {@link UnexpectedResponseError} when it is not JSON. */
export async function readJsonBody(response: Response, url: string): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new UnexpectedResponseError(url, response.status, text, 'the body is not JSON', { cause });
  }
}

/**
 * Sends a request and hands back the response with its body unread; the timeout covers only
 * the wait for the headers, the caller's signal also covers the body.
 */
export async function openResponse(transport: Transport, request: TransportRequest, accept: string): Promise<OpenResponse> {
  const link = new LinkedSignal(transport.clock, request.signal, timeoutFor(transport, request));
  let response: Response;
  try {
    response = await send(transport, request, link.signal, accept);
  } catch (err) {
    link.dispose();
    throw err;
  }
  link.stopTimer();
  return { response, abort: (reason) => link.abort(reason), close: () => link.dispose() };
}

async function send(transport: Transport, request: TransportRequest, signal: AbortSignal, accept: string): Promise<Response> {
  const headers: Record<string, string> = { accept, ...request.headers };
  if (transport.apiKey !== undefined) headers['authorization'] = `Bearer ${transport.apiKey}`;
  const init: RequestInit = { method: request.method, headers, signal };
  if (request.json !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(request.json);
  }
  const response = await transport.fetch(request.url, init);
  if (!response.ok) throw await httpErrorFrom(response, request.method, request.url, transport.clock.now());
  return response;
}

function timeoutFor(transport: Transport, request: TransportRequest): number {
  if (transport.timeoutMs <= 0) return 0;
  return transport.timeoutMs + (request.holdMs ?? 0);
}

/**
 * An AbortSignal that fires when the caller's signal does, when the timeout (on the injected
 * clock) runs out, or on `abort()`. `dispose()` detaches it from the caller's signal, so a
 * long-lived caller signal does not collect listeners.
 */
class LinkedSignal {
  readonly #controller = new AbortController();
  readonly #timer = new AbortController();
  readonly #parent: AbortSignal | undefined;
  readonly #onParentAbort = () => this.abort(this.#parent?.reason);

  constructor(clock: Clock, parent: AbortSignal | undefined, timeoutMs: number) {
    this.#parent = parent;
    if (parent?.aborted) {
      this.abort(parent.reason);
      return;
    }
    parent?.addEventListener('abort', this.#onParentAbort, { once: true });
    if (timeoutMs > 0) {
      void clock.sleep(timeoutMs, this.#timer.signal).then(() => {
        if (!this.#timer.signal.aborted) this.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
      });
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    this.stopTimer();
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  stopTimer(): void {
    if (!this.#timer.signal.aborted) this.#timer.abort();
  }

  dispose(): void {
    this.stopTimer();
    this.#parent?.removeEventListener('abort', this.#onParentAbort);
  }
}

/** Joins a base URL and path segments, each segment percent-encoded, plus an optional query. */
export function joinUrl(baseUrl: string, segments: readonly string[], query?: Record<string, string | number | undefined>): string {
  let url = `${baseUrl}/${segments.map(encodeURIComponent).join('/')}`;
  const params = Object.entries(query ?? {}).filter((entry): entry is [string, string | number] => entry[1] !== undefined);
  if (params.length > 0) url += `?${params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&')}`;
  return url;
}
