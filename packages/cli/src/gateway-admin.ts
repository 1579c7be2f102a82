import { UnexpectedResponseError, httpErrorFrom } from '@kiln/client';
import type { ListedJob, LogLineView } from '@kiln/protocol';

/** Where the gateway is and how to authenticate. */
export interface GatewayTarget {
  /** The gateway's root URL, without a trailing slash (`http://127.0.0.1:8080`). */
  readonly url: string;
  readonly apiKey: string | undefined;
}

/** A page of the job listing; `next` is the cursor of the following page, null on the last. */
export interface JobPage {
  jobs: ListedJob[];
  next: string | null;
}

/** Filters and paging of the job listing. */
export interface JobListQuery {
  /** One status, or several separated by commas. */
  status?: string | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
}

/** A page of log lines; `next` is the `after` of the following request. */
export interface LogPage {
  lines: LogLineView[];
  next: number;
}

/** Filters and paging of log lines. */
export interface LogQuery {
  jobId?: string | undefined;
  workerId?: string | undefined;
  after?: number | undefined;
  limit?: number | undefined;
}

/** `GET /kiln/v1/endpoints/:endpoint/jobs`: newest first. */
export async function listJobs(target: GatewayTarget, endpoint: string, query: JobListQuery, signal?: AbortSignal): Promise<JobPage> {
  const body = await adminGet(target, ['endpoints', endpoint, 'jobs'], { status: query.status, limit: query.limit, cursor: query.cursor }, signal);
  if (!isObject(body) || !Array.isArray(body['jobs'])) throw unexpected(target, 'jobs', body, 'expected { jobs: [...], next }');
  return body as unknown as JobPage;
}

/** `GET /kiln/v1/endpoints/:endpoint/logs`: lines after `after`, oldest first. */
export async function readLogs(target: GatewayTarget, endpoint: string, query: LogQuery, signal?: AbortSignal): Promise<LogPage> {
  const body = await adminGet(
    target,
    ['endpoints', endpoint, 'logs'],
    { jobId: query.jobId, workerId: query.workerId, after: query.after, limit: query.limit },
    signal,
  );
  if (!isObject(body) || !Array.isArray(body['lines']) || typeof body['next'] !== 'number') {
    throw unexpected(target, 'logs', body, 'expected { lines: [...], next }');
  }
  return body as unknown as LogPage;
}

async function adminGet(target: GatewayTarget, segments: string[], query: Record<string, string | number | undefined>, signal?: AbortSignal): Promise<unknown> {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') params.set(key, String(value));
  const search = params.size > 0 ? `?${params}` : '';
  const url = `${target.url}/kiln/v1/${segments.map(encodeURIComponent).join('/')}${search}`;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (target.apiKey !== undefined) headers['authorization'] = `Bearer ${target.apiKey}`;
  const response = await fetch(url, { headers, ...(signal ? { signal } : {}) });
  if (!response.ok) throw await httpErrorFrom(response, 'GET', url);
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new UnexpectedResponseError(url, response.status, text, 'the body is not JSON', { cause });
  }
}

function unexpected(target: GatewayTarget, what: string, body: unknown, reason: string): UnexpectedResponseError {
  return new UnexpectedResponseError(`${target.url}/kiln/v1/…/${what}`, 200, body, reason);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
