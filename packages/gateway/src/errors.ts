import { ProtocolParseError } from '@kiln/protocol';
import { HTTPException } from 'hono/http-exception';

/** Options every gateway error accepts. */
export interface GatewayErrorOptions {
  cause?: unknown;
}

/** No job with this id on this endpoint, or on any endpoint when `endpoint` is null (never existed, or deleted after its retention or TTL). */
export class JobNotFoundError extends Error {
  override readonly name = 'JobNotFoundError';
  readonly endpoint: string | null;
  readonly jobId: string;

  constructor(endpoint: string | null, jobId: string, options?: GatewayErrorOptions) {
    super(endpoint === null ? `job ${jobId} not found on any endpoint` : `job ${jobId} not found on endpoint ${endpoint}`, options);
    this.endpoint = endpoint;
    this.jobId = jobId;
  }
}

/** The endpoint is not in the config. */
export class EndpointNotFoundError extends Error {
  override readonly name = 'EndpointNotFoundError';
  readonly endpoint: string;

  constructor(endpoint: string, options?: GatewayErrorOptions) {
    super(`endpoint ${endpoint} not found`, options);
    this.endpoint = endpoint;
  }
}

/** No webhook delivery with this id (never existed, or a delivered one pruned after its retention). */
export class WebhookDeliveryNotFoundError extends Error {
  override readonly name = 'WebhookDeliveryNotFoundError';
  readonly deliveryId: string;

  constructor(deliveryId: string, options?: GatewayErrorOptions) {
    super(`webhook delivery ${deliveryId} not found`, options);
    this.deliveryId = deliveryId;
  }
}

/** A request value breaks a rule; `field` names it (`policy.ttl`, `wait`, `body`, `Idempotency-Key`). */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';
  readonly field: string;
  readonly rule: string;

  constructor(field: string, rule: string, options?: GatewayErrorOptions) {
    super(`${field}: ${rule}`, options);
    this.field = field;
    this.rule = rule;
  }
}

/** A request body exceeds its size limit (bytes). `size` is known when Content-Length said it. */
export class PayloadTooLargeError extends Error {
  override readonly name = 'PayloadTooLargeError';
  readonly limit: number;
  readonly size: number | undefined;

  constructor(limit: number, size?: number, options?: GatewayErrorOptions) {
    const got = size === undefined ? 'more' : `${size} bytes`;
    super(`request body too large: the limit is ${limit} bytes (${formatMegabytes(limit)}), got ${got}`, options);
    this.limit = limit;
    this.size = size;
  }
}

/** Missing or wrong API key (client API) or worker token (worker API). */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';

  constructor(message = 'missing or invalid API key: send Authorization: Bearer <key>', options?: GatewayErrorOptions) {
    super(message, options);
  }
}

/** The job is not in a state that allows `action` (e.g. retry of a COMPLETED job). */
export class InvalidTransitionError extends Error {
  override readonly name = 'InvalidTransitionError';
  readonly jobId: string;
  readonly status: string;
  readonly action: string;

  constructor(jobId: string, status: string, action: string, allowed: string, options?: GatewayErrorOptions) {
    super(`cannot ${action} job ${jobId}: it is ${status}; ${allowed}`, options);
    this.jobId = jobId;
    this.status = status;
    this.action = action;
  }
}

/** An `Idempotency-Key` was reused with a different request. */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
  readonly key: string;
  readonly jobId: string;

  constructor(key: string, jobId: string, options?: GatewayErrorOptions) {
    super(`Idempotency-Key ${JSON.stringify(key)} was already used for job ${jobId} with a different request`, options);
    this.key = key;
    this.jobId = jobId;
  }
}

/** The gateway was started without a models volume (`GatewayOptions.models`): the models routes have nothing to show. */
export class NoModelsVolumeError extends Error {
  override readonly name = 'NoModelsVolumeError';

  constructor(options?: GatewayErrorOptions) {
    super('this gateway has no models volume', options);
  }
}

/** The models manifest has no model of this name (thrown by a `ModelsAccess`; → HTTP 404). */
export class UnknownModelError extends Error {
  override readonly name = 'UnknownModelError';
  readonly model: string;

  constructor(model: string, options?: GatewayErrorOptions) {
    super(`no model named '${model}' in the config's models`, options);
    this.model = model;
  }
}

/** The closed set of errors the gateway turns into HTTP answers. */
export type GatewayError =
  | JobNotFoundError
  | EndpointNotFoundError
  | WebhookDeliveryNotFoundError
  | InvalidRequestError
  | PayloadTooLargeError
  | UnauthorizedError
  | InvalidTransitionError
  | IdempotencyConflictError
  | NoModelsVolumeError
  | UnknownModelError;

/** HTTP statuses the gateway answers errors with. */
export type ErrorStatus = 400 | 401 | 404 | 409 | 413 | 500;

/** JSON body of every error answer. */
export interface ErrorBody {
  error: string;
  code: string;
  field?: string;
}

/** What an error becomes on the wire. */
export interface HttpErrorResponse {
  status: ErrorStatus;
  body: ErrorBody;
  headers?: Record<string, string>;
}

/**
 * The one mapping from errors to HTTP answers (RunPod-like statuses, JSON body
 * `{ error, code, field? }`). Anything outside the closed set is a 500 with a generic message;
 * its details go to `log` only.
 *
 * @example
 * app.onError((err, c) => {
 *   const { status, body, headers } = toHttpResponse(err, log);
 *   return c.json(body, status, headers);
 * });
 */
export function toHttpResponse(err: unknown, log?: { error(message: string, fields?: object): void }): HttpErrorResponse {
  if (err instanceof ProtocolParseError || err instanceof InvalidRequestError) {
    return { status: 400, body: { error: err.message, code: 'invalid_request', field: err.field } };
  }
  if (err instanceof JobNotFoundError) return { status: 404, body: { error: err.message, code: 'job_not_found' } };
  if (err instanceof EndpointNotFoundError) return { status: 404, body: { error: err.message, code: 'endpoint_not_found' } };
  if (err instanceof WebhookDeliveryNotFoundError) return { status: 404, body: { error: err.message, code: 'webhook_delivery_not_found' } };
  if (err instanceof NoModelsVolumeError) return { status: 404, body: { error: err.message, code: 'no_models_volume' } };
  if (err instanceof UnknownModelError) return { status: 404, body: { error: err.message, code: 'model_not_found' } };
  if (err instanceof PayloadTooLargeError) {
    return { status: 413, body: { error: err.message, code: 'payload_too_large', field: 'body' } };
  }
  if (err instanceof UnauthorizedError) {
    return { status: 401, body: { error: err.message, code: 'unauthorized' }, headers: { 'WWW-Authenticate': 'Bearer' } };
  }
  if (err instanceof InvalidTransitionError) return { status: 400, body: { error: err.message, code: 'invalid_transition' } };
  if (err instanceof IdempotencyConflictError) {
    return { status: 409, body: { error: err.message, code: 'idempotency_conflict', field: 'Idempotency-Key' } };
  }
  // hono's own exceptions (e.g. from its middleware) keep their status when it is one we use.
  if (err instanceof HTTPException && isErrorStatus(err.status) && err.status !== 500) {
    return { status: err.status, body: { error: err.message || 'request refused', code: 'http_error' } };
  }
  log?.error('unexpected error while handling a request', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return { status: 500, body: { error: 'internal error', code: 'internal_error' } };
}

function isErrorStatus(status: number): status is ErrorStatus {
  return status === 400 || status === 401 || status === 404 || status === 409 || status === 413 || status === 500;
}

function formatMegabytes(bytes: number): string {
  return `${Math.round((bytes / (1024 * 1024)) * 100) / 100} MB`;
}
