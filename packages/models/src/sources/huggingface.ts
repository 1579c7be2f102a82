import { SourceError } from '../errors.ts';
import { compileGlobs } from '../glob.ts';
import type { ModelSpec } from '../manifest.ts';
import { checkRelativePath } from '../safe-path.ts';
import { rangeOf, type OpenedBody, type PinnedFiles, type RemoteFile, type Resolution, type SourceContext } from './remote-file.ts';

type HubModule = typeof import('@huggingface/hub');

let hubModule: Promise<HubModule> | undefined;
// Loaded on first use: a worker whose models come from elsewhere does not pay for it at start-up.
const loadHub = (): Promise<HubModule> => (hubModule ??= import('@huggingface/hub'));

/**
 * Resolves `hf://org/repo[@revision][/glob]` through @huggingface/hub: the revision to its commit
 * (`modelInfo`), then the file list with sizes and LFS SHA-256s (`listFiles`, recursive). Files are
 * read with `downloadFile({ xet: false })` and a Range from the resume offset.
 */
export async function resolveHuggingFace(spec: ModelSpec, pinned: PinnedFiles | undefined, context: SourceContext): Promise<Resolution> {
  if (spec.source.kind !== 'hf') throw new TypeError(`not a Hugging Face source: ${spec.entry.source}`);
  const hub = await loadHub();
  const repo = spec.source.repo;
  const credentials = context.hub.token === undefined ? {} : { accessToken: context.hub.token };
  const common = { hubUrl: context.hub.url, fetch: fetchWithSignal(context.signal), ...credentials };

  if (pinned !== undefined && pinned.revision !== undefined) {
    const revision = pinned.revision;
    return { revision, files: pinned.files.map((f) => hfFile(hub, spec, revision, { path: f.path, size: f.size, sha256: f.sha256, gitBlobSha1: undefined }, context)) };
  }

  let revision: string;
  let gated: false | 'auto' | 'manual' = false;
  try {
    const info = await hub.modelInfo({ name: repo, revision: spec.revision ?? 'main', additionalFields: ['sha'], ...common });
    revision = info.sha;
    gated = info.gated;
  } catch (error) {
    throw hubError(hub, spec, error, context);
  }
  if (gated !== false && context.hub.token === undefined) throw accessDenied(spec, context, 401);

  const selected = compileGlobs(spec.include);
  const files: RemoteFile[] = [];
  try {
    for await (const entry of hub.listFiles({ repo, revision, recursive: true, ...common })) {
      if (entry.type !== 'file') continue;
      checkRelativePath(entry.path, `${spec.entry.source} listing`);
      if (!selected(entry.path)) continue;
      const lfs = entry.lfs;
      files.push(
        hfFile(hub, spec, revision, { path: entry.path, size: lfs?.size ?? entry.size, sha256: lfs?.oid.toLowerCase(), gitBlobSha1: lfs === undefined ? entry.oid : undefined }, context),
      );
    }
  } catch (error) {
    throw hubError(hub, spec, error, context);
  }
  if (files.length === 0) {
    const what = spec.include.length === 0 ? 'has no files' : `has no file matching ${spec.include.join(', ')}`;
    throw new SourceError(spec.name, spec.entry.source, 'not-found', `${repo} at ${revision} ${what}`);
  }
  return { revision, files };
}

function hfFile(
  hub: HubModule,
  spec: ModelSpec,
  revision: string,
  file: { path: string; size: number; sha256: string | undefined; gitBlobSha1: string | undefined },
  context: SourceContext,
): RemoteFile {
  const repo = (spec.source as { repo: string }).repo;
  return {
    ...file,
    async open(offset: number, signal: AbortSignal): Promise<OpenedBody> {
      let answer: Response | undefined;
      const observe: typeof fetch = async (input, init) => {
        answer = await fetch(input, { ...init, signal });
        return answer;
      };
      let blob: Blob | null;
      try {
        blob = await hub.downloadFile({
          repo,
          path: file.path,
          revision,
          hubUrl: context.hub.url,
          xet: false,
          fetch: observe,
          ...(context.hub.token === undefined ? {} : { accessToken: context.hub.token }),
        });
      } catch (error) {
        throw hubError(hub, spec, error, context);
      }
      if (blob === null) throw new SourceError(spec.name, spec.entry.source, 'not-found', `${file.path} is not in ${repo} at ${revision}`, { status: 404 });
      const iterator = (offset > 0 ? blob.slice(offset) : blob).stream()[Symbol.asyncIterator]();
      // The content answer only exists once the stream has started: read one chunk, then look at it.
      let first: IteratorResult<Uint8Array>;
      try {
        first = await iterator.next();
      } catch (error) {
        // WebBlob turns a failed answer into a bare message string: put the status back.
        const status = answer?.status;
        if (status === 401 || status === 403) throw accessDenied(spec, context, status);
        if (status === 404) throw new SourceError(spec.name, spec.entry.source, 'not-found', `${file.path} is not in ${repo} at ${revision}`, { status });
        throw error instanceof Error ? error : new Error(`${file.path}: ${String(error)}`);
      }
      const { start, totalSize } = answer === undefined ? { start: 0, totalSize: undefined } : rangeOf(answer.status, answer.headers);
      async function* body(): AsyncGenerator<Uint8Array> {
        try {
          if (first.done !== true) yield first.value;
          for (;;) {
            const next = await iterator.next();
            if (next.done === true) return;
            yield next.value;
          }
        } catch (error) {
          throw error instanceof Error ? error : new Error(`${file.path}: ${String(error)}`);
        } finally {
          await iterator.return?.();
        }
      }
      return { body: body(), start: offset > 0 && answer?.status === 206 ? start : 0, totalSize };
    },
  };
}

function fetchWithSignal(signal: AbortSignal): typeof fetch {
  return (input, init) => fetch(input, { ...init, signal });
}

function accessDenied(spec: ModelSpec, context: SourceContext, status: number): SourceError {
  const repo = (spec.source as { repo: string }).repo;
  const page = `${context.hub.url}/${repo}`;
  const tokens = `${context.hub.url}/settings/tokens`;
  const message =
    context.hub.token === undefined
      ? `${repo} is gated or private: open ${page}, accept its conditions (or ask for access) while logged in, then create a read token at ${tokens} and set HF_TOKEN`
      : status === 401
        ? `${context.hub.url} refused HF_TOKEN (expired or revoked?): create a new read token at ${tokens}`
        : `HF_TOKEN has no access to ${repo}: open ${page} and accept its conditions (gated repos may need the owner's approval)`;
  return new SourceError(spec.name, spec.entry.source, 'access-denied', message, { status });
}

function hubError(hub: HubModule, spec: ModelSpec, error: unknown, context: SourceContext): unknown {
  if (!(error instanceof hub.HubApiError)) return error;
  const status = error.statusCode;
  if (status === 401 || status === 403) return accessDenied(spec, context, status);
  if (status === 404) {
    const revision = spec.revision ?? 'main';
    const hint = context.hub.token === undefined ? ' (if it is private, set HF_TOKEN)' : '';
    return new SourceError(spec.name, spec.entry.source, 'not-found', `no repo ${(spec.source as { repo: string }).repo} with revision ${revision} on ${context.hub.url}${hint}`, { status, cause: error });
  }
  if (status >= 500 || status === 429) return error;
  return new SourceError(spec.name, spec.entry.source, 'bad-response', `${context.hub.url} answered ${status}: ${error.message}`, { status, cause: error });
}
