import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { ManifestError, SourceError } from './errors.ts';
import { createLimiter } from './pull.ts';
import { createS3Client, loadS3, runpodS3Endpoint, s3Status } from './s3-client.ts';
import type { S3Settings } from './settings.ts';
import { readRecord, recordFile, KILN_DIR, type ModelStatus } from './volume.ts';

/** Files up to this size go up in one PutObject; larger ones in parts (RunPod takes at most 500 MB per PutObject and per part). */
export const MULTIPART_THRESHOLD_BYTES = 64 << 20;
/** Part size of multipart uploads (raised for huge files so that no upload needs more than 10,000 parts). */
export const PART_BYTES = 64 << 20;
const MAX_PARTS = 10_000;
/** Files uploaded at once. */
const PUSH_CONCURRENCY = 4;
/** Object metadata that carries a file's SHA-256, so a later push can skip it without downloading. */
const SHA256_METADATA = 'kiln-sha256';

/** Where `push` uploads a volume. */
export type PushTarget =
  /** A RunPod network volume through its S3-compatible API: the volume ID is the bucket, the datacenter the region. */
  | { readonly kind: 'runpod-volume'; readonly volumeId: string; readonly datacenter: string; readonly prefix?: string; readonly endpoint?: string }
  | { readonly kind: 's3'; readonly bucket: string; readonly prefix: string; readonly endpoint?: string; readonly region?: string };

/** Progress of `push`, file by file. */
export interface PushEvent {
  readonly model: string;
  readonly path: string;
  readonly state: 'uploading' | 'uploaded' | 'skipped';
  readonly bytes: number;
  readonly total: number;
}

/** What `push` did. */
export interface PushReport {
  readonly bucket: string;
  readonly endpoint: string | undefined;
  readonly uploaded: readonly { readonly model: string; readonly key: string; readonly bytes: number }[];
  readonly skipped: readonly { readonly model: string; readonly key: string; readonly bytes: number }[];
  /** Models not on the local volume at all (nothing to push). */
  readonly absent: readonly string[];
  readonly bytesUploaded: number;
}

/**
 * Uploads each verified model's files, and its record, to `target` with the volume's layout
 * (`<prefix><model>/<file>`), skipping objects whose size and digest (our SHA-256 metadata, else an
 * ETag that is the file's MD5) already match. Partial or modified models are refused.
 */
export async function pushModels(
  volume: string,
  statuses: readonly ModelStatus[],
  target: PushTarget,
  options: { s3: S3Settings; signal: AbortSignal; onEvent?: ((event: PushEvent) => void) | undefined },
): Promise<PushReport> {
  const unusable = statuses.filter((s) => s.state === 'partial' || s.state === 'modified');
  if (unusable.length > 0) {
    throw new ManifestError([], {
      message: `push uploads verified models only: ${unusable.map((s) => `${s.model} is ${s.state}`).join(', ')} (run kiln models pull or kiln models verify first)`,
    });
  }
  const { bucket, prefix, endpoint, region } = resolveTarget(target);
  const client = await createS3Client(options.s3, { endpoint, region });
  const sdk = await loadS3();
  const uploaded: { model: string; key: string; bytes: number }[] = [];
  const skipped: { model: string; key: string; bytes: number }[] = [];
  const absent = statuses.filter((s) => s.state === 'missing').map((s) => s.model);
  const schedule = createLimiter(PUSH_CONCURRENCY);
  try {
    const jobs: Promise<void>[] = [];
    for (const status of statuses.filter((s) => s.state === 'verified')) {
      const record = await readRecord(volume, status.model);
      if (record === undefined) continue;
      for (const file of record.files) {
        const local = path.join(status.path, ...file.path.split('/'));
        const key = `${prefix}${status.model}/${file.path}`;
        jobs.push(
          schedule(async () => {
            options.signal.throwIfAborted();
            const remote: RemoteFile = { client, sdk, bucket, key, local, size: file.size, sha256: file.sha256, signal: options.signal };
            if (await alreadyThere(remote)) {
              skipped.push({ model: status.model, key, bytes: file.size });
              options.onEvent?.({ model: status.model, path: file.path, state: 'skipped', bytes: file.size, total: file.size });
              return;
            }
            await upload(remote, (bytes) =>
              options.onEvent?.({ model: status.model, path: file.path, state: 'uploading', bytes, total: file.size }),
            );
            uploaded.push({ model: status.model, key, bytes: file.size });
            options.onEvent?.({ model: status.model, path: file.path, state: 'uploaded', bytes: file.size, total: file.size });
          }),
        );
      }
      // The record travels too: a worker on the remote volume then knows what it holds without a config.
      const recordKey = `${prefix}${KILN_DIR}/models/${status.model}.json`;
      jobs.push(
        schedule(async () => {
          const body = await readFile(recordFile(volume, status.model));
          await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: recordKey, Body: body, ContentLength: body.length, ContentType: 'application/json' }), { abortSignal: options.signal });
        }),
      );
    }
    const settled = await Promise.allSettled(jobs);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) throw pushError(target, bucket, failed.reason);
  } finally {
    client.destroy();
  }
  return { bucket, endpoint, uploaded, skipped, absent, bytesUploaded: uploaded.reduce((n, u) => n + u.bytes, 0) };
}

function resolveTarget(target: PushTarget): { bucket: string; prefix: string; endpoint: string | undefined; region: string | undefined } {
  const normalise = (p: string | undefined) => (p === undefined || p === '' ? '' : `${p.replace(/^\/+|\/+$/g, '')}/`);
  if (target.kind === 'runpod-volume') {
    return { bucket: target.volumeId, prefix: normalise(target.prefix), endpoint: target.endpoint ?? runpodS3Endpoint(target.datacenter), region: target.datacenter };
  }
  return { bucket: target.bucket, prefix: normalise(target.prefix), endpoint: target.endpoint, region: target.region };
}

/** One verified local file and where it goes in the bucket. */
interface RemoteFile {
  client: S3Client;
  sdk: typeof import('@aws-sdk/client-s3');
  bucket: string;
  key: string;
  local: string;
  size: number;
  sha256: string;
  signal: AbortSignal;
}

async function alreadyThere({ client, sdk, bucket, key, local, size, sha256, signal }: RemoteFile): Promise<boolean> {
  let head;
  try {
    head = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  } catch (error) {
    if (s3Status(error) === 404 || (error as { name?: string }).name === 'NotFound') return false;
    throw error;
  }
  if (head.ContentLength !== size) return false;
  if (head.Metadata?.[SHA256_METADATA] !== undefined) return head.Metadata[SHA256_METADATA] === sha256;
  // Files put on a volume some other way: RunPod's ETag is the file's MD5 (or, for our multipart uploads, the MD5 of part MD5s).
  const etag = head.ETag?.replace(/"/g, '').toLowerCase();
  if (etag === undefined) return false;
  return etag === (await localEtag(local, size, etag.includes('-') ? partSizeFor(size) : undefined, signal));
}

/** The ETag S3 gives a file: its MD5, or for a multipart upload the MD5 of the parts' MD5s and `-<parts>`. */
async function localEtag(file: string, size: number, partBytes: number | undefined, signal: AbortSignal): Promise<string> {
  if (partBytes === undefined) {
    const md5 = createHash('md5');
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal })) md5.update(chunk as Buffer);
    return md5.digest('hex');
  }
  const parts: Buffer[] = [];
  for (let start = 0; start < size; start += partBytes) {
    const md5 = createHash('md5');
    for await (const chunk of createReadStream(file, { start, end: Math.min(size, start + partBytes) - 1, highWaterMark: 1 << 20, signal })) md5.update(chunk as Buffer);
    parts.push(md5.digest());
  }
  return `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
}

function partSizeFor(size: number): number {
  return Math.max(PART_BYTES, Math.ceil(size / MAX_PARTS));
}

async function upload({ client, sdk, bucket, key, local, size, sha256, signal }: RemoteFile, onBytes: (bytes: number) => void): Promise<void> {
  const metadata = { [SHA256_METADATA]: sha256 };
  if (size <= MULTIPART_THRESHOLD_BYTES) {
    await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(local), ContentLength: size, Metadata: metadata }), { abortSignal: signal });
    onBytes(size);
    return;
  }
  const partBytes = partSizeFor(size);
  const created = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: metadata }), { abortSignal: signal });
  const uploadId = created.UploadId;
  if (uploadId === undefined) throw new Error(`s3://${bucket}/${key}: CreateMultipartUpload returned no UploadId`);
  try {
    const parts: { ETag: string; PartNumber: number }[] = [];
    for (let start = 0, number = 1; start < size; start += partBytes, number++) {
      const end = Math.min(size, start + partBytes);
      const answer = await client.send(
        new sdk.UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: number, Body: createReadStream(local, { start, end: end - 1 }), ContentLength: end - start }),
        { abortSignal: signal },
      );
      parts.push({ ETag: answer.ETag ?? '', PartNumber: number });
      onBytes(end);
    }
    await client.send(new sdk.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal });
  } catch (error) {
    // Left behind, parts occupy the volume (RunPod keeps them in .s3compat_uploads/) until aborted.
    await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    throw error;
  }
}

function pushError(target: PushTarget, bucket: string, error: unknown): unknown {
  const status = s3Status(error);
  const where = target.kind === 'runpod-volume' ? `RunPod volume ${bucket} (${target.datacenter})` : `s3://${bucket}`;
  if (status === 401 || status === 403) {
    const hint =
      target.kind === 'runpod-volume'
        ? 'set AWS_ACCESS_KEY_ID to your RunPod user ID (user_…) and AWS_SECRET_ACCESS_KEY to an S3 API key secret (rps_…), created under Settings → S3 API Keys in the RunPod console'
        : 'check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the endpoint and the region';
    return new SourceError('push', where, 'access-denied', `access denied: ${hint}`, { status, cause: error });
  }
  if (status === 404 || (error as { name?: string } | null)?.name === 'NoSuchBucket') {
    const hint = target.kind === 'runpod-volume' ? ': check the volume ID and that its datacenter is the one given (the S3 API exists in some datacenters only)' : '';
    return new SourceError('push', where, 'not-found', `no such bucket${hint}`, { status: status ?? 404, cause: error });
  }
  return error;
}
