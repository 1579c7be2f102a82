import { SourceError } from '../errors.ts';
import { compileGlobs } from '../glob.ts';
import type { ModelSpec } from '../manifest.ts';
import { createS3Client, loadS3, s3Status } from '../s3-client.ts';
import { checkRelativePath } from '../safe-path.ts';
import type { OpenedBody, PinnedFiles, RemoteFile, Resolution, SourceContext } from './remote-file.ts';

/**
 * Resolves `s3://bucket/key` (one object: `HeadObject` for its size) or `s3://bucket/prefix/` (every
 * object under the prefix, paths relative to it, `files` globs applied). Reads with `GetObject` and a
 * Range from the resume offset. The endpoint and region come from the entry, else the settings.
 */
export async function resolveS3(spec: ModelSpec, pinned: PinnedFiles | undefined, context: SourceContext): Promise<Resolution> {
  if (spec.source.kind !== 's3') throw new TypeError(`not an S3 source: ${spec.entry.source}`);
  const { bucket, key } = spec.source;
  const sdk = await loadS3();
  const client = await createS3Client(context.s3, { endpoint: spec.endpoint, region: spec.region });
  const file = (path: string, objectKey: string, size: number | undefined, sha256: string | undefined): RemoteFile => ({
    path,
    size,
    sha256,
    gitBlobSha1: undefined,
    open: (offset, signal) => openObject(spec, client, sdk, bucket, objectKey, offset, signal),
  });
  const single = key !== '' && !key.endsWith('/');
  const dispose = () => client.destroy();
  if (pinned !== undefined) {
    return { revision: undefined, files: pinned.files.map((f) => file(f.path, single ? key : key + f.path, f.size, f.sha256)), dispose };
  }
  try {
    if (single) {
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: context.signal });
      const size = head.ContentLength;
      if (spec.size !== undefined && size !== undefined && size !== spec.size) {
        throw new SourceError(spec.name, spec.entry.source, 'bad-response', `the object has ${size} bytes, the manifest says ${spec.size}`);
      }
      return { revision: undefined, files: [file(spec.fileName!, key, size ?? spec.size, spec.sha256)], dispose };
    }
    const selected = compileGlobs(spec.include);
    const files: RemoteFile[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token }), { abortSignal: context.signal });
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || object.Key.endsWith('/')) continue;
        const relative = checkRelativePath(object.Key.slice(key.length), `${spec.entry.source} listing`);
        if (selected(relative)) files.push(file(relative, object.Key, object.Size, undefined));
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    if (files.length === 0) throw new SourceError(spec.name, spec.entry.source, 'not-found', `no object under s3://${bucket}/${key}${spec.include.length > 0 ? ` matches ${spec.include.join(', ')}` : ''}`);
    return { revision: undefined, files, dispose };
  } catch (error) {
    dispose();
    throw s3Error(spec, error);
  }
}

async function openObject(
  spec: ModelSpec,
  client: import('@aws-sdk/client-s3').S3Client,
  sdk: typeof import('@aws-sdk/client-s3'),
  bucket: string,
  key: string,
  offset: number,
  signal: AbortSignal,
): Promise<OpenedBody> {
  const get = (range: string | undefined) =>
    client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key, ...(range === undefined ? {} : { Range: range }) }), { abortSignal: signal });
  let answer;
  try {
    answer = await get(offset > 0 ? `bytes=${offset}-` : undefined);
  } catch (error) {
    if (offset > 0 && s3Status(error) === 416) answer = await get(undefined).catch((e: unknown) => Promise.reject(s3Error(spec, e)));
    else throw s3Error(spec, error);
  }
  const body = answer.Body as AsyncIterable<Uint8Array> | undefined;
  if (body === undefined) throw new Error(`s3://${bucket}/${key}: empty answer`);
  const match = answer.ContentRange === undefined ? null : /^bytes (\d+)-\d+\/(\d+)$/.exec(answer.ContentRange);
  if (match !== null) return { body, start: Number(match[1]), totalSize: Number(match[2]) };
  return { body, start: 0, totalSize: answer.ContentLength };
}

function s3Error(spec: ModelSpec, error: unknown): unknown {
  if (error instanceof SourceError) return error;
  const status = s3Status(error);
  const name = (error as { name?: string } | null)?.name;
  const message = error instanceof Error ? error.message : String(error);
  if (status === 401 || status === 403) {
    return new SourceError(spec.name, spec.entry.source, 'access-denied', `access denied (${message}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the endpoint and the region`, { status, cause: error });
  }
  if (status === 404 || name === 'NoSuchKey' || name === 'NoSuchBucket' || name === 'NotFound') {
    return new SourceError(spec.name, spec.entry.source, 'not-found', `not found (${name ?? status})`, { ...(status === undefined ? {} : { status }), cause: error });
  }
  return error;
}
