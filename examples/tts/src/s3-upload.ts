import { createHash, createHmac } from 'node:crypto';

/** Where and as whom to upload: RunPod's `s3Config` job field, with the region resolved. */
export interface S3Target {
  endpointUrl: string;
  accessId: string;
  accessSecret: string;
  bucketName: string;
  region: string;
}

/** One week, the longest a SigV4 presigned URL may live (and runpod-python's choice). */
export const PRESIGN_EXPIRES_S = 604_800;

const ALGORITHM = 'AWS4-HMAC-SHA256';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/** Why an upload failed: the bucket's status and the start of its answer. */
export class S3UploadError extends Error {
  override name = 'S3UploadError' as const;
  readonly status: number;
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

/**
 * Reads a job's `s3Config` (`{ accessId, accessSecret, bucketName, endpointUrl }`, as RunPod sends it).
 * Undefined when absent; a TypeError naming the missing keys when it is half filled.
 */
export function s3TargetFromJob(s3Config: unknown): S3Target | undefined {
  if (s3Config === undefined || s3Config === null) return undefined;
  const c = s3Config as Record<string, unknown>;
  const keys = ['accessId', 'accessSecret', 'bucketName', 'endpointUrl'] as const;
  const missing = keys.filter((k) => typeof c[k] !== 'string' || c[k] === '');
  if (missing.length > 0) throw new TypeError(`s3Config lacks ${missing.join(', ')}`);
  const endpointUrl = String(c['endpointUrl']);
  return { endpointUrl, accessId: String(c['accessId']), accessSecret: String(c['accessSecret']), bucketName: String(c['bucketName']), region: regionOf(endpointUrl) };
}

/**
 * The endpoint's bucket from the variables runpod-python's upload helper reads
 * (`BUCKET_ENDPOINT_URL`, `BUCKET_ACCESS_KEY_ID`, `BUCKET_SECRET_ACCESS_KEY`); undefined unless all
 * three are set. Like that helper, the bucket is named after the month (`MM-YY`) unless
 * `BUCKET_NAME` says otherwise.
 */
export function s3TargetFromEnv(env: Readonly<Record<string, string | undefined>>, now: Date): S3Target | undefined {
  const endpointUrl = env['BUCKET_ENDPOINT_URL'];
  const accessId = env['BUCKET_ACCESS_KEY_ID'];
  const accessSecret = env['BUCKET_SECRET_ACCESS_KEY'];
  if (!endpointUrl || !accessId || !accessSecret) return undefined;
  const month = `${String(now.getUTCMonth() + 1).padStart(2, '0')}-${String(now.getUTCFullYear() % 100).padStart(2, '0')}`;
  return { endpointUrl, accessId, accessSecret, bucketName: env['BUCKET_NAME'] || month, region: regionOf(endpointUrl) };
}

/** The region in an AWS-style endpoint host (`s3.eu-west-2.amazonaws.com`, `…-eu-west-2.…`); `us-east-1` otherwise. */
export function regionOf(endpointUrl: string): string {
  const host = new URL(endpointUrl).hostname;
  return /(?:^|[.-])([a-z]{2}(?:-gov)?-[a-z]+-\d)(?:\.|$)/.exec(host)?.[1] ?? 'us-east-1';
}

/**
 * The object's URL: virtual-hosted when the endpoint's host already starts with the bucket name
 * (`https://bucket.s3.amazonaws.com`, as RunPod's docs write it), path-style otherwise.
 */
export function objectUrl(target: S3Target, key: string): URL {
  const base = new URL(target.endpointUrl);
  const prefix = base.pathname.replace(/\/+$/, '');
  const encodedKey = key.split('/').map(encodeRfc3986).join('/');
  const bucketInHost = base.hostname.startsWith(`${target.bucketName}.`);
  base.pathname = bucketInHost ? `${prefix}/${encodedKey}` : `${prefix}/${encodeRfc3986(target.bucketName)}/${encodedKey}`;
  base.search = '';
  return base;
}

/** A request to sign: every header given is signed (`host` is added from the URL). */
export interface SignableRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  /** Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`. */
  payloadHash: string;
}

/**
 * Signs a request with AWS Signature Version 4 (header form): returns the headers to send,
 * `authorization`, `x-amz-date` and `x-amz-content-sha256` included.
 */
export function signRequest(request: SignableRequest, target: Pick<S3Target, 'accessId' | 'accessSecret' | 'region'>, now: Date): Record<string, string> {
  const amzDate = toAmzDate(now);
  const headers: Record<string, string> = { ...lowerKeys(request.headers), host: request.url.host, 'x-amz-date': amzDate, 'x-amz-content-sha256': request.payloadHash };
  const { signature, signedHeaders, scope } = sign(request.method, request.url, headers, request.payloadHash, target, amzDate);
  headers['authorization'] = `${ALGORITHM} Credential=${target.accessId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  delete headers['host'];
  return headers;
}

/** A presigned GET URL for `key`, valid `expiresS` seconds from `now`. */
export function presignGetUrl(target: S3Target, key: string, now: Date, expiresS = PRESIGN_EXPIRES_S): string {
  const url = objectUrl(target, key);
  const amzDate = toAmzDate(now);
  const scope = `${amzDate.slice(0, 8)}/${target.region}/s3/aws4_request`;
  url.searchParams.set('X-Amz-Algorithm', ALGORITHM);
  url.searchParams.set('X-Amz-Credential', `${target.accessId}/${scope}`);
  url.searchParams.set('X-Amz-Date', amzDate);
  url.searchParams.set('X-Amz-Expires', String(expiresS));
  url.searchParams.set('X-Amz-SignedHeaders', 'host');
  const { signature } = sign('GET', url, { host: url.host }, UNSIGNED_PAYLOAD, target, amzDate);
  return `${url.origin}${url.pathname}?${canonicalQuery(url)}&X-Amz-Signature=${signature}`;
}

/**
 * PUTs `body` at `key` and returns a presigned GET URL for it.
 *
 * @example
 * const url = await uploadAndPresign(target, `${job.id}/speech.wav`, wav, { contentType: 'audio/wav', signal });
 */
export async function uploadAndPresign(
  target: S3Target,
  key: string,
  body: Uint8Array,
  options: { contentType: string; signal?: AbortSignal; now?: () => Date; expiresS?: number },
): Promise<string> {
  const now = options.now ?? (() => new Date());
  const url = objectUrl(target, key);
  const payloadHash = createHash('sha256').update(body).digest('hex');
  const headers = signRequest({ method: 'PUT', url, headers: { 'content-type': options.contentType }, payloadHash }, target, now());
  let res: Response;
  try {
    res = await fetch(url, { method: 'PUT', headers, body, ...(options.signal ? { signal: options.signal } : {}) });
  } catch (err) {
    throw new S3UploadError(0, `upload to ${url.origin} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (!res.ok) {
    const text = (await res.text().catch(() => '')).slice(0, 300);
    throw new S3UploadError(res.status, `upload to ${url.origin}/…/${key} answered ${res.status}: ${text}`);
  }
  await res.body?.cancel();
  return presignGetUrl(target, key, now(), options.expiresS);
}

function sign(
  method: string,
  url: URL,
  headers: Record<string, string>,
  payloadHash: string,
  target: Pick<S3Target, 'accessSecret' | 'region'>,
  amzDate: string,
): { signature: string; signedHeaders: string; scope: string } {
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${target.region}/s3/aws4_request`;
  const names = Object.keys(headers).map((n) => n.toLowerCase()).sort();
  const lower = lowerKeys(headers);
  const canonicalHeaders = names.map((n) => `${n}:${lower[n]!.trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [method, url.pathname || '/', canonicalQuery(url), canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  let key: Buffer = hmac(`AWS4${target.accessSecret}`, day);
  for (const part of [target.region, 's3', 'aws4_request']) key = hmac(key, part);
  return { signature: createHmac('sha256', key).update(stringToSign).digest('hex'), signedHeaders, scope };
}

function canonicalQuery(url: URL): string {
  return [...url.searchParams]
    .map(([k, v]) => [encodeRfc3986(k), encodeRfc3986(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function encodeRfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function toAmzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
