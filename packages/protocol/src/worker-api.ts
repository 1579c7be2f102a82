import { ProtocolParseError } from './parse-error.ts';
import {
  fieldPath,
  hasKey,
  isPlainObject,
  requireBoolean,
  requireNonEmptyString,
  requireObject,
  requirePresent,
  requireString,
  requireStringArray,
  selfField,
} from './parse-helpers.ts';

/**
 * A job as the platform hands it to a worker on job-take; the handler receives it verbatim.
 *
 * Keys other than `id` and `input` (RunPod adds `s3Config`, `batchId`…) pass through untouched.
 */
export interface Job {
  id: string;
  input: unknown;
  [key: string]: unknown;
}

/** One item of a job-take-batch answer that could not be read as a job. */
export interface RejectedJob {
  index: number;
  error: ProtocolParseError;
}

/** A job-take or job-take-batch answer: the jobs read, and the batch items that were not jobs. */
export interface ParsedTakeResponse {
  jobs: Job[];
  rejected: RejectedJob[];
}

/**
 * Reads one job object: `id` must be a non-empty string and `input` present (any JSON value, `null` included).
 *
 * @example
 * parseJob({ id: 'job-1', input: { prompt: 'hi' }, s3Config: { bucketName: 'b' } });
 */
export function parseJob(value: unknown, field = 'job'): Job {
  const obj = requireObject(value, selfField(field));
  const id = requireNonEmptyString(obj.id, fieldPath(field, 'id'));
  // `null` is a legitimate input; only a missing key is an error.
  if (!Object.hasOwn(obj, 'input') || obj.input === undefined) {
    throw new ProtocolParseError(fieldPath(field, 'input'), 'is required');
  }
  return { ...obj, id, input: obj.input };
}

/**
 * Reads a job-take (object) or job-take-batch (array) answer.
 *
 * A single object that is not a job throws. In a batch, each bad item is reported in `rejected` instead,
 * so the good jobs of the batch are not lost.
 *
 * @example
 * const { jobs, rejected } = parseTakeResponse(JSON.parse(body));
 */
export function parseTakeResponse(value: unknown): ParsedTakeResponse {
  if (Array.isArray(value)) {
    const jobs: Job[] = [];
    const rejected: RejectedJob[] = [];
    value.forEach((item: unknown, index) => {
      try {
        jobs.push(parseJob(item, `[${index}]`));
      } catch (error) {
        if (!(error instanceof ProtocolParseError)) throw error;
        rejected.push({ index, error });
      }
    });
    return { jobs, rejected };
  }
  if (isPlainObject(value)) return { jobs: [parseJob(value, '')], rejected: [] };
  throw new ProtocolParseError('body', 'must be a job object or an array of job objects');
}

/** Body of a final job-done POST, as the worker SDK sends it. */
export interface DoneBody {
  output?: unknown;
  /** Present ⇒ the job is FAILED. */
  error?: string;
  /** `true` ⇒ the platform recycles the worker after this job (`refresh_worker`). */
  stopPod?: boolean;
}

/** Body of a progress update; it goes to the job-done URL too (`progress_update`). */
export interface ProgressBody {
  status: 'IN_PROGRESS';
  output: unknown;
}

/** A job-done POST read: either a progress update or the job's final result. */
export type ParsedDonePost =
  | { kind: 'progress'; output: unknown }
  | { kind: 'result'; output?: unknown; error?: string; stopPod: boolean };

/**
 * Reads a job-done POST body: `status: "IN_PROGRESS"` marks a progress update, anything else is the final result.
 *
 * `output` is kept only when the body had it (`{"error":"x"}` carries none); `stopPod` defaults to `false`.
 *
 * @example
 * parseDonePost({ status: 'IN_PROGRESS', output: { pct: 50 } }); // { kind: 'progress', output: { pct: 50 } }
 */
export function parseDonePost(value: unknown): ParsedDonePost {
  const obj = requireObject(value, 'body');
  if (hasKey(obj, 'status')) {
    // The SDK only ever sends IN_PROGRESS here; any other status would be silently misread as a result.
    if (obj.status !== 'IN_PROGRESS') throw new ProtocolParseError('status', 'must be "IN_PROGRESS" when present');
    return { kind: 'progress', output: requirePresent(obj, 'output', '') };
  }
  const result: { kind: 'result'; output?: unknown; error?: string; stopPod: boolean } = {
    kind: 'result',
    stopPod: false,
  };
  if (Object.hasOwn(obj, 'output') && obj.output !== undefined) result.output = obj.output;
  if (hasKey(obj, 'error')) result.error = requireString(obj.error, 'error');
  if (hasKey(obj, 'stopPod')) result.stopPod = requireBoolean(obj.stopPod, 'stopPod');
  return result;
}

/**
 * Reads a job-done POST from its raw text; the SDK sends JSON labelled `application/x-www-form-urlencoded`.
 *
 * @example
 * parseDonePostText('{"output": 42, "stopPod": true}'); // { kind: 'result', output: 42, stopPod: true }
 */
export function parseDonePostText(text: string): ParsedDonePost {
  return parseDonePost(parseJsonBody(text));
}

/** Body of a job-stream POST: one chunk yielded by a generator handler. */
export interface StreamBody {
  output: unknown;
}

/** Reads a job-stream POST body; `output` must be present. */
export function parseStreamBody(value: unknown): StreamBody {
  const obj = requireObject(value, 'body');
  return { output: requirePresent(obj, 'output', '') };
}

/** A job-stop answer: the ids of the jobs the worker must cancel. */
export interface StopResponse {
  jobsToStop: string[];
}

/** Reads a job-stop answer (`{"jobsToStop": [...]}`). */
export function parseStopResponse(value: unknown): StopResponse {
  const obj = requireObject(value, 'body');
  return { jobsToStop: [...requireStringArray(requirePresent(obj, 'jobsToStop', ''), 'jobsToStop')] };
}

/** Parses request text as JSON whatever its Content-Type said. */
function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new ProtocolParseError('body', 'must be JSON text (whatever the Content-Type says)', { cause });
  }
}

/** Query of a heartbeat GET on the ping URL. */
export interface PingQuery {
  /** Jobs the worker holds (`job_id`, comma-joined on the wire); empty when idle. */
  jobIds: string[];
  runpodVersion?: string;
  /** Set only by a failed fitness check, just before the worker exits. */
  status?: 'unhealthy';
  /** Name of the failed fitness check. */
  check?: string;
  /** Why the fitness check failed (at most 256 characters). */
  reason?: string;
}

/** Longest `reason` the SDK sends with an unhealthy ping. */
const MAX_PING_REASON_CHARS = 256;

/**
 * Reads a ping's query parameters.
 *
 * @example
 * parsePingQuery(new URL(req.url).searchParams).jobIds; // ['b3', 'b4']
 */
export function parsePingQuery(params: URLSearchParams): PingQuery {
  const jobId = params.get('job_id');
  const query: PingQuery = { jobIds: jobId === null ? [] : jobId.split(',').filter((id) => id !== '') };
  const status = params.get('status');
  if (status !== null) {
    if (status !== 'unhealthy') throw new ProtocolParseError('status', 'must be "unhealthy" when present');
    query.status = status;
  }
  const check = params.get('check');
  if (check !== null) query.check = check;
  const reason = params.get('reason');
  if (reason !== null) query.reason = reason;
  const runpodVersion = params.get('runpod_version');
  if (runpodVersion !== null) query.runpodVersion = runpodVersion;
  return query;
}

/**
 * Writes a ping query (no leading `?`) byte-for-byte as runpod-python's `requests` does:
 * keys in the order job_id, status, check, reason, runpod_version; `,` as `%2C`; space as `+`.
 *
 * @example
 * formatPingQuery({ jobIds: ['b3', 'b4'], runpodVersion: '1.12.0' }); // 'job_id=b3%2Cb4&runpod_version=1.12.0'
 */
export function formatPingQuery(query: PingQuery): string {
  const pairs: [string, string][] = [];
  if (query.jobIds.length > 0) pairs.push(['job_id', query.jobIds.join(',')]);
  if (query.status !== undefined) pairs.push(['status', query.status]);
  if (query.check !== undefined) pairs.push(['check', query.check]);
  // Python slices code points, not UTF-16 units.
  if (query.reason !== undefined) pairs.push(['reason', Array.from(query.reason).slice(0, MAX_PING_REASON_CHARS).join('')]);
  if (query.runpodVersion !== undefined) pairs.push(['runpod_version', query.runpodVersion]);
  return pairs.map(([key, value]) => `${quotePlus(key)}=${quotePlus(value)}`).join('&');
}

/** Python's `urllib.parse.quote_plus`: keeps `A-Za-z0-9_.-~`, space → `+`, the rest percent-encoded UTF-8. */
function quotePlus(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/**
 * What runpod-python reports when a handler raises; the job-done `error` is this object as a JSON string.
 */
export interface ErrorObject {
  /** Python's `str(type(err))`, e.g. `<class 'ValueError'>`. */
  error_type: string;
  error_message: string;
  error_traceback: string;
  /** `RUNPOD_POD_HOSTNAME`, or `unknown`. */
  hostname: string;
  /** `RUNPOD_POD_ID`, or `unknown`. */
  worker_id: string;
  runpod_version: string;
  [key: string]: unknown;
}

const ERROR_OBJECT_KEYS = [
  'error_type',
  'error_message',
  'error_traceback',
  'hostname',
  'worker_id',
  'runpod_version',
] as const;

/** Serialises a handler exception as the string a job-done `error` carries. */
export function formatErrorString(obj: ErrorObject): string {
  return JSON.stringify(obj);
}

/**
 * Reads a job-done `error` string back into an error object; `undefined` when it is not one
 * (returned `{"error": …}` values and generator failures are plain strings).
 */
export function parseErrorString(text: string): ErrorObject | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(value)) return undefined;
  for (const key of ERROR_OBJECT_KEYS) if (typeof value[key] !== 'string') return undefined;
  return value as ErrorObject;
}

/** Size limits RunPod applies to what a worker sends. */
export const WORKER_LIMITS = {
  /** Largest job-done body: RunPod answers 400 above about 20 MB, and the SDK then drops the result. */
  maxResultBytes: 20 * 1024 * 1024,
  /** Largest job-stream chunk, per RunPod's docs (1 MB). */
  maxStreamChunkBytes: 1024 * 1024,
} as const;
