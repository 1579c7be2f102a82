import type { FinishedJob } from './job-status.ts';

/** What every client error accepts besides its own fields. */
export interface ClientErrorOptions {
  cause?: unknown;
}

/** Where a failed request went, and how the server answered. */
export interface HttpErrorInit {
  method: string;
  /** The URL requested, query included. */
  url: string;
  status: number;
  statusText?: string;
  /** The answer's body: parsed JSON when it was JSON, else its text (`undefined` when empty). */
  body: unknown;
}

/**
 * The server answered with a non-2xx status. `status` is the HTTP status and `body` the answer
 * (the gateway's `{ error, code, field? }`, or whatever RunPod sent). The subclasses cover the
 * statuses a caller usually handles; anything else (400, 5xx) is a `KilnHttpError` itself.
 *
 * @example
 * try {
 *   await endpoint.status(id);
 * } catch (err) {
 *   if (err instanceof NotFoundError) console.log('gone (retention or TTL)');
 *   else if (err instanceof KilnHttpError) console.log(err.status, err.body);
 *   else throw err; // network error, abort, timeout
 * }
 */
export class KilnHttpError extends Error {
  override readonly name: string = 'KilnHttpError';
  /** HTTP status of the answer. */
  readonly status: number;
  /** Parsed JSON body when the answer was JSON, else its text. */
  readonly body: unknown;
  /** HTTP method of the request. */
  readonly method: string;
  /** URL of the request. */
  readonly url: string;
  /** The gateway's machine-readable `code` (`job_not_found`, `idempotency_conflict`…), when the body has one. */
  readonly code: string | undefined;

  constructor(init: HttpErrorInit, options?: ClientErrorOptions) {
    super(`${init.method} ${pathOf(init.url)}: HTTP ${init.status} ${describeBody(init.body, init.statusText)}`, options);
    this.status = init.status;
    this.body = init.body;
    this.method = init.method;
    this.url = init.url;
    const code = isRecord(init.body) ? init.body['code'] : undefined;
    this.code = typeof code === 'string' ? code : undefined;
  }
}

/** 401: the API key is missing or wrong. */
export class UnauthorizedError extends KilnHttpError {
  override readonly name: string = 'UnauthorizedError';
}

/** 404: no such endpoint, or no such job (never existed, or deleted after its retention or TTL). */
export class NotFoundError extends KilnHttpError {
  override readonly name: string = 'NotFoundError';
}

/** 409: e.g. an `Idempotency-Key` already used with a different request. */
export class ConflictError extends KilnHttpError {
  override readonly name: string = 'ConflictError';
}

/** 413: the request body is over the limit (RunPod: 10 MB for `run`, 20 MB for `runsync`). */
export class PayloadTooLargeError extends KilnHttpError {
  override readonly name: string = 'PayloadTooLargeError';
}

/** 429: rate limited. `retryAfterMs` is the server's `Retry-After`, when it sent one. */
export class RateLimitedError extends KilnHttpError {
  override readonly name: string = 'RateLimitedError';
  /** Milliseconds to wait before trying again, from `Retry-After` (seconds or an HTTP date). */
  readonly retryAfterMs: number | undefined;

  constructor(init: HttpErrorInit & { retryAfterMs?: number | undefined }, options?: ClientErrorOptions) {
    super(init, options);
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** A 2xx answer whose body is not what the operation returns (not JSON, or the wrong shape). */
export class UnexpectedResponseError extends Error {
  override readonly name = 'UnexpectedResponseError';
  /** HTTP status of the answer. */
  readonly status: number;
  /** The answer's body, parsed when it was JSON. */
  readonly body: unknown;
  /** URL of the request. */
  readonly url: string;

  constructor(url: string, status: number, body: unknown, reason: string, options?: ClientErrorOptions) {
    super(`${pathOf(url)}: unexpected answer (HTTP ${status}): ${reason}`, options);
    this.url = url;
    this.status = status;
    this.body = body;
  }
}

/**
 * The job ended FAILED, CANCELLED or TIMED_OUT where its output was asked for (`stream()`,
 * {@link outputOf}). `job` is its final status object; `error` is RunPod's error string
 * (runpod-python and kiln send a JSON object as a string: `errorMessage` reads its `error_message`).
 */
export class JobFailedError extends Error {
  override readonly name = 'JobFailedError';
  /** The job's final status object. */
  readonly job: FinishedJob<unknown>;
  /** The job id. */
  readonly jobId: string;
  /** FAILED, CANCELLED or TIMED_OUT. */
  readonly status: FinishedJob<unknown>['status'];
  /** RunPod's `error` field, as sent. */
  readonly error: string | undefined;
  /** A one-line reading of `error`: `error_type: error_message` when it holds the JSON object workers send. */
  readonly errorMessage: string | undefined;

  constructor(job: FinishedJob<unknown>, options?: ClientErrorOptions) {
    const errorMessage = job.error === undefined ? undefined : summarizeJobError(job.error);
    super(`job ${job.id} ended ${job.status}${errorMessage ? `: ${errorMessage}` : ''}`, options);
    this.job = job;
    this.jobId = job.id;
    this.status = job.status;
    this.error = job.error;
    this.errorMessage = errorMessage;
  }
}

/** The closed set of errors the client itself throws; network errors and aborts pass through as they are. */
export type KilnClientError = KilnHttpError | UnexpectedResponseError | JobFailedError;

/**
 * Reads a non-2xx `Response` into the matching {@link KilnHttpError} subclass (consumes the body).
 * `url` defaults to `response.url`; `now` is what a `Retry-After` date is measured from.
 *
 * @example
 * const res = await fetch(`${gateway}/kiln/v1/endpoints/tts/logs`);
 * if (!res.ok) throw await httpErrorFrom(res, 'GET');
 */
export async function httpErrorFrom(
  response: Response,
  method: string,
  url: string = response.url,
  now: number = Date.now(),
): Promise<KilnHttpError> {
  const init: HttpErrorInit = {
    method,
    url,
    status: response.status,
    statusText: response.statusText,
    body: await readBodyLeniently(response),
  };
  switch (response.status) {
    case 401:
      return new UnauthorizedError(init);
    case 404:
      return new NotFoundError(init);
    case 409:
      return new ConflictError(init);
    case 413:
      return new PayloadTooLargeError(init);
    case 429:
      return new RateLimitedError({ ...init, retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), now) });
    default:
      return new KilnHttpError(init);
  }
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, now: number): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** `error_type: error_message` from the JSON-object-as-string workers send, else the string itself (trimmed). */
export function summarizeJobError(error: string): string {
  try {
    const parsed: unknown = JSON.parse(error);
    if (isRecord(parsed) && typeof parsed['error_message'] === 'string') {
      const type = typeof parsed['error_type'] === 'string' ? `${parsed['error_type']}: ` : '';
      return `${type}${parsed['error_message']}`;
    }
  } catch {
    // a plain string (e.g. runpod-python's "handler: … traceback: …")
  }
  return error.trim();
}

async function readBodyLeniently(response: Response): Promise<unknown> {
  let text: string;
  try {
    text = await response.text();
  } catch {
    return undefined;
  }
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function describeBody(body: unknown, statusText: string | undefined): string {
  if (isRecord(body) && typeof body['error'] === 'string') return body['error'];
  if (typeof body === 'string' && body.length > 0) return body.length > 200 ? `${body.slice(0, 200)}…` : body;
  return statusText ?? '';
}

function pathOf(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  } catch {
    return url;
  }
}

/** A plain JSON object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
